"""Operator export (issue 18): one ordered pass with each citizen's own blind-index entries, and a
decrypted export that skips and reports citizens it cannot decrypt instead of stopping. Fictitious data."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app
from tests.support.importer_helpers import FAST_SCRYPT_N, make_vault
from vault import demo, operations
from vault.models import blind_index


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def test_encrypted_export_carries_exactly_each_citizens_index_entries(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "v")
    try:
        ids = [vault.profiles.create(demo.profile(i), "civil-registry") for i in range(30)]
        vault.profiles.erase(ids[3])
        target = tmp_path / "export.jsonl"
        result = operations.export(vault, target, decrypted=False)
        with vault.data_engine.connect() as conn:
            stored = {
                (str(c), f, base64.b64encode(d).decode())
                for c, f, d in conn.execute(select(blind_index.c.citizen_id, blind_index.c.field, blind_index.c.digest))
            }
    finally:
        vault.close()
    lines = _lines(target)
    assert result.written == 30 and result.skipped == []
    assert [line["id"] for line in lines] == sorted(str(i) for i in ids)
    exported = {(line["id"], e["field"], e["digest"]) for line in lines for e in line["index"]}  # type: ignore[attr-defined]
    assert exported == stored
    assert len(stored) > 30  # several searchable fields per citizen
    erased = next(line for line in lines if line["id"] == str(ids[3]))
    assert erased["index"] == [] and erased["status"] == "erased"


def test_decrypted_export_skips_and_reports_citizens_it_cannot_decrypt(tmp_path: Path) -> None:
    d = tmp_path / "v"
    vault = make_vault(d)
    try:
        ids = [vault.profiles.create(demo.profile(i), "civil-registry") for i in range(6)]
        # What a restored pre-erasure backup looks like: the profile row is there, its data key is not.
        assert vault.dekstore.destroy(ids[2]) >= 1
        target = tmp_path / "plain.jsonl"
        result = operations.export(vault, target, decrypted=True)
    finally:
        vault.close()
    assert result.skipped == [ids[2]]
    assert result.written == 5
    assert {line["id"] for line in _lines(target)} == {str(i) for i in ids} - {str(ids[2])}

    cli = CliRunner().invoke(
        app,
        ["--data-dir", str(d), "export", str(tmp_path / "again.jsonl"), "--decrypted", "--yes"],
        env={"CITIZEN_VAULT_KEYRING_SCRYPT_N": str(FAST_SCRYPT_N)},
    )
    assert cli.exit_code == 0, cli.output
    assert "Exported 5 citizens (PLAINTEXT)" in cli.stdout
    assert "Skipped 1 citizens" in cli.stderr and str(ids[2]) in cli.stderr
