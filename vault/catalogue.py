"""The field catalogue (policies/fields.yaml): what a profile may hold and how each value is checked."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
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
# A lone surrogate (JSON's "\ud800") has no UTF-8 form: it could be neither encrypted nor indexed.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Phone characters only ("+" first, digits, spaces, ( ) - .), with 5 to 15 digits.
_PHONE = re.compile(r"\+?[ ()\-.]*(?:[0-9][ ()\-.]*){5,15}")
_INT = re.compile(r"-?[0-9]{1,19}")
_SEPARATORS = re.compile(r"[\W_]+", re.UNICODE)
_ASCII_SEPARATORS = bytes(c for c in range(128) if not chr(c).isalnum())  # what _SEPARATORS removes from ASCII
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
        return compile_check(self)(raw)

    def encode(self, value: Value) -> bytes:
        """Plaintext bytes of a canonical value (what gets encrypted)."""
        return encode_value(value)

    def decode(self, data: bytes) -> Value:
        """Inverse of :meth:`encode`."""
        text = data.decode("utf-8")
        return int(text) if self.type == "integer" else text

    def index_form(self, value: Value) -> bytes:
        """The normalised form that feeds the blind index: case, whitespace and separators folded."""
        text = str(value)
        if text.isascii():  # NFKC leaves ASCII as it is, and its case folding is lower()
            text = text.lower()
            if self.normalise == "identifier":  # ASCII separators: all but letters and digits
                return text.encode("ascii").translate(None, _ASCII_SEPARATORS)
        else:
            text = unicodedata.normalize("NFKC", text).casefold()
        if self.normalise == "identifier":
            text = _SEPARATORS.sub("", text)
        elif self.normalise == "email":
            text = text.strip()
        else:
            text = _WS.sub(" ", text).strip()
        return text.encode("utf-8")


def encode_value(value: Value) -> bytes:
    """Plaintext bytes of a canonical value of any field (:meth:`FieldSpec.encode`)."""
    return str(value).encode("utf-8")


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


Check = Callable[[object], Value]


def compile_check(spec: FieldSpec) -> Check:
    """The check of one field's values, specialised once for its type and limits: returns the
    canonical value or raises ValueError with a reason that omits the value. The one definition of
    what a field accepts (:meth:`FieldSpec.validate_value` and :meth:`Catalogue.validate` use it)."""
    if spec.type == "integer":
        return _integer_check(spec.minimum, spec.maximum)
    kind, max_length = spec.type, spec.max_length
    control = (_CONTROL_TEXT if kind == "text" else _CONTROL_STRICT).search
    surrogate = _SURROGATE.search
    pattern = None if spec.pattern is None else _compiled(spec.pattern).fullmatch
    too_long = f"longer than {max_length} characters"
    normalize = unicodedata.normalize

    def text(raw: object) -> str:
        if not isinstance(raw, str):
            raise ValueError(f"expected a string, got {_kind(raw)}")
        value = raw.strip()
        if not value.isascii():
            value = normalize("NFC", value)
        if not value:
            raise ValueError("empty")
        if len(value) > max_length:
            raise ValueError(too_long)
        # isprintable() is a fast C check; the regex only runs for text with newlines or tabs.
        if not value.isprintable():
            if control(value):
                raise ValueError("contains control characters")
            if surrogate(value):
                raise ValueError("not valid Unicode (a lone surrogate)")
        return value

    if kind == "date":  # the canonical ISO form; a pattern, if any, is not consulted
        fromisoformat = dt.date.fromisoformat

        def date(raw: object) -> str:
            value = text(raw)
            try:
                return fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError("not a date in YYYY-MM-DD form") from None

        return date
    shape = {"email": (_EMAIL.fullmatch, "not an email address"), "phone": (_PHONE.fullmatch, "not a phone number")}
    if kind in shape:
        fits, wrong = shape[kind]

        def shaped(raw: object) -> str:
            value = text(raw)
            if not fits(value):
                raise ValueError(wrong)
            if pattern is not None and not pattern(value):
                raise ValueError("does not match the required format")
            return value

        return shaped
    if pattern is None:
        return text
    matches = pattern

    def patterned(raw: object) -> str:
        value = text(raw)
        if not matches(value):
            raise ValueError("does not match the required format")
        return value

    return patterned


def _integer_check(minimum: int | None, maximum: int | None) -> Check:
    below, above = f"below the minimum {minimum}", f"above the maximum {maximum}"

    def integer(raw: object) -> int:
        if isinstance(raw, bool):
            raise ValueError("expected an integer, got a boolean")
        if isinstance(raw, str) and _INT.fullmatch(raw.strip()):
            raw = int(raw.strip())
        if not isinstance(raw, int):
            raise ValueError(f"expected an integer, got {_kind(raw)}")
        if minimum is not None and raw < minimum:
            raise ValueError(below)
        if maximum is not None and raw > maximum:
            raise ValueError(above)
        return raw

    return integer


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
    # Each field's check, compiled once (validation runs for every value of every import line).
    _checks: dict[str, Check] = dataclass_field(init=False, repr=False, compare=False)
    _required: tuple[str, ...] = dataclass_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_checks", {name: compile_check(spec) for name, spec in self.fields.items()})
        object.__setattr__(self, "_required", tuple(n for n, s in self.fields.items() if s.required))

    def __reduce__(self) -> tuple[type[Catalogue], tuple[dict[str, FieldSpec]]]:
        return Catalogue, (dict(self.fields),)  # the compiled checks are rebuilt, never pickled

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        """Read and check a catalogue file; any problem is a ConfigurationError."""
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            parsed = _CatalogueFile.model_validate(raw)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise ConfigurationError(f"field catalogue {path} is unusable: {exc}") from None
        for name in parsed.fields:
            if not _FIELD_NAME.fullmatch(name):
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
        checks, required = self._checks, self._required
        problems: dict[str, str] = {}
        clean: dict[str, Value | None] = {}
        for name, raw in values.items():
            check = checks.get(name)
            if check is None:
                problems[_safe_name(name)] = "unknown field"
                continue
            if raw is None:
                if creating or name in required:
                    if name in required:
                        problems[name] = "required"
                    continue
                clean[name] = None
                continue
            try:
                clean[name] = check(raw)
            except ValueError as exc:
                # A blank string is an absent value when creating. Every check refuses one, so it
                # is looked for only here, after the check, instead of stripping every value twice.
                if creating and isinstance(raw, str) and not raw.strip():
                    if name in required:
                        problems[name] = "required"
                    continue
                problems[name] = str(exc)
        if creating:
            for name in required:
                if name not in values and name not in problems:
                    problems[name] = "required"
            if not problems and not clean:
                problems["fields"] = "no fields given"
        if problems:
            raise ValidationFailed(problems)
        return clean

    def encode_all(self, values: Mapping[str, Value | None]) -> dict[str, bytes]:
        """:meth:`FieldSpec.encode` of each non-null value, by name, in the same order (bulk
        imports: one pass instead of a method call per value)."""
        return {name: str(value).encode("utf-8") for name, value in values.items() if value is not None}

    @property
    def searchable(self) -> list[FieldSpec]:
        """Fields with a blind index."""
        return [s for s in self.fields.values() if s.searchable]


def _safe_name(name: str) -> str:
    """A field name as it may appear in an error: only a name shaped like a field name is repeated
    (caller-controlled text in a problem document could carry markup or personal data)."""
    return name if _FIELD_NAME.fullmatch(name) else "?"
