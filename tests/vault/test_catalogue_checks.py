"""The compiled per-field checks accept, canonicalise and refuse exactly what the generic validator
did (kept below as the reference), with the same reasons, and whole profiles get the same problems."""

from __future__ import annotations

import datetime as dt
import pickle
import re
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.catalogue import Catalogue, FieldSpec, Value, compile_check
from vault.errors import ValidationFailed
from vault.settings import Settings

CATALOGUE = Catalogue.load(Settings().catalogue_path)

# Every branch: each type, with and without a pattern and bounds.
SPECS = [
    *CATALOGUE.fields.values(),
    FieldSpec(name="code", category="x", type="string", sensitivity="low", max_length=8, pattern="[A-Z]{2}[0-9]+"),
    FieldSpec(name="work_email", category="x", type="email", sensitivity="low", pattern=r".*@example\.org"),
    FieldSpec(name="landline", category="x", type="phone", sensitivity="low", pattern=r"\+.*"),
    FieldSpec(name="day", category="x", type="date", sensitivity="low", pattern="never"),
    FieldSpec(name="count", category="x", type="integer", sensitivity="low"),
    FieldSpec(name="floor", category="x", type="integer", sensitivity="low", minimum=-3),
    FieldSpec(name="memo", category="x", type="text", sensitivity="low", max_length=5),
]

# --- the generic validator as it was before checks were compiled (the reference) -----------------
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_STRICT = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9 ()\-.]+")
_INT = re.compile(r"-?[0-9]{1,19}")


def _kind(raw: object) -> str:
    return {dict: "an object", list: "a list", type(None): "null", bool: "a boolean"}.get(type(raw), type(raw).__name__)


def reference(spec: FieldSpec, raw: object) -> Value:
    if spec.type == "integer":
        if isinstance(raw, bool):
            raise ValueError("expected an integer, got a boolean")
        if isinstance(raw, str) and _INT.fullmatch(raw.strip()):
            raw = int(raw.strip())
        if not isinstance(raw, int):
            raise ValueError(f"expected an integer, got {_kind(raw)}")
        if spec.minimum is not None and raw < spec.minimum:
            raise ValueError(f"below the minimum {spec.minimum}")
        if spec.maximum is not None and raw > spec.maximum:
            raise ValueError(f"above the maximum {spec.maximum}")
        return raw
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {_kind(raw)}")
    value = raw.strip()
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    if not value:
        raise ValueError("empty")
    if len(value) > spec.max_length:
        raise ValueError(f"longer than {spec.max_length} characters")
    if not value.isprintable() and (_CONTROL_TEXT if spec.type == "text" else _CONTROL_STRICT).search(value):
        raise ValueError("contains control characters")
    if spec.type == "date":
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError("not a date in YYYY-MM-DD form") from None
    if spec.type == "email" and not _EMAIL.fullmatch(value):
        raise ValueError("not an email address")
    if spec.type == "phone":
        digits = sum(map(value.count, "0123456789"))
        if not _PHONE.fullmatch(value) or not 5 <= digits <= 15:
            raise ValueError("not a phone number")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise ValueError("does not match the required format")
    return value


def reference_profile(catalogue: Catalogue, values: dict[str, Any], creating: bool) -> dict[str, Value | None]:
    problems: dict[str, str] = {}
    clean: dict[str, Value | None] = {}
    for name, raw in values.items():
        spec = catalogue.fields.get(name)
        if spec is None:
            problems[name if re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) else "?"] = "unknown field"
            continue
        if raw is None or (creating and isinstance(raw, str) and not raw.strip()):
            if creating or spec.required:
                if spec.required:
                    problems[name] = "required"
                continue
            clean[name] = None
            continue
        try:
            clean[name] = reference(spec, raw)
        except ValueError as exc:
            problems[name] = str(exc)
    if creating:
        for name, spec in catalogue.fields.items():
            if spec.required and name not in values and name not in problems:
                problems[name] = "required"
        if not problems and not clean:
            problems["fields"] = "no fields given"
    if problems:
        raise ValidationFailed(problems)
    return clean


# --- strategies ---------------------------------------------------------------------------------
_ALPHABET = "0123456789+-.() @_aZé\u00a0\t\n\x07\x85\u0301\u2028-:TW"
texts = st.one_of(
    st.text(alphabet=_ALPHABET, max_size=24),
    st.text(max_size=12),
    st.from_regex(r"\s?\+?[0-9 ()\-.]{0,20}\s?", fullmatch=True),
    st.from_regex(r"[a-z.]{1,6}@[a-z]{1,5}\.[a-z]{2,3}", fullmatch=True),
    st.from_regex(r"[12][0-9]{3}-[01][0-9]-[0-3][0-9]", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,21}", fullmatch=True),
)
raws = st.one_of(
    texts,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


def outcome(check: Any, raw: object) -> tuple[str, object]:
    try:
        value = check(raw)
    except ValueError as exc:
        return "refused", str(exc)
    return "accepted", (type(value), value)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.name}:{s.type}")
@settings(max_examples=400, deadline=None)
@given(raw=raws)
def test_a_compiled_check_decides_as_the_generic_validator(spec: FieldSpec, raw: object) -> None:
    expected = outcome(lambda r: reference(spec, r), raw)
    assert outcome(compile_check(spec), raw) == expected
    assert outcome(spec.validate_value, raw) == expected


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(st.sampled_from([*CATALOGUE.fields, "nickname", "bad\x00name"]), raws, max_size=11),
    creating=st.booleans(),
)
def test_whole_profiles_get_the_same_values_and_problems(values: dict[str, Any], creating: bool) -> None:
    def run(validate: Any) -> tuple[str, Any]:
        try:
            return "ok", list(validate().items())
        except ValidationFailed as exc:
            return "refused", list(exc.problems.items())  # same problems, in the same order

    expected = run(lambda: reference_profile(CATALOGUE, values, creating))
    got = run(lambda: CATALOGUE.validate(values, creating=creating))
    assert got == expected


def test_a_catalogue_pickles_without_its_compiled_checks() -> None:
    copy = pickle.loads(pickle.dumps(CATALOGUE))
    assert copy == CATALOGUE
    assert copy.validate({"given_name": " Ada ", "family_name": "Lovelace"}, creating=True)["given_name"] == "Ada"


def reference_index_form(spec: FieldSpec, value: Value) -> bytes:
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    if spec.normalise == "identifier":
        text = re.sub(r"[\W_]+", "", text)
    elif spec.normalise == "email":
        text = text.strip()
    else:
        text = re.sub(r"\s+", " ", text).strip()
    return text.encode("utf-8")


@pytest.mark.parametrize("normalise", ["identifier", "email", "text"])
@settings(max_examples=500, deadline=None)
@given(value=texts | st.integers())
def test_index_forms_are_those_of_the_generic_normalisation(normalise: str, value: str | int) -> None:
    spec = FieldSpec(name="f", category="x", type="string", sensitivity="low", normalise=normalise)
    assert spec.index_form(value) == reference_index_form(spec, value)
