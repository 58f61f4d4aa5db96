"""The import workers' shortcuts give exactly what the plain code gave: ids, data keys, encoded
values, the pre-filter's shortcut through intake screening, and a whole prepared batch compared
with the previous ``prepare`` (kept below as the reference). All data is fictitious."""

from __future__ import annotations

import hashlib
import json
import pickle
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import aead
from keys.dekimport import DekRows, fresh_keys
from keys.dekstore import raw_aad, wrap_aad
from tests.support.importer_helpers import make_vault
from vault import demo
from vault.catalogue import Catalogue
from vault.errors import ValidationFailed
from vault.fieldcipher import SLOT_PROFILE, FieldCipher, unpack_record
from vault.ids import ImportIds, uuid_from_bytes
from vault.import_prepare import DUPLICATE, ImportRows, PreparedBatch, WorkerState, prepare
from vault.import_source import LineError, RawItem, parse_item
from vault.pii.intake import NOTHING_FOUND, FieldFindings, Intake, own_values
from vault.pii.prefilter import cannot_hold, values_cannot_hold
from vault.profiles import records
from vault.runtime import Vault
from vault.settings import Settings

# -- ids ------------------------------------------------------------------------------------


@settings(deadline=None)  # no timing: a loaded machine must not fail it
@given(st.binary(min_size=16, max_size=16))
def test_uuid_from_bytes_is_the_uuid_constructor(raw: bytes) -> None:
    made, plain = uuid_from_bytes(raw), uuid.UUID(bytes=raw)
    assert made == plain
    assert (made.int, made.bytes, made.hex, str(made), made.version, made.variant, made.is_safe) == (
        plain.int,
        plain.bytes,
        plain.hex,
        str(plain),
        plain.version,
        plain.variant,
        plain.is_safe,
    )
    assert hash(made) == hash(plain)
    assert pickle.loads(pickle.dumps(made)) == plain
    assert {made: 1}[plain] == 1


@settings(deadline=None)  # no timing: a loaded machine must not fail it
@given(st.uuids(), st.integers(0, 2**28 - 1), st.integers(1, 2**40))
def test_import_ids_are_the_previous_ones(run: uuid.UUID, batch: int, line: int) -> None:
    ids = ImportIds(run, batch)
    head = bytearray(run.bytes[:6] + batch.to_bytes(4, "big"))
    head[6] = (head[6] & 0x0F) | 0x80
    head[8] = (head[8] & 0x3F) | 0x80
    previous = uuid.UUID(bytes=bytes(head) + hashlib.sha256(run.bytes + line.to_bytes(8, "big")).digest()[:6])
    assert ids(line) == previous
    assert ids.raw(line) == previous.bytes
    assert ids.raw(line) == ids.raw(line)  # the per-batch hash state is copied, never consumed


# -- data keys ------------------------------------------------------------------------------


def test_fresh_keys_are_distinct_full_size_keys() -> None:
    keys = fresh_keys(1000)
    assert len(keys) == 1000
    assert all(len(k) == aead.KEY_BYTES for k in keys)
    assert len(set(keys)) == 1000
    assert fresh_keys(0) == []


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = make_vault(tmp_path / "vault")
    yield v
    v.close()


def test_wrap_raw_gives_the_rows_of_wrap(vault: Vault) -> None:
    deks = DekRows(vault.dekstore)
    owners = [uuid.uuid4() for _ in range(5)]
    keys = fresh_keys(5)
    plain = deks.wrap(list(zip(owners, keys, strict=True)), SLOT_PROFILE, 1)
    raw = deks.wrap_raw(
        [(o.bytes, deks.codec.converter("owner_id")(o), k) for o, k in zip(owners, keys, strict=True)], SLOT_PROFILE, 1
    )
    assert deks.wrap_raw([], SLOT_PROFILE, 1) == []
    provider = vault.dekstore.provider
    for owner, key, a, b in zip(owners, keys, plain, raw, strict=True):
        assert a[:2] == b[:2]  # owner and KEK version; the wrapped blobs differ by their random nonces
        assert len(a[2]) == len(b[2])
        for row in (a, b):
            assert provider.unwrap(row[1], row[2], wrap_aad(owner, SLOT_PROFILE, 1)) == key
        assert raw_aad(owner.bytes, SLOT_PROFILE, 1) == wrap_aad(owner, SLOT_PROFILE, 1)


# -- encoding -------------------------------------------------------------------------------

CATALOGUE = Catalogue.load(Settings().catalogue_path)
_values = st.one_of(st.none(), st.integers(-(2**70), 2**70), st.text(max_size=20))


