"""Request and response bodies of the representation routes (issue 17), one model per direction."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from api.bounds import LINE, Instant
from api.schemas import Strict

Action = Literal["view", "export", "consents", "requests"]
Scope = Annotated[list[Action], Field(min_length=1, max_length=4)]


class MandateCreate(Strict):
    """A mandate to the person with this national id (found through its blind index)."""

    national_id: Annotated[str, Field(min_length=1, max_length=64, pattern=LINE)]
    scope: Scope
    valid_from: Instant | None = None
    valid_until: Instant | None = None


class RelationCreate(Strict):
    """A parent (of a minor: ends at majority, no end date) or guardian relation, by a registrar."""

    kind: Literal["parent", "guardian"]
    represented_id: uuid.UUID
    representative_id: uuid.UUID
    scope: Scope | None = Field(default=None, description="Default: every action.")
    valid_from: Instant | None = None
    valid_until: Instant | None = None


class RelationPublic(Strict):
    """A relation: ids, kind, scope and dates only."""

    id: str
    represented_id: str
    representative_type: str
    representative_id: str
    kind: str
    scope: list[str]
    valid_from: str
    valid_until: str | None
    ends_at_majority: bool
    status: str
    recorded_at: str
    ended_at: str | None


class MyRepresentations(Strict):
    """Who may act for you, and for whom you may act (ended relations too)."""

    representing_me: list[RelationPublic]
    i_represent: list[RelationPublic]
