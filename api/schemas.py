"""Request and response bodies. One model per direction, unknown members refused: a response model
cannot carry a ciphertext or a field the caller was not allowed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.bounds import Code, FieldInput, FieldName, Instant, Line, Text, Word

FieldValue = str | int


class Strict(BaseModel):
    """Refuse unknown members."""

    model_config = ConfigDict(extra="forbid")


class CitizenCreate(Strict):
    """A new profile: field name -> value (see policies/fields.yaml)."""

    fields: dict[FieldName, FieldInput] = Field(max_length=64)


class CitizenCorrect(Strict):
    """Corrections: field name -> new value, or null to remove an optional field."""

    fields: dict[FieldName, FieldInput | None] = Field(max_length=64)


class Created(Strict):
    """Id of a created resource."""

    id: uuid.UUID


class ProvenancePublic(Strict):
    """Where a value came from."""

    source_agency: str
    updated_at: datetime
    hold_basis: str | None = None


class CitizenPublic(Strict):
    """A profile as the caller may see it."""

    id: uuid.UUID
    status: Literal["active", "erased"]
    fields: dict[str, FieldValue]
    provenance: dict[str, ProvenancePublic]


class LookupResult(Strict):
    """Citizens matching an exact lookup."""

    ids: list[uuid.UUID]


class ErasurePublic(Strict):
    """What an erasure did."""

    id: uuid.UUID
    destroyed_fields: list[str]
    held_fields: dict[str, str]
    already_erased: bool


class AgencyCreate(Strict):
    """Register an agency."""

    code: Line = Field(min_length=3, max_length=64)
    name: Line = Field(min_length=1, max_length=200)


class AgencyUpdate(Strict):
    """Change an agency's status."""

    status: Literal["active", "retired"]


class AgencyPublic(Strict):
    """An agency."""

    code: str
    name: str
    status: str


class ClientCreate(Strict):
    """A new API client for an agency."""

    agency: Line = Field(min_length=3, max_length=64)
    name: Line = Field(min_length=1, max_length=200)


class ClientPublic(Strict):
    """An API client (never its secret). ``status``: pending-approval (no tokens until a second admin
    approves), active, or revoked."""

    client_id: str
    agency: str
    name: str
    status: str
    created_by: str | None = Field(default=None, description="Who created it (none for clients older than v0008).")
    approved_by: str | None = Field(default=None, description="Who approved its current secret.")
    secret_expires_at: datetime | None = Field(default=None, description="No token is issued after this time.")


class ClientCreated(ClientPublic):
    """A new client or a rotated secret: the secret is shown this once, stored only as a keyed hash."""

    client_secret: str


class RoleAssignmentBody(Strict):
    """A role held by a subject in an agency."""

    subject: Line = Field(min_length=1, max_length=256)
    agency: Line = Field(min_length=3, max_length=64)
    role: Word = Field(min_length=1, max_length=32)


class TokenResponse(Strict):
    """OAuth 2.0 token response."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


# -- purposes, consents, grants -------------------------------------------------------------------


class PurposeCreate(Strict):
    """A purpose of processing: a non-consent basis names its statute."""

    code: Code
    description: Text = Field(min_length=1, max_length=500)
    categories: list[Word] = Field(min_length=1, max_length=32)
    lawful_basis: Literal["consent", "legal-obligation", "public-task", "vital-interest"]
    statute: Line | None = Field(default=None, max_length=300)
    retention_days: int = Field(ge=1, le=36500)
    agencies: list[Code] = Field(min_length=1, max_length=100)


class PurposePublic(Strict):
    """A registered purpose."""

    code: str
    description: str
    categories: list[str]
    lawful_basis: str
    statute: str | None
    retention_days: int
    agencies: list[str]
    status: str
    version: int = Field(description="Bumped by each material change (wording, categories, statute, retention).")


class PurposeUpdate(Strict):
    """Retire a purpose (``status``, alone: every grant for it is revoked), or change it. A change of
    its wording, categories, statute or retention is a new version: consents given for the old one
    need the citizen's renewal. The lawful basis cannot change (register a new purpose)."""

    status: Literal["retired"] | None = None
    description: Text | None = Field(default=None, min_length=1, max_length=500)
    categories: list[Word] | None = Field(default=None, min_length=1, max_length=32)
    statute: Line | None = Field(default=None, max_length=300)
    retention_days: int | None = Field(default=None, ge=1, le=36500)
    agencies: list[Code] | None = Field(default=None, min_length=1, max_length=100)


