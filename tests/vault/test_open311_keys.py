"""Open311 application keys on SQLite and a real PostgreSQL: stored only hashed, checked in
constant time with one answer for unknown, malformed and revoked keys, issue and revoke audited
without the key, and the command line that an operator uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app as cli
from tests.support.audit_helpers import backend_settings
from vault import open311keys
from vault.audit.log import Actor
from vault.audit.tables import audit_events
from vault.errors import NotFound, ValidationFailed
from vault.open311keys import Open311Keys, open311_keys
from vault.runtime import Vault, init_vault
from vault.settings import Settings

OPERATOR = Actor("operator:test", "operator", "vault")


@pytest.fixture(params=["sqlite", "postgresql"])
def vault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Vault]:
    v = init_vault(backend_settings(request, tmp_path / "data", request.param))
    yield v
    v.close()


def test_a_key_is_stored_only_as_its_hmac_and_checks_until_revoked(vault: Vault) -> None:
    keys = open311keys.for_vault(vault)
    issued = keys.create("City 311 app", OPERATOR)
    assert issued.api_key.startswith(f"o311_{issued.app.key_id}_")
    with vault.data_engine.connect() as conn:
        row = conn.execute(select(open311_keys)).one()
    stored = b"|".join(str(v).encode() if not isinstance(v, bytes) else v for v in row)
    assert issued.api_key.encode() not in stored and issued.api_key.split("_")[-1].encode() not in stored
    checked = keys.check(issued.api_key)
    assert checked is not None and checked.name == "City 311 app"
    keys.revoke(issued.app.key_id, OPERATOR)
    assert keys.check(issued.api_key) is None
    assert [(k.key_id, k.status) for k in keys.list()] == [(issued.app.key_id, "revoked")]
    with pytest.raises(NotFound):
        keys.revoke(issued.app.key_id, OPERATOR)  # revoked already: nothing to revoke


@pytest.mark.parametrize(
    "presented",
    ["", "o311_", "not-a-key", "o311_0123456789abcdef_" + "A" * 43, "x" * 10_000, "o311_\x00\ud800"],
)
def test_unknown_and_malformed_keys_get_the_same_answer(vault: Vault, presented: str) -> None:
    keys = open311keys.for_vault(vault)
    keys.create("City 311 app", OPERATOR)
    assert keys.check(presented) is None


def test_a_key_of_another_vault_or_a_changed_secret_is_refused(vault: Vault, tmp_path: Path) -> None:
    keys = open311keys.for_vault(vault)
    issued = keys.create("City 311 app", OPERATOR)
    tampered = issued.api_key[:-1] + ("A" if issued.api_key[-1] != "A" else "B")
    assert keys.check(tampered) is None
    other = Open311Keys(vault.data_engine, b"\x01" * 32, vault.audit)  # the same row, another HMAC key
    assert other.check(issued.api_key) is None


def test_issue_and_revoke_are_audited_without_the_key(vault: Vault) -> None:
    keys = open311keys.for_vault(vault)
    issued = keys.create("City 311 app", OPERATOR)
    keys.revoke(issued.app.key_id, OPERATOR)
    with vault.data_engine.connect() as conn:
        events = conn.execute(select(audit_events).where(audit_events.c.action.like("open311-keys.%"))).all()
    assert [e.action for e in events] == ["open311-keys.create", "open311-keys.revoke"]
    secret = issued.api_key.split("_")[-1]
    assert all(secret not in str(tuple(e)) for e in events)
    assert issued.app.key_id in str(events[0].reason)


@pytest.mark.parametrize("name", ["", " leading space", "x" * 101, "<script>", "tab\there"])
def test_a_bad_application_name_is_refused_and_nothing_is_written(vault: Vault, name: str) -> None:
    keys = open311keys.for_vault(vault)
    with pytest.raises(ValidationFailed):
        keys.create(name, OPERATOR)
    assert keys.list() == []


def test_the_command_line_prints_the_key_once_lists_and_revokes(tmp_path: Path) -> None:
    init_vault(Settings(data_dir=tmp_path, keyring_scrypt_n=2**10)).close()
    runner = CliRunner()
    created = runner.invoke(cli, ["--data-dir", str(tmp_path), "open311", "key", "create", "--name", "City 311 app"])
    assert created.exit_code == 0, created.output
    api_key = next(w for w in created.stdout.split() if w.startswith("o311_") and w.count("_") >= 2)
    key_id = api_key.split("_")[1]
    listed = runner.invoke(cli, ["--data-dir", str(tmp_path), "open311", "key", "list"])
    assert key_id in listed.stdout and "City 311 app" in listed.stdout and api_key not in listed.stdout
    revoked = runner.invoke(cli, ["--data-dir", str(tmp_path), "open311", "key", "revoke", key_id])
    assert revoked.exit_code == 0 and "Revoked" in revoked.stdout
    again = runner.invoke(cli, ["--data-dir", str(tmp_path), "open311", "key", "revoke", key_id])
    assert again.exit_code == 2
