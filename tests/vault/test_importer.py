"""Bulk import: round trips, line-level rejections (never echoing values), duplicates, re-runs,
provenance, worker/inline equivalence and data-key bookkeeping. All data is fictitious."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import vault.importer as importer_module
from tests.support.importer_helpers import (
    csv_row,
    data_key_count,
    jsonl,
    make_vault,
    problem_text,
    write_csv,
    write_lines,
)
from vault import demo, operations
from vault.ids import ImportIds, import_citizen_id
from vault.importer import MAX_LINE_BYTES, Batch, ImportResult, ImportWorkerError, LineError, PreparedBatch
from vault.models import import_runs
from vault.runtime import Vault

Importer = importer_module.Importer
HEADER = list(demo.profile(0))
DUPLICATE = "duplicate of an earlier line in this file"
TAKEN = "already registered to another citizen"


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = make_vault(tmp_path / "vault")
    yield v
    v.close()


def _only(v: Vault, national_id: str) -> uuid.UUID:
    found = v.profiles.lookup("national_id", national_id)
    assert len(found) == 1, f"national id {national_id} found {len(found)} times"
    return found[0]


def _assert_no_orphan_keys(v: Vault) -> None:
    assert data_key_count(v.dekstore) == operations.count_citizens(v)


def _errors(result: ImportResult) -> dict[int, dict[str, str]]:
    return {e.line: e.problems for e in result.errors}


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_jsonl_round_trip(vault: Vault, tmp_path: Path, workers: int) -> None:
    people = [demo.profile(i) for i in range(25)]
    path = write_lines(tmp_path / "people.jsonl", jsonl(people))

    result = Importer(vault.profiles, batch_size=7, workers=workers).run(path, "civil-registry")

    assert (result.accepted, result.rejected, result.errors) == (25, 0, [])
    assert result.batches_done == 4
    for p in people:
        profile = vault.profiles.read(_only(vault, p["national_id"]))
        assert profile.status == "active"
        assert profile.values == p
    _assert_no_orphan_keys(vault)


def test_csv_round_trip(vault: Vault, tmp_path: Path) -> None:
    people = [demo.profile(i) for i in range(100, 112)]
    path = write_csv(tmp_path / "people.csv", HEADER, (csv_row(p, HEADER) for p in people))

    result = Importer(vault.profiles, batch_size=5, workers=0).run(path, "civil-registry")

    assert (result.accepted, result.rejected, result.errors) == (12, 0, [])
    for p in people:
        profile = vault.profiles.read(_only(vault, p["national_id"]))
        assert profile.values == p  # income comes back as an integer, dates canonical
    _assert_no_orphan_keys(vault)


def test_csv_empty_cells_are_absent_optional_fields(vault: Vault, tmp_path: Path) -> None:
    p = demo.profile(7)
    row = csv_row(p, HEADER)
    row[HEADER.index("health_notes")] = ""
    path = write_csv(tmp_path / "sparse.csv", HEADER, [row])

    result = Importer(vault.profiles, workers=0).run(path, "civil-registry")

    assert result.accepted == 1
    values = vault.profiles.read(_only(vault, p["national_id"])).values
    assert "health_notes" not in values
    assert values["given_name"] == p["given_name"]


def test_provenance_records_the_supplying_agency(vault: Vault, tmp_path: Path) -> None:
    p = demo.profile(3)
    path = write_lines(tmp_path / "one.jsonl", jsonl([p]))

    Importer(vault.profiles, workers=0).run(path, "benefits-office")

    profile = vault.profiles.read(_only(vault, p["national_id"]))
    assert set(profile.provenance) == set(p)
    assert {prov.source_agency for prov in profile.provenance.values()} == {"benefits-office"}
    with vault.data_engine.connect() as conn:
        run = conn.execute(select(import_runs)).one()
    assert (run.agency, run.source_name, run.status) == ("benefits-office", "one.jsonl", "done")


# -- rejected lines -------------------------------------------------------------------------

# Distinctive invented values: none of them may appear in any problem reported.
SECRET_TEXT = "Zorblaxian Quibbletwerp"
SECRET_FIELD_VALUE = "Vexmoor-Snarfwhistle-77"
SECRET_INCOME = "plenty-of-Glimmerbucks"
SECRET_ADDRESS = "Fizzlewick Lane " + "x" * 600


@pytest.mark.parametrize("workers", [0, 2])
def test_malformed_jsonl_lines_are_rejected_by_line_and_field_without_values(
    vault: Vault, tmp_path: Path, workers: int
) -> None:
    long_line = json.dumps({**demo.profile(9), "health_notes": "y" * MAX_LINE_BYTES + SECRET_TEXT})
    lines = [
        json.dumps(demo.profile(1)),  # 1 ok
        f"{{not json {SECRET_TEXT}",  # 2
        json.dumps([SECRET_TEXT, demo.profile(2)["national_id"]]),  # 3 array
        "",  # 4 blank: skipped
        json.dumps({**demo.profile(3), "shoe_size": SECRET_FIELD_VALUE}),  # 5 unknown field
        json.dumps({**demo.profile(4), "income": SECRET_INCOME}),  # 6 wrong type
        json.dumps({**demo.profile(5), "address": SECRET_ADDRESS}),  # 7 oversize value
        json.dumps(demo.profile(6)),  # 8 ok
        "   \t",  # 9 whitespace only: skipped
        long_line,  # 10 longer than the line limit
        json.dumps({**demo.profile(10), "national_id": SECRET_FIELD_VALUE}),  # 11 bad format
        json.dumps({"given_name": SECRET_TEXT}),  # 12 required fields missing
    ]
    path = write_lines(tmp_path / "mixed.jsonl", lines)

    result = Importer(vault.profiles, batch_size=4, workers=workers).run(path, "civil-registry")

    assert result.accepted == 2
    assert result.rejected == 8
    assert [e.line for e in result.errors] == [2, 3, 5, 6, 7, 10, 11, 12]
    got = _errors(result)
    assert got[2] == {"line": "not valid JSON"}
    assert got[3] == {"line": "not a JSON object of field names to values"}
    assert got[5] == {"shoe_size": "unknown field"}
    assert set(got[6]) == {"income"} and "integer" in got[6]["income"]
    assert set(got[7]) == {"address"} and "longer than" in got[7]["address"]
    assert set(got[10]) == {"line"} and "longer than" in got[10]["line"]
    assert set(got[11]) == {"national_id"}
    assert set(got[12]) == {"family_name"}
    text = problem_text(result.errors)
    for secret in (SECRET_TEXT, SECRET_FIELD_VALUE, SECRET_INCOME, "Fizzlewick", demo.profile(2)["national_id"]):
        assert secret not in text
    assert _only(vault, demo.profile(1)["national_id"]) != _only(vault, demo.profile(6)["national_id"])
    for i in (3, 4, 5, 9, 10):
        assert vault.profiles.lookup("national_id", demo.profile(i)["national_id"]) == []
    _assert_no_orphan_keys(vault)


def test_malformed_csv_rows_are_rejected_by_line_and_field_without_values(vault: Vault, tmp_path: Path) -> None:
    good_a, good_b = demo.profile(20), demo.profile(21)
    too_few = csv_row(demo.profile(22), HEADER)[:-2]
    too_many = [*csv_row(demo.profile(23), HEADER), SECRET_TEXT]
    bad_income = csv_row(demo.profile(24), HEADER)
    bad_income[HEADER.index("income")] = SECRET_INCOME
    oversize = csv_row(demo.profile(25), HEADER)
    oversize[HEADER.index("address")] = SECRET_ADDRESS
    rows = [csv_row(good_a, HEADER), too_few, too_many, bad_income, oversize, [], csv_row(good_b, HEADER)]
    path = write_csv(tmp_path / "mixed.csv", HEADER, rows)  # line 1 header, line 7 blank

    result = Importer(vault.profiles, batch_size=3, workers=0).run(path, "civil-registry")

    assert (result.accepted, result.rejected) == (2, 4)
    got = _errors(result)
    assert got == {
        3: {"line": "wrong number of columns"},
        4: {"line": "wrong number of columns"},
        5: got[5],
        6: got[6],
    }
    assert set(got[5]) == {"income"} and "integer" in got[5]["income"]
    assert set(got[6]) == {"address"} and "longer than" in got[6]["address"]
    text = problem_text(result.errors)
    for secret in (SECRET_TEXT, SECRET_INCOME, "Fizzlewick"):
        assert secret not in text
    _only(vault, good_a["national_id"])
    _only(vault, good_b["national_id"])
    _assert_no_orphan_keys(vault)


# -- duplicates -----------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [100, 2])
def test_duplicate_national_id_inside_the_file_is_rejected_as_duplicate(
    vault: Vault, tmp_path: Path, batch_size: int
) -> None:
    """Same verdict whether the earlier line is in the same batch or an already committed one."""
    first = demo.profile(40)
    # Same national id written differently (separators are folded by the blind index).
    twin = {**demo.profile(41), "national_id": first["national_id"].replace("-", " ")}
    lines = jsonl([first, demo.profile(42), demo.profile(43), twin, demo.profile(44)])
    path = write_lines(tmp_path / "dups.jsonl", lines)

    result = Importer(vault.profiles, batch_size=batch_size, workers=0).run(path, "civil-registry")

    assert (result.accepted, result.rejected) == (4, 1)
    assert result.errors == [LineError(4, {"national_id": DUPLICATE})]
    kept = vault.profiles.read(_only(vault, first["national_id"]))
    assert kept.values["given_name"] == first["given_name"]
    assert vault.profiles.lookup("email", twin["email"]) == []
    _assert_no_orphan_keys(vault)


def test_national_id_registered_by_an_earlier_import_is_rejected(vault: Vault, tmp_path: Path) -> None:
    earlier = write_lines(tmp_path / "earlier.jsonl", jsonl(demo.profile(i) for i in range(50, 55)))
    Importer(vault.profiles, workers=0).run(earlier, "civil-registry")
    clash = {**demo.profile(60), "national_id": demo.profile(52)["national_id"].replace("-", "")}
    later = write_lines(tmp_path / "later.jsonl", jsonl([demo.profile(61), clash, demo.profile(62)]))

    result = Importer(vault.profiles, workers=0).run(later, "tax-office")

    assert (result.accepted, result.rejected) == (2, 1)
    assert result.errors == [LineError(2, {"national_id": TAKEN})]
    owner = vault.profiles.read(_only(vault, demo.profile(52)["national_id"]))
    assert owner.values == demo.profile(52)
    assert {p.source_agency for p in owner.provenance.values()} == {"civil-registry"}
    assert operations.count_citizens(vault) == 7
    _assert_no_orphan_keys(vault)


# -- re-runs --------------------------------------------------------------------------------


def test_rerunning_the_same_file_is_a_no_op(vault: Vault, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "people.jsonl", [*jsonl(demo.profile(i) for i in range(10)), "oops"])
    first = Importer(vault.profiles, batch_size=3, workers=0).run(path, "civil-registry")
    keys_before = data_key_count(vault.dekstore)

    again = Importer(vault.profiles, batch_size=3, workers=0).run(path, "civil-registry")

    assert again.already_done
    assert not first.already_done
    assert again.run_id == first.run_id
    assert (again.accepted, again.rejected) == (first.accepted, first.rejected) == (10, 1)
    assert operations.count_citizens(vault) == 10
    assert data_key_count(vault.dekstore) == keys_before == 10
    with vault.data_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(import_runs)) == 1


def test_same_file_for_another_agency_is_a_new_run(vault: Vault, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "people.jsonl", jsonl(demo.profile(i) for i in range(6)))
    first = Importer(vault.profiles, workers=0).run(path, "civil-registry")

    other = Importer(vault.profiles, workers=0).run(path, "tax-office")

    assert not other.already_done
    assert other.run_id != first.run_id
    # A new run: every line is looked at again, and every national id is already someone's.
    assert (other.accepted, other.rejected) == (0, 6)
    assert {e.line: e.problems for e in other.errors} == {n: {"national_id": TAKEN} for n in range(1, 7)}
    assert operations.count_citizens(vault) == 6
    for i in range(6):
        prov = vault.profiles.read(_only(vault, demo.profile(i)["national_id"])).provenance
        assert {p.source_agency for p in prov.values()} == {"civil-registry"}
    with vault.data_engine.connect() as conn:
        runs = {r.agency: r.status for r in conn.execute(select(import_runs))}
    assert runs == {"civil-registry": "done", "tax-office": "done"}
    _assert_no_orphan_keys(vault)


# -- workers and inline agree -----------------------------------------------------------------


def _mixed_lines() -> list[str]:
    lines = jsonl(demo.profile(i) for i in range(200, 240))
    lines[5] = "{broken"
    lines[11] = json.dumps({**demo.profile(300), "income": -5})
    lines[17] = json.dumps({**demo.profile(301), "national_id": demo.profile(203)["national_id"]})
    lines[29] = json.dumps({**demo.profile(302), "national_id": demo.profile(228)["national_id"]})
    lines[33] = ""
    return lines


def _snapshot(v: Vault) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in [*range(200, 240), 300, 301, 302]:
        nid = demo.profile(i)["national_id"]
        for cid in v.profiles.lookup("national_id", nid):
            out[nid] = v.profiles.read(cid).values
    return out


def test_workers_and_inline_give_the_same_results(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "mixed.jsonl", _mixed_lines())
    outcomes = []
    for workers in (0, 2):
        v = make_vault(tmp_path / f"vault-{workers}")
        try:
            r = Importer(v.profiles, batch_size=6, workers=workers).run(path, "civil-registry")
            outcomes.append((r.accepted, r.rejected, r.batches_done, r.errors, _snapshot(v)))
            _assert_no_orphan_keys(v)
        finally:
            v.close()

    assert outcomes[0] == outcomes[1]
    accepted, rejected, _, errors, snapshot = outcomes[0]
    assert (accepted, rejected) == (35, 4)
    assert [e.line for e in errors] == [6, 12, 18, 30]
    assert errors[2].problems == errors[3].problems == {"national_id": DUPLICATE}
    assert len(snapshot) == 35


def test_no_orphan_data_keys_after_rejections(vault: Vault, tmp_path: Path) -> None:
    seed = write_lines(tmp_path / "seed.jsonl", jsonl(demo.profile(i) for i in range(0, 20, 2)))
    Importer(vault.profiles, workers=0).run(seed, "civil-registry")
    # Half of these national ids are already registered, some repeat inside the file.
    lines = jsonl(demo.profile(i) for i in range(20))
    lines += jsonl({**demo.profile(500 + i), "national_id": demo.profile(i)["national_id"]} for i in range(1, 6))
    path = write_lines(tmp_path / "overlap.jsonl", lines)

    result = Importer(vault.profiles, batch_size=4, workers=2).run(path, "tax-office")

    assert (result.accepted, result.rejected) == (10, 15)
    assert operations.count_citizens(vault) == 20
    _assert_no_orphan_keys(vault)


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("crash_batch", [0, 2])
def test_crash_between_storing_keys_and_committing_profiles_is_resumable(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_batch: int
) -> None:
    """A batch's data keys are stored, then the process dies before its profiles commit: even
    when that was the run's very first batch, re-running drops those keys and redoes the batch."""
    path = write_lines(tmp_path / "people.jsonl", jsonl(demo.profile(i) for i in range(22)))
    real_insert = Importer._insert
    calls = 0

    def die_on_crash_batch(self: importer_module.Importer, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > crash_batch:
            raise KeyboardInterrupt("simulated crash")
        real_insert(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(Importer, "_insert", die_on_crash_batch)
        with pytest.raises(KeyboardInterrupt):
            Importer(vault.profiles, batch_size=5, workers=0).run(path, "civil-registry")
    assert operations.count_citizens(vault) == 5 * crash_batch
    assert data_key_count(vault.dekstore) == 5 * crash_batch + 5  # the dead batch's keys, no profiles

    result = Importer(vault.profiles, batch_size=5, workers=0).run(path, "civil-registry")

    assert result.resumed_from_line == 5 * crash_batch
    assert (result.accepted, result.rejected, result.batches_done) == (22, 0, 5)
    for i in range(22):
        assert vault.profiles.read(_only(vault, demo.profile(i)["national_id"])).values == demo.profile(i)
    _assert_no_orphan_keys(vault)


WORKER_SECRET = "Plonkington-worker-secret"
_REAL_PREPARE = importer_module.prepare_batch


def _failing_prepare(run: uuid.UUID, batch_no: int, items: Batch, agency: str, now: datetime) -> PreparedBatch:
    """Stands in for vault.importer.prepare_batch in forked workers (module level, so picklable):
    the second batch fails with a message a careless error path would pass on."""
    if batch_no >= 1:
        raise RuntimeError(f"worker blew up holding {WORKER_SECRET}")
    return _REAL_PREPARE(run, batch_no, items, agency, now)


def test_worker_failure_is_reported_without_its_contents_and_resumable(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_lines(tmp_path / "people.jsonl", jsonl(demo.profile(i) for i in range(15)))

    with monkeypatch.context() as patch:
        patch.setattr(importer_module, "prepare_batch", _failing_prepare)
        with pytest.raises(ImportWorkerError) as caught:
            Importer(vault.profiles, batch_size=5, workers=1).run(path, "civil-registry")
    assert WORKER_SECRET not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert operations.count_citizens(vault) == 5  # the first batch committed, nothing of the failed one
    _assert_no_orphan_keys(vault)

    result = Importer(vault.profiles, batch_size=5, workers=1).run(path, "civil-registry")

    assert result.resumed_from_line == 5
    assert (result.accepted, result.rejected) == (15, 0)
    for i in range(15):
        _only(vault, demo.profile(i)["national_id"])
    _assert_no_orphan_keys(vault)


def test_workers_wrap_data_keys_when_the_provider_allows_it(vault: Vault, tmp_path: Path) -> None:
    """The local keyring's KEK is in process memory: the worker hands over wrapped key-store rows,
    never a plaintext data key."""
    assert vault.provider.wraps_in_forked_workers
    path = write_lines(tmp_path / "people.jsonl", jsonl(demo.profile(i) for i in range(9)))
    sent: list[PreparedBatch] = []

    class Recording(Importer):
        def _commit(self, result: ImportResult, last_line: int, batch: PreparedBatch, drop_orphans: bool) -> None:
            sent.append(batch)
            super()._commit(result, last_line, batch, drop_orphans)

    result = Recording(vault.profiles, batch_size=4, workers=1).run(path, "civil-registry")

    assert (result.accepted, len(sent)) == (9, 3)
    assert all(b.deks == [] and len(b.keys) == len(b.ids) for b in sent)
    _assert_no_orphan_keys(vault)


def test_import_citizen_ids_are_stable() -> None:
    """Resuming relies on the same (run, batch, line) giving the same id in every version: frozen."""
    run = uuid.UUID("0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f506")
    cases = ((0, 1), (7, 35001), (2**28 - 1, 10**12))
    assert [str(import_citizen_id(run, b, line)) for b, line in cases] == [
        "0192f3a4-5b6c-8000-8000-26c0325d29f1",
        "0192f3a4-5b6c-8000-8007-ef553294034c",
        "0192f3a4-5b6c-8fff-bfff-89e06f1c6e5c",
    ]
    ids = ImportIds(run, 7)
    assert [ids(line) for line in (1, 35001)] == [import_citizen_id(run, 7, line) for line in (1, 35001)]
