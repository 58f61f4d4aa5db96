"""What a rights request is: kinds, statuses, the deadline rule, and the views callers get.

Pipeline (after Fides' privacy requests): submitted -> verified -> approved | denied ->
processing -> complete; a citizen may withdraw an open request. Every transition is a history
row with its time and actor.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

KINDS = ("access", "rectification", "erasure", "restriction", "objection")
OPEN = ("submitted", "verified", "approved", "processing")
CLOSED = ("denied", "complete", "withdrawn")
STATUSES = OPEN + CLOSED
MAX_EXTENSION_MONTHS = 2  # GDPR Art. 12(3): "extended by two further months where necessary"
MAX_MESSAGE = 2000
# Who handles what (docs/rights-requests.md): corrections go to the field's source agency; erasure
# to the civil registry, whose registrars alone erase today; a restriction or objection to the one
# agency that uses its purposes (else the civil registry); an access request is answered at once.
# Compliance officers oversee (read, overdue) and never write.
ERASURE_AGENCY = "civil-registry"
DEFAULT_SOURCE = "civil-registry"  # a field without recorded source: the registry that creates profiles


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, the day clamped to the month's last (31 Jan + 1 = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class HistoryEntry:
    """One transition or step: the status after it, what happened, when and by whom."""

    status: str
    event: str
    at: str
    actor: str
    actor_role: str


@dataclass(frozen=True)
class Message:
    """A message on a request; ``text`` is None when it can no longer be decrypted (erased)."""

    at: str
    author_role: str
    text: str | None


@dataclass(frozen=True)
class RightsRequest:
    """A request as its citizen or a handling officer sees it (never the proposed values: see
    :meth:`vault.requests.service.RequestService.proposed`)."""

    id: str
    citizen_id: str
    kind: str
    status: str
    agency: str
    submitted_at: str
    due_at: str
    extensions: int
    assignee: str | None
    updated_at: str
    detail: dict[str, Any]
    overdue: bool
    history: list[HistoryEntry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def request_from_row(r: Any, now: str) -> RightsRequest:
    """A RightsRequest (without history or messages) from a ``rights_requests`` row."""
    return RightsRequest(
        r.id,
        r.citizen_id,
        r.kind,
        r.status,
        r.agency,
        r.submitted_at,
        r.due_at,
        int(r.extensions),
        r.assignee,
        r.updated_at,
        json.loads(r.detail),
        r.status in OPEN and r.due_at < now,
    )
