"""An import line is read exactly as json.loads reads it, fast path or not: the same objects, and
the same refusals (never with the line's content)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vault.import_source import MAX_LINE_BYTES, LineError, parse_item


def reference(raw: bytes) -> dict[str, Any] | LineError:
    if len(raw) > MAX_LINE_BYTES:
        return LineError(1, {"line": f"longer than {MAX_LINE_BYTES} bytes"})
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return LineError(1, {"line": "not valid JSON"})
    if not isinstance(obj, dict):
        return LineError(1, {"line": "not a JSON object of field names to values"})
    return obj


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(st.text(max_size=6), values, max_size=4)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    obj = draw(objects | values)
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([None, (",", ":")])))
    before, after = st.sampled_from(["", " ", "\ufeff", "\t"]), st.sampled_from(["", "\n", " \r\n", "x", " {}"])
    text = draw(before) + text + draw(after)
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-16-le", "utf-16-be", "utf-32"])), "surrogatepass")
    if draw(st.booleans()):  # damage it
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=3)) + data[at + draw(st.integers(0, 2)) :]
    return data


@settings(max_examples=1500, deadline=None)
@given(raw=lines() | st.binary(max_size=12).map(lambda b: b"{" + b))
def test_a_line_is_read_as_json_loads_reads_it(raw: bytes) -> None:
    assert repr(parse_item(1, raw)) == repr(reference(raw))  # repr: NaN is not equal to itself


def test_only_json_whitespace_may_follow_the_object() -> None:
    for tail in ["", " ", "\t\r\n", "\x0b", "\x0c", "\x1c", "\u0085", "\u00a0", "\u2028", "\u3000"]:
        raw = ('{"a": 1}' + tail).encode()
        assert repr(parse_item(1, raw)) == repr(reference(raw)), repr(tail)
