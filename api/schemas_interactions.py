"""Bodies of /v1/interactions and /v1/me/interactions (issue 15). Lengths are bounded here only to
what a body may carry; the interaction service checks the real limits (4,000 characters of text,
2,048 of an attachment reference ...) and answers with a reason (text-too-long ...)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from api.bounds import Line, Text, Word
from api.schemas import Strict

Attributes = dict[Word, Line | list[Line]]


class LocationBody(Strict):
    """An address and/or a point (WGS84): sealed; only the coarse area is kept in clear."""

    address: Line | None = Field(default=None, max_length=10_000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class ContactBody(Strict):
    """How to reach the person: sealed, never published."""

    name: Line | None = Field(default=None, max_length=10_000)
    email: Line | None = Field(default=None, max_length=10_000)
    phone: Line | None = Field(default=None, max_length=10_000)


class MyInteractionCreate(Strict):
    """A citizen files a request, complaint, enquiry or feedback about a service of the catalogue."""

    service_code: Word
    text: Text = Field(max_length=100_000, description="What it is about (at most 4,000 characters).")
    kind: Word = "request"
    channel: Word = "web"
    attributes: Attributes = Field(default_factory=dict, max_length=100)
    location: LocationBody | None = None
    area: Word | None = None
    contact: ContactBody | None = None
    attachment: Line | None = Field(default=None, max_length=100_000, description="A URL or document id.")


class InteractionCreate(MyInteractionCreate):
    """An officer records an interaction, on behalf of a citizen (``citizen_id``) or anonymously."""

    citizen_id: uuid.UUID | None = None
    channel: Word = "counter"


class StatusChange(Strict):
    """Move the item forward, with an optional note the citizen sees."""

    status: Word
    note: Text | None = Field(default=None, max_length=100_000)


class NoteBody(Strict):
    """A status note."""

    note: Text = Field(max_length=100_000)


class Assignment(Strict):
    """Give the item to a unit of the agency (policies/services.yaml)."""

    unit: Word
    note: Text | None = Field(default=None, max_length=100_000)


class Rating(Strict):
    """The citizen's satisfaction, after resolution."""

    rating: int = Field(ge=-(2**31), le=2**31, description="1 to 5.")
    comment: Text | None = Field(default=None, max_length=100_000)


class InteractionSummaryPublic(Strict):
    """An interaction without any text."""

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


class InteractionPage(Strict):
    """A page of summaries, newest first."""

    items: list[InteractionSummaryPublic]
    total: int
    limit: int
    offset: int


class HistoryPublic(Strict):
    """One change of the item."""

    at: str
    kind: str
    status: str | None
    unit: str | None
    by_role: str
    by_agency: str
    note: str | None


class InteractionPublic(Strict):
    """One interaction with its texts (``readable`` false: erased, every sealed value null)."""

    summary: InteractionSummaryPublic
    citizen_id: str | None
    status_times: dict[str, datetime]
    home: bool
    text: str | None
    redacted_text: str | None
    pii_found: dict[str, int]
    attributes: dict[str, str | list[str]]
    location: LocationBody | None
    contact: ContactBody | None
    attachment: str | None
    rating_comment: str | None
    history: list[HistoryPublic]
    readable: bool


StatusFilter = Literal["open", "acknowledged", "in_progress", "resolved", "closed"]
