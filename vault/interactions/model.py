"""What the interaction service takes and returns (plain data; never persisted as such)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from vault.interactions.facts import CHANNELS, KINDS, STATUSES

__all__ = ["CHANNELS", "KINDS", "STATUSES"]

MAX_TEXT = 4000  # characters of a description
MAX_NOTE = 2000
MAX_COMMENT = 1000
MAX_REFERENCE = 2048  # an attachment reference (a URL or a document id), characters
MAX_CONTACT = 200
MAX_ADDRESS = 300
MAX_ATTRIBUTES = 50

# Forward only; skipping states is allowed (a counter enquiry may be answered on the spot), and the
# skipped states' times are set to the time of the change.
NEXT = {
    "open": ("acknowledged", "in_progress", "resolved", "closed"),
    "acknowledged": ("in_progress", "resolved", "closed"),
    "in_progress": ("resolved", "closed"),
    "resolved": ("closed",),
    "closed": (),
}


@dataclass(frozen=True)
class Contact:
    """How to reach the person (Open311's first/last name, email, phone); always sealed."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Location:
    """Where: an address and/or a point (WGS84). Sealed; only the coarse area stays in clear."""

    address: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class NewInteraction:
    """An interaction to record. ``citizen_id``: the proven citizen it belongs to, or None (anonymous)."""

    service_code: str
    text: str
    kind: str = "request"
    channel: str = "web"
    citizen_id: str | None = None
    attributes: Mapping[str, str | list[str]] = field(default_factory=dict)
    location: Location | None = None
    area: str | None = None  # given when there is no point (a counter officer picks it)
    contact: Contact | None = None
    attachment: str | None = None
    source: str = "vault"  # vault | open311


@dataclass(frozen=True)
class HistoryEntry:
    """One change: status, assignment, note or rating, with when and by which role."""

    at: str
    kind: str
    status: str | None
    unit: str | None
    by_role: str
    by_agency: str
    note: str | None  # the note as written (None when the key is gone); redacted for public views


@dataclass(frozen=True)
class Summary:
    """An interaction without any text: what queues and lists show."""

    id: str
    service_code: str
    agency: str
    kind: str
    channel: str
    source: str
    status: str
    area: str | None
    unit: str | None
    linked: bool
    created_at: datetime
    updated_at: datetime
    ack_due: datetime
    resolve_due: datetime
    overdue: bool
    rating: int | None


@dataclass(frozen=True)
class Interaction:
    """One interaction as the caller may see it. ``readable`` False: the key is gone (erasure) and
    every sealed value is None. Public views carry the redacted text only."""

    summary: Summary
    citizen_id: str | None
    status_times: dict[str, datetime]
    home: bool
    text: str | None
    redacted_text: str | None
    pii_found: dict[str, int]
    attributes: dict[str, str | list[str]]
    location: Location | None
    contact: Contact | None
    attachment: str | None
    rating_comment: str | None
    history: list[HistoryEntry]
    readable: bool = True

    @property
    def id(self) -> str:
        """The interaction's id."""
        return self.summary.id


@dataclass(frozen=True)
class Search:
    """Filters of a list; every one optional. ``overdue``: only items past a service level."""

    statuses: tuple[str, ...] = ()
    service_code: str | None = None
    kind: str | None = None
    channel: str | None = None
    area: str | None = None
    unit: str | None = None
    overdue: bool = False
    created_from: datetime | None = None
    created_to: datetime | None = None
    ids: tuple[str, ...] = ()
    limit: int = 50
    offset: int = 0