@settings(deadline=None)  # no timing: a loaded machine must not fail it
@given(st.dictionaries(st.sampled_from(sorted(CATALOGUE.fields)), _values))
def test_encode_all_is_each_fields_encode(values: dict[str, Any]) -> None:
    expected = {n: CATALOGUE.fields[n].encode(v) for n, v in values.items() if v is not None}
    encoded = CATALOGUE.encode_all(values)
    assert encoded == expected
    assert list(encoded) == list(expected)  # same order: the record sorts names, the provenance key does not


# -- the pre-filter's shortcut ----------------------------------------------------------------

_ASCII = "abAB_xy -.,'\n\t"
_WIDE = _ASCII + "\u00c9\u00e9\u00df\u1e9e\u03a3\u03c3\u03c2\u0130i\u01c5\u0663\u00b2\u0301"
_words = st.text(alphabet=_ASCII, max_size=14) | st.text(alphabet=_WIDE, max_size=14)
_owns = st.lists(st.tuples(st.sampled_from(["PERSON", "LOCATION", "EMAIL_ADDRESS"]), _words), max_size=5)


@settings(max_examples=500, deadline=None)
@given(text=_words | st.text(max_size=10), own=_owns)
def test_values_cannot_hold_is_cannot_hold(text: str, own: list[tuple[str, str]]) -> None:
    assert values_cannot_hold(text, [v for _, v in own]) == cannot_hold(text, own)


_notes = st.sampled_from(
    ["", "  ", "Routine check-up; no findings.", "Seen on 12 May.", "Lives on Treacle Mews.", "mail me @ home"]
) | st.text(alphabet=_ASCII + "Tt", max_size=30)
_names = st.sampled_from(["Zebulon", "Quibblewick", "Treacle", "ab", "A B"]) | _words


@settings(max_examples=300, deadline=None)
@given(note=st.none() | _notes, given_name=st.none() | _names, address=st.none() | _names, income=st.integers())
def test_cleared_is_what_screen_finds_when_the_pre_filter_clears(
    note: str | None, given_name: str | None, address: str | None, income: int
) -> None:
    intake = Intake(CATALOGUE)
    values: dict[str, Any] = {"income": income}
    for name, value in (("given_name", given_name), ("health_notes", note), ("address", address)):
        if value is not None:
            values[name] = value
    cleared = intake.cleared(values)
    own = own_values(values)
    if cleared is None:  # only when some text needs the detector
        assert isinstance(note, str)
        assert note.strip()
        assert not cannot_hold(note, own)
        return
    screened, findings = intake.screen(values, own)  # the pre-filter clears it: no detector loaded
    assert screened == values
    assert list(findings) == cleared
    assert all(f == FieldFindings(f.field, {}) and f.stored() == NOTHING_FOUND for f in findings.values())


def test_cleared_defers_to_screen_with_an_injected_detector() -> None:
    intake = Intake(CATALOGUE, detector=lambda: pytest.fail("not to be called"))
    assert intake.cleared({"health_notes": "Routine check-up; no findings."}) is None
    assert Intake(CATALOGUE).cleared({"given_name": "Zebulon"}) == []


# -- a whole batch, against the previous prepare ---------------------------------------------


def reference_prepare(
    state: WorkerState, run: uuid.UUID, batch_no: int, items: Sequence[RawItem], agency: str, now: datetime
) -> PreparedBatch:
    """``prepare`` as it was before the shortcuts (commit 1dede04)."""
    catalogue, indexer, intake, unique, rows = state.catalogue, state.indexer, state.intake, state.unique, state.rows
    lines: list[int] = []
    ids: list[str] = []
    citizen_rows: list[tuple[Any, bytes, str]] = []
    index_rows: list[tuple[str, bytes, bytes, Any]] = []
    unique_keys: list[tuple[str, bytes, int]] = []
    deks: list[tuple[uuid.UUID, bytes]] = []
    pii_rows: list[tuple[Any, str, str]] = []
    errors: list[LineError] = []
    seen: set[tuple[str, bytes]] = set()
    citizen_id = ImportIds(run, batch_no)
    for number, raw in items:
        item = parse_item(number, raw)
        if isinstance(item, LineError):
            errors.append(item)
            continue
        try:
            values = catalogue.validate(item, creating=True)
            values, findings = intake.screen(values, own_values(values))
        except ValidationFailed as exc:
            errors.append(LineError(number, exc.problems))
            continue
        citizen = citizen_id(number)
        entries = indexer.entries(citizen, values)
        mine = [(f, d) for f, d, _ in entries if f in unique]
        dup = next((k for k in mine if k in seen), None) if mine else None
        if dup is not None:
            errors.append(LineError(number, {dup[0]: DUPLICATE}))
            continue
        if mine:
            seen.update(mine)
            unique_keys += [(f, d, number) for f, d in mine]
        dek = aead.new_key()
        record, provenance = records.seal(catalogue, citizen, dek, values, agency, now)
        owner = rows.citizen_id(citizen)
        citizen_rows.append((owner, record, provenance))
        index_rows += [(f, d, t, owner) for f, d, t in entries]
        if findings:
            pii_rows += [(owner, f.field, f.stored()) for f in findings.values()]
        lines.append(number)
        ids.append(str(citizen))
        deks.append((citizen, dek))
    citizen_rows.sort(key=itemgetter(0))
    index_rows.sort(key=itemgetter(0, 1, 2))
    if state.deks.in_workers:
        keys = state.deks.wrap(deks, SLOT_PROFILE, records.NEW_DEK_VERSION)
        deks = []
    else:
        keys = []
    return PreparedBatch(
        lines, ids, citizen_rows, rows.index.rows(index_rows), unique_keys, keys, deks, pii_rows, errors, now
    )


