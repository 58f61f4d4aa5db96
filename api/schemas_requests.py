"""Bodies of the rights-request API (/v1/me/requests, /v1/requests): one model per direction."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.bounds import Code, FieldInput, FieldName, Line, Text
from api.schemas import Strict

Kind = Literal["access", "rectification", "erasure", "restriction", "objection"]
MessageText = Text  # a message or reason: free text, sealed under the citizen's key by the vault


class RequestCreate(Strict):
    """A rights request. ``fields``: a rectification's proposed values (field -> new value, null
    removes an optional field); ``purposes``: a restriction's or objection's purposes; ``message``:
    why (shown to the officer deciding, stored encrypted)."""

    kind: Kind
    fields: dict[FieldName, FieldInput | None] | None = Field(default=None, max_length=64)
    purposes: list[Code] | None = Field(default=None, min_length=1, max_length=20)
    message: MessageText | None = Field(default=None, min_length=1, max_length=2000)


class HistoryPublic(Strict):
    """One step: the status after it, what happened, when, by whom."""

    status: str
    event: str
    at: str
    actor: str
    actor_role: str


class MessagePublic(Strict):
    """A message on the request (text null: no longer readable, e.g. after erasure)."""

    at: str
    author_role: str
    text: str | None


class RequestPublic(Strict):
    """A request: status, routing, due date (one month, plus extensions), history, messages and,
    in ``detail``, names only: fields, purposes, what an erasure keeps and why, the outcome."""

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
    history: list[HistoryPublic]
    messages: list[MessagePublic]


class OverduePublic(Strict):
    """How many open requests are past their due date, and the first of them."""

    count: int
    requests: list[RequestPublic]


class ProposedPublic(Strict):
    """A rectification's proposed values, for the officer deciding it."""

    fields: dict[str, str | int | None]


class Assign(Strict):
    """Who handles the request (an officer's subject)."""

    assignee: Line = Field(min_length=1, max_length=256)


class Extend(Strict):
    """Extend the deadline by 1-2 months (two in all), with the reason told to the citizen."""

    months: int = Field(ge=1, le=2)
    reason: MessageText = Field(min_length=1, max_length=2000)


class Reason(Strict):
    """A denial's or refusal's reason, told to the citizen."""

    reason: MessageText = Field(min_length=1, max_length=2000)


class MessageCreate(Strict):
    """A message to the citizen."""

    text: MessageText = Field(min_length=1, max_length=2000)


class ErasurePreview(Strict):
    """What an erasure would destroy, what the law keeps (field -> statute), and what blocks it now."""

    erased: list[str]
    kept: dict[str, str]
    blocked_by: list[str]
