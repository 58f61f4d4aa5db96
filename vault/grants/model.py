"""What a grant is (its current state) and what an agency asks for."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Grant:
    """A grant's current state (the JWS is the signed artefact as issued)."""

    id: str
    agency: str
    purpose: str
    fields: list[str]
    lawful_basis: str
    status: str
    status_reason: str | None
    expires_at: str
    max_uses: int
    uses: int
    case_ref: str | None
    citizens: int
    created_at: str
    jws: str | None

    def public(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def grant_from_row(r: Any) -> Grant:
    """A Grant from a ``grants`` row."""
    return Grant(
        r.id,
        r.agency,
        r.purpose,
        list(json.loads(r.fields)),
        r.lawful_basis,
        r.status,
        r.status_reason,
        r.expires_at,
        int(r.max_uses),
        int(r.uses),
        r.case_ref,
        int(r.citizens),
        r.created_at,
        r.jws,
    )


@dataclass(frozen=True)
class GrantRequest:
    """What an agency asks for."""

    citizen_ids: list[str]
    purpose: str
    fields: list[str]
    duration_seconds: int
    max_uses: int
    case_ref: str | None = None
