"""The field catalogue (policies/fields.yaml): what a profile may hold and how each value is checked."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vault.errors import ConfigurationError, ValidationFailed
from vault.pii.model import ENTITY_TYPES

FieldType = Literal["string", "date", "integer", "email", "phone", "identifier", "text"]
Value = str | int

_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # free text may hold newlines and tabs
_CONTROL_STRICT = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9 ()\-.]+")
_INT = re.compile(r"-?[0-9]{1,19}")
_SEPARATORS = re.compile(r"[\W_]+", re.UNICODE)
_WS = re.compile(r"\s+")
DEFAULT_MAX_LENGTH = 1000


class Retention(BaseModel):
    """Retention rules of one field."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    legal_hold: str | None = None


class PiiRule(BaseModel):
    """What a free-text field may hold (issue #6): entity types it must not contain, and what to do."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    forbidden: tuple[str, ...] = ()
    action: Literal["accept", "redact", "refuse"] = "refuse"

    @model_validator(mode="after")
    def _known(self) -> PiiRule:
        unknown = sorted(set(self.forbidden) - ENTITY_TYPES)
        if unknown:
            raise ValueError(f"unknown PII entity types: {', '.join(unknown)}")
        return self


class FieldSpec(BaseModel):
    """One catalogue entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    category: str
    type: FieldType
    sensitivity: Literal["low", "medium", "high", "special"]
    max_length: int = Field(default=DEFAULT_MAX_LENGTH, gt=0, le=1_000_000)
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    required: bool = False
    searchable: bool = False
    unique: bool = False
    normalise: Literal["identifier", "email", "text"] = "text"
    free_text: bool = False
    pii: PiiRule = PiiRule()
    retention: Retention = Retention()

    @model_validator(mode="after")
    def _coherent(self) -> FieldSpec:
        if self.unique and not self.searchable:
            raise ValueError("unique needs searchable")
        if self.pii.forbidden and not self.free_text:
            raise ValueError("pii rules need free_text")
        if self.pattern is not None:
            re.compile(self.pattern)
        return self

    @property
    def legal_hold(self) -> str | None:
        """The recorded basis for keeping this field through an erasure, if any."""
        return self.retention.legal_hold

    def validate_value(self, raw: object) -> Value:
        """Check and canonicalise one value; raises ValueError with a reason that omits the value."""
        if self.type == "integer":
            return self._integer(raw)
        if not isinstance(raw, str):
            raise ValueError(f"expected a string, got {_kind(raw)}")
        value = raw.strip()
        if not value.isascii():
            value = unicodedata.normalize("NFC", value)
        if not value:
            raise ValueError("empty")
        if len(value) > self.max_length:
            raise ValueError(f"longer than {self.max_length} characters")
        # isprintable() is a fast C check; the regex only runs for text with newlines or tabs.
        if not value.isprintable() and (_CONTROL_TEXT if self.type == "text" else _CONTROL_STRICT).search(value):
            raise ValueError("contains control characters")
        kind = self.type
        if kind == "date":
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError("not a date in YYYY-MM-DD form") from None
        if kind == "email" and not _EMAIL.fullmatch(value):
            raise ValueError("not an email address")
        if kind == "phone":
            digits = sum(map(value.count, "0123456789"))
            if not _PHONE.fullmatch(value) or not 5 <= digits <= 15:
                raise ValueError("not a phone number")
        if self.pattern is not None and not _compiled(self.pattern).fullmatch(value):
            raise ValueError("does not match the required format")
        return value

    def _integer(self, raw: object) -> int:
        if isinstance(raw, bool):
            raise ValueError("expected an integer, got a boolean")
        if isinstance(raw, str) and _INT.fullmatch(raw.strip()):
            raw = int(raw.strip())
        if not isinstance(raw, int):
            raise ValueError(f"expected an integer, got {_kind(raw)}")
        if self.minimum is not None and raw < self.minimum:
            raise ValueError(f"below the minimum {self.minimum}")
        if self.maximum is not None and raw > self.maximum:
            raise ValueError(f"above the maximum {self.maximum}")
        return raw

    def encode(self, value: Value) -> bytes:
        """Plaintext bytes of a canonical value (what gets encrypted)."""
        return str(value).encode("utf-8")

    def decode(self, data: bytes) -> Value:
        """Inverse of :meth:`encode`."""
        text = data.decode("utf-8")
        return int(text) if self.type == "integer" else text

    def index_form(self, value: Value) -> bytes:
        """The normalised form that feeds the blind index: case, whitespace and separators folded."""
        text = unicodedata.normalize("NFKC", str(value)).casefold()
        if self.normalise == "identifier":
            text = _SEPARATORS.sub("", text)
        elif self.normalise == "email":
            text = text.strip()
        else:
            text = _WS.sub(" ", text).strip()
        return text.encode("utf-8")


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _kind(raw: object) -> str:
    return {dict: "an object", list: "a list", type(None): "null", bool: "a boolean"}.get(type(raw), type(raw).__name__)


class _CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    fields: dict[str, FieldSpec]


@dataclass(frozen=True)
class Catalogue:
    """All fields, by name."""

    fields: Mapping[str, FieldSpec]

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        """Read and check a catalogue file; any problem is a ConfigurationError."""
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            parsed = _CatalogueFile.model_validate(raw)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise ConfigurationError(f"field catalogue {path} is unusable: {exc}") from None
        for name in parsed.fields:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ConfigurationError(f"field catalogue {path}: bad field name {name!r}")
        return cls({name: spec.model_copy(update={"name": name}) for name, spec in parsed.fields.items()})

    def spec(self, name: str) -> FieldSpec:
        """The entry for ``name``; ValidationFailed when the field is unknown."""
        spec = self.fields.get(name)
        if spec is None:
            raise ValidationFailed({_safe_name(name): "unknown field"})
        return spec

    def check_names(self, names: list[str] | tuple[str, ...]) -> None:
        """Raise ValidationFailed naming every unknown field."""
        unknown = {_safe_name(n): "unknown field" for n in names if n not in self.fields}
        if unknown:
            raise ValidationFailed(unknown)

    def validate(self, values: Mapping[str, object], *, creating: bool) -> dict[str, Value | None]:
        """Validate a whole profile (or a correction, where ``None`` removes a field)."""
        problems: dict[str, str] = {}
        clean: dict[str, Value | None] = {}
        for name, raw in values.items():
            spec = self.fields.get(name)
            if spec is None:
                problems[_safe_name(name)] = "unknown field"
                continue
            if raw is None or (creating and isinstance(raw, str) and not raw.strip()):
                if creating or spec.required:
                    if spec.required:
                        problems[name] = "required"
                    continue
                clean[name] = None
                continue
            try:
                clean[name] = spec.validate_value(raw)
            except ValueError as exc:
                problems[name] = str(exc)
        if creating:
            for name, spec in self.fields.items():
                if spec.required and name not in values and name not in problems:
                    problems[name] = "required"
            if not problems and not clean:
                problems["fields"] = "no fields given"
        if problems:
            raise ValidationFailed(problems)
        return clean

    @property
    def searchable(self) -> list[FieldSpec]:
        """Fields with a blind index."""
        return [s for s in self.fields.values() if s.searchable]


def _safe_name(name: str) -> str:
    """A field name as it may appear in an error: unknown names are truncated and made printable."""
    printable = "".join(c if c.isprintable() else "?" for c in name[:64])
    return printable or "?"