class _ParentWraps(DekRows):
    @property
    def in_workers(self) -> bool:
        return False


def _batch_lines() -> list[bytes]:
    people = [demo.profile(i) for i in range(40)]
    people[3]["health_notes"] = "Seen on 12 May."  # a digit: the full scan runs
    people[4]["health_notes"] = "SSN 536-90-4399 written on the form"  # refused by the field's rule
    people[5]["health_notes"] = "   "
    people[6]["email"] = "not an address"
    people[7]["national_id"] = people[2]["national_id"]  # duplicate inside the batch
    people[8]["email"] = people[9]["email"]  # a shared e-mail is fine (not unique)
    del people[10]["health_notes"]
    people[11]["health_notes"] = f"Seen with {people[11]['given_name'].upper()}."  # an own word
    lines = [json.dumps(p).encode() + b"\n" for p in people]
    lines[12] = b"{not json\n"
    lines[13] = b"[1, 2]\n"
    lines[14] = json.dumps(dict(reversed(list(people[14].items())))).encode() + b"\n"  # other field order
    return lines


def _opened(vault: Vault, batch: PreparedBatch) -> dict[str, dict[str, bytes]]:
    """Each citizen's record, decrypted with the data key its key row holds."""
    provider = vault.dekstore.provider
    if batch.keys:
        deks = {
            owner: provider.unwrap(version, blob, raw_aad(bytes.fromhex(owner), SLOT_PROFILE, 1))
            for owner, version, blob in batch.keys
        }
    else:
        deks = {c.hex: dek for c, dek in batch.deks}
    out = {}
    for owner, record, _ in batch.citizens:
        cipher = FieldCipher(uuid.UUID(hex=owner), deks[owner], SLOT_PROFILE, 1)
        out[owner] = {name: cipher.decrypt(name, blob) for name, blob in unpack_record(record).items()}
    return out


@pytest.mark.parametrize("parent_wraps", [False, True])
def test_prepare_gives_the_batch_of_the_previous_prepare(vault: Vault, parent_wraps: bool) -> None:
    svc = vault.profiles
    deks = _ParentWraps(svc.dekstore) if parent_wraps else DekRows(svc.dekstore)
    unique = frozenset(s.name for s in svc.catalogue.searchable if s.unique)
    state = WorkerState(svc.catalogue, svc.indexer, svc.pii, unique, ImportRows(svc.engine.dialect), deks)
    assert state.rows.hex_ids  # SQLite
    run, now = uuid.uuid4(), datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    items = list(enumerate(_batch_lines(), start=101))

    new = prepare(state, run, 3, items, "civil-registry", now)
    old = reference_prepare(state, run, 3, items, "civil-registry", now)

    assert {e.line for e in new.errors} == {105, 107, 108, 113, 114}  # refused note, e-mail, duplicate, two lines
    assert len(new.lines) == 35
    for name in ("lines", "ids", "blind_index", "unique", "pii", "errors", "now"):
        assert getattr(new, name) == getattr(old, name), name
    assert [(c[0], c[2]) for c in new.citizens] == [(c[0], c[2]) for c in old.citizens]
    assert [(k[0], k[1]) for k in new.keys] == [(k[0], k[1]) for k in old.keys]
    assert [c for c, _ in new.deks] == [c for c, _ in old.deks]
    assert bool(new.keys) != parent_wraps and bool(new.deks) == parent_wraps
    # Same layout (names, ciphertext lengths) and the same plaintexts under each citizen's own key.
    for a, b in zip(new.citizens, old.citizens, strict=True):
        assert {n: len(v) for n, v in unpack_record(a[1]).items()} == {
            n: len(v) for n, v in unpack_record(b[1]).items()
        }
    assert _opened(vault, new) == _opened(vault, old)
    assert len({dek for _, dek in new.deks} | {k[2] for k in new.keys}) == len(new.ids)
