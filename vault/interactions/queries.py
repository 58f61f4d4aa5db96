"""Lists of interactions without their texts: an agency's queue, a citizen's own, the overdue ones.

Nothing here decrypts, so nothing here is an access to personal data; the audited reads of a text
are in vault.interactions.service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select

from vault.interactions import model as m
from vault.interactions.tables import interactions as t

OPEN_STATES = ("open", "acknowledged", "in_progress")


def at(seconds: int) -> datetime:
    """An epoch-seconds column as an aware UTC time."""
    return datetime.fromtimestamp(seconds, UTC)


def overdue_clause(now_s: int) -> ColumnElement[bool]:
    """Past a service level: not acknowledged in time, or not resolved in time."""
    return or_(
        and_(t.c.status == "open", t.c.ack_due_s < now_s),
        and_(t.c.status.in_(OPEN_STATES), t.c.resolve_due_s < now_s),
    )


def is_overdue(row: Any, now_s: int) -> bool:
    """:func:`overdue_clause` for one row."""
    return (row.status == "open" and row.ack_due_s < now_s) or (row.status in OPEN_STATES and row.resolve_due_s < now_s)


def summary(row: Any, now_s: int) -> m.Summary:
    """The text-free view of a row."""
    return m.Summary(
        id=row.id,
        service_code=row.service_code,
        agency=row.agency,
        kind=row.kind,
        channel=row.channel,
        source=row.source,
        status=row.status,
        area=row.area,
        unit=row.unit,
        linked=row.citizen_id is not None,
        created_at=at(row.created_s),
        updated_at=at(row.updated_s),
        ack_due=at(row.ack_due_s),
        resolve_due=at(row.resolve_due_s),
        overdue=is_overdue(row, now_s),
        rating=row.rating,
    )


def _filtered(query: Select[Any], search: m.Search, now_s: int) -> Select[Any]:
    if search.statuses:
        query = query.where(t.c.status.in_(search.statuses))
    for column, value in (
        (t.c.service_code, search.service_code),
        (t.c.kind, search.kind),
        (t.c.channel, search.channel),
        (t.c.area, search.area),
        (t.c.unit, search.unit),
    ):
        if value is not None:
            query = query.where(column == value)
    if search.overdue:
        query = query.where(overdue_clause(now_s))
    if search.created_from is not None:
        query = query.where(t.c.created_s >= int(search.created_from.timestamp()))
    if search.created_to is not None:
        query = query.where(t.c.created_s < int(search.created_to.timestamp()))
    if search.ids:
        query = query.where(t.c.id.in_(search.ids))
    return query


def page(
    conn: Connection, search: m.Search, now_s: int, *, agency: str | None = None, citizen_id: str | None = None
) -> tuple[list[m.Summary], int]:
    """A page of summaries, newest first, and how many match; scoped to an agency and/or a citizen."""
    base = select(t)
    if agency is not None:
        base = base.where(t.c.agency == agency)
    if citizen_id is not None:
        base = base.where(t.c.citizen_id == citizen_id)
    query = _filtered(base, search, now_s)
    total = int(conn.scalar(select(func.count()).select_from(query.subquery())) or 0)
    limit = max(1, min(search.limit, 500))
    rows = conn.execute(
        query.order_by(t.c.created_s.desc(), t.c.id.desc()).limit(limit).offset(max(0, search.offset))
    ).all()
    return [summary(r, now_s) for r in rows], total
