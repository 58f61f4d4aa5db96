"""What the Open311 GeoReport v2 face (api/routes/open311.py) offers and publishes (issue 15).

It files and shows items through the interaction service (vault.interactions.service) only; this
module adds the two rules of the public face:

- **Which services.** Open311 is for reports about a place in the city: the catalogue's services
  whose ``location`` is ``required`` or ``optional``. Person-centred services (``location: none``:
  benefit, clinic and tax questions, feedback on a service) are neither listed, nor filed, nor
  published here: a public feed of them, even redacted, would tell too much about people.
- **Which items.** The public feed shows items of kind ``request`` of those services, whatever the
  channel they came in by (the portal, a counter, Open311), newest first, in the public view the
  interaction service builds (no identity, no contact, the redacted text only, no place that
  identifies a home). Each public read is audited by that service.

Public functions (class :class:`Open311Feed`): ``services()``, ``service(code)``,
``create(actor, new)``, ``page(actor, query)``, ``one(actor, interaction_id)``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from vault.audit.log import Actor
from vault.errors import NotFound
from vault.interactions import model as m
from vault.interactions.catalogue import Service
from vault.interactions.errors import InteractionInvalid
from vault.interactions.service import InteractionService
from vault.interactions.tables import interactions as t

PUBLISHED_KIND = "request"
DEFAULT_WINDOW = timedelta(days=90)  # GeoReport v2: without dates, the last 90 days
OPEN = ("open", "acknowledged", "in_progress")
CLOSED = ("resolved", "closed")


@dataclass(frozen=True)
class FeedQuery:
    """A search of the public feed; every filter optional. ``ids`` given: the other filters are ignored
    (as GeoReport v2 says of ``service_request_id``)."""

    ids: tuple[str, ...] = ()
    service_code: str | None = None
    statuses: tuple[str, ...] = ()  # vault statuses
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = 50
    offset: int = 0


class Open311Feed:
    """The Open311 face's services, intake and public feed, over one interaction service."""

    def __init__(self, interactions: InteractionService) -> None:
        self.interactions = interactions

    def services(self) -> list[Service]:
        """The services Open311 offers, in catalogue order."""
        return [s for s in self.interactions.catalogue.services.values() if s.location != "none"]

    def service(self, code: str) -> Service:
        """One offered service; NotFound for an unknown code or a service Open311 does not offer."""
        found = self.interactions.catalogue.services.get(code)
        if found is None or found.location == "none":
            raise NotFound("no such service")
        return found

    def create(self, actor: Actor, new: m.NewInteraction) -> m.Summary:
        """File a request of an offered service (InteractionInvalid unknown-service otherwise)."""
        found = self.interactions.catalogue.services.get(new.service_code)
        if found is None or found.location == "none":
            raise InteractionInvalid("unknown-service", "no such service", {"service_code": "not offered over Open311"})
        return self.interactions.create(actor, new)

    def page(self, actor: Actor, query: FeedQuery) -> list[m.Interaction]:
        """A page of public views, newest first (each read audited by the interaction service)."""
        ids = self._ids(query)
        if not ids:
            return []
        items, _ = self.interactions.public_page(actor, m.Search(ids=tuple(ids), limit=len(ids)))
        order = {iid: n for n, iid in enumerate(ids)}
        return sorted(items, key=lambda i: order.get(i.id, len(order)))

    def one(self, actor: Actor, interaction_id: str) -> m.Interaction:
        """The public view of one item of the feed; NotFound if it is not in the feed."""
        if not self._ids(FeedQuery(ids=(interaction_id,), limit=1)):
            raise NotFound("no such service request")
        return self.interactions.public(actor, interaction_id)

    def _ids(self, query: FeedQuery) -> list[str]:
        codes = [s.code for s in self.services()]
        base = select(t.c.id).where(t.c.kind == PUBLISHED_KIND, t.c.service_code.in_(codes))
        if query.ids:
            wanted = [i for i in (_uuid(x) for x in query.ids) if i is not None]
            base = base.where(t.c.id.in_(wanted))
        else:
            if query.service_code is not None:
                base = base.where(t.c.service_code == query.service_code)
            if query.statuses:
                base = base.where(t.c.status.in_(query.statuses))
            end = query.created_to or self.interactions.now()
            start = query.created_from or (end - DEFAULT_WINDOW if query.created_to is None else None)
            if start is not None:
                base = base.where(t.c.created_s >= int(start.timestamp()))
            if query.created_to is not None:
                base = base.where(t.c.created_s <= int(end.timestamp()))
        ordered = base.order_by(t.c.created_s.desc(), t.c.id.desc()).limit(query.limit).offset(query.offset)
        with self.interactions.engine.connect() as conn:
            return list(conn.scalars(ordered))


def _uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