class ConsentCreate(Strict):
    """Consent to an agency for a purpose: all its categories unless a subset is named."""

    agency: Code
    purpose: Code
    categories: list[Word] | None = Field(default=None, min_length=1, max_length=32)
    expires_at: Instant | None = None


class ConsentPublic(Strict):
    """A consent's current state."""

    id: str
    citizen_id: str
    agency: str
    purpose: str
    categories: list[str]
    status: str
    expires_at: str | None
    version: int
    updated_at: str
    purpose_version: int = Field(description="The purpose version this consent was given for.")
    current_purpose_version: int = Field(description="The purpose's version now; older: status renewal-required.")


class ConsentReceiptPublic(Strict):
    """One version of a consent with its receipt (compact JWS; verify with /.well-known/jwks.json)."""

    version: int
    status: str
    recorded_at: str
    purpose_version: int
    receipt: str


class ConsentPreviewPublic(Strict):
    """What approving a request makes of your consent to the agency for the purpose: what you hold
    now, what the request adds, the resulting categories and expiry (unless you choose another)."""

    consent_id: str | None
    purpose_version: int
    purpose_description: str
    held_categories: list[str]
    held_purpose_version: int | None
    added_categories: list[str]
    categories: list[str]
    expires_at: str | None


class GrantApproval(Strict):
    """Approving a request. ``expires_at``: until when your consent holds (null: until you withdraw
    it; absent: it keeps the expiry it has). ``purpose_version``: the version you were shown (409
    if the purpose changed since)."""

    expires_at: Instant | None = None
    purpose_version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class GrantCreate(Strict):
    """Ask to read named fields of one citizen (``citizen_id``) or many (``citizen_ids``) for a purpose."""

    citizen_id: uuid.UUID | None = None
    citizen_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=100_000)
    purpose: Code
    fields: list[FieldName] = Field(min_length=1, max_length=64)
    duration_seconds: int = Field(default=3600, ge=60, le=366 * 86400)
    max_uses: int = Field(default=1, ge=1, le=1_000_000)
    case_ref: Line | None = Field(default=None, max_length=100)


class GrantPublic(Strict):
    """A grant: its status and the signed artefact (JWS) as issued."""

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


class GrantRequestPublic(GrantPublic):
    """A request waiting for your consent, with what approving it makes of your consent."""

    consent: ConsentPreviewPublic


class GrantRecord(Strict):
    """One citizen's granted fields (null when the record cannot be read: erased or unavailable)."""

    citizen_id: str
    fields: dict[str, FieldValue] | None


class GrantData(Strict):
    """A page of a grant's citizens; pass ``next_after`` as ``after`` for the next (each page is one use)."""

    grant_id: str
    purpose: str
    fields: list[str]
    records: list[GrantRecord]
    next_after: str | None


class SignedBundle(Strict):
    """A machine-readable document and its compact JWS (same content, signed by the vault)."""

    bundle: dict[str, Any]
    jws: str


# -- PII detection (issue #6) ------------------------------------------------------------------------
class PiiScanRequest(Strict):
    """Free text to scan (at most 20,000 characters, 413 above: api/routes/pii.py; never stored or logged)."""

    text: str
    redact: bool = False


class PiiEntityPublic(Strict):
    """One detection: type, offsets [start, end) in Unicode code points, score in [0, 1]."""

    type: str
    start: int
    end: int
    score: float


class PiiScanResult(Strict):
    """What a scan found; ``redacted`` (when asked) has ``[TYPE]`` in place of each entity."""

    entities: list[PiiEntityPublic]
    redacted: str | None = None


class PiiEntityCount(Strict):
    """How often a type was found in a stored field, and its best score."""

    count: int
    max_score: float


class PiiFieldFindings(Strict):
    """The screening of one free-text field at its last write: types only, never values."""

    entities: dict[str, PiiEntityCount]
    forbidden: list[str]
    action: Literal["none", "accepted", "redacted", "refused"]
    scanned_at: datetime


class PiiFindingsPublic(Strict):
    """Stored PII findings of one citizen's free-text fields."""

    citizen_id: uuid.UUID
    fields: dict[str, PiiFieldFindings]
