"""Bulk import on both backends (SQLite binds a batch's shared column values once per statement,
PostgreSQL gets whole rows): the same profiles, index, keys, findings and audit events. Fictitious data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.audit_helpers import BACKENDS, backend_settings, load_events
from tests.support.importer_helpers import data_key_count, jsonl, write_lines
from vault import demo, operations
from vault.audit.verify import verify_database
from vault.importer import Importer
from vault.models import citizens
from vault.pii.intake import read_findings
from vault.pii.tables import pii_findings
from vault.runtime import Vault, init_vault


@pytest.fixture(params=BACKENDS)
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    v = init_vault(backend_settings(request, tmp_path / "data", request.param))
    yield v
    v.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_an_import_stores_what_it_read_on_each_backend(vault: Vault, tmp_path: Path, workers: int) -> None:
    people = [demo.profile(i) for i in range(230)]
    people[7] = {**people[7], "health_notes": f"{people[7]['given_name']} was seen on Tuesday."}  # a finding
    lines = jsonl(people)
    lines.insert(40, '{"given_name": "Nobody"}')  # rejected: required field missing
    lines.insert(90, lines[3])  # rejected: duplicate national id
    source = write_lines(tmp_path / "in.jsonl", lines)

    result = Importer(vault.profiles, batch_size=64, workers=workers).run(source, "civil-registry")

    assert (result.accepted, result.rejected) == (230, 2)
    assert operations.count_citizens(vault) == data_key_count(vault.dekstore) == 230
    for i in (0, 7, 229):
        (citizen,) = vault.profiles.lookup("national_id", people[i]["national_id"])
        assert vault.profiles.read(citizen).values == people[i]
        assert vault.profiles.lookup("email", people[i]["email"].upper()) == [citizen]
    (noted,) = vault.profiles.lookup("national_id", people[7]["national_id"])
    assert list(read_findings(vault.data_engine, noted)["health_notes"]["entities"]) == ["PERSON"]
    with vault.data_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(pii_findings)) == 230
        stored = {uuid.UUID(str(c)) for c in conn.scalars(select(citizens.c.id))}
    created = [e for e in load_events(vault.data_engine) if e["action"] == "citizens.create"]
    assert len(created) == 230
    assert {uuid.UUID(e["citizen_id"]) for e in created} == stored
    assert all((e["actor"], e["agency"], e["fields"]) == ("operator:import", "civil-registry", "[]") for e in created)
    report = verify_database(vault.audit)
    assert report.ok, report.finding
