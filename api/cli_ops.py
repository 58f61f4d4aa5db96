"""`citizen-vault backup | restore` and `keys backup | restore` (docs/operations.md, "Back up and restore")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from api.cli_audit import operator
from api.cli_common import app_settings, err, failing_cleanly, opened, out
from keys import backup as key_backup
from vault import health
from vault import restore as data_restore
from vault.audit.log import Event

PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        exists=True,
        dir_okay=False,
        help="File whose first line is the backup passphrase (default: ask, hidden).",
    ),
]


@contextmanager
def store_refusals(command: str) -> Iterator[None]:
    """A store that refuses a write (disk full, database gone) ends the command with one clear line:
    the batch in flight was rolled back, and re-running the same command resumes."""
    try:
        yield
    except health.STORE_DOWN as exc:
        # SQLite's own code (3.11+), e.g. SQLITE_FULL, or SQLITE_IOERR_WRITE when a write hits a full
        # disk or a file size limit; never the message of the statement (it may quote parameters).
        code = str(getattr(getattr(exc, "orig", None), "sqlite_errorname", "") or "")
        if code == "SQLITE_FULL" or code.startswith("SQLITE_IOERR_WRITE"):
            why = f"the disk is full or refuses writes ({code})"
        else:
            why = f"the database refused the write ({code or type(exc).__name__})"
        err.print(f"[bold red]error:[/] {command} stopped: {why}. Nothing of the unfinished batch was kept;")
        err.print(f"free space (or bring the database back) and re-run the same command to resume the {command}.")
        raise typer.Exit(2) from None


def _passphrase(path: Path | None, confirm: bool) -> str:
    if path is not None:
        lines = path.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    return str(typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm))


def backup(destination: Annotated[Path, typer.Argument(dir_okay=False, help="Backup file to create.")]) -> None:
    """Online, consistent backup of the data store (SQLite or PostgreSQL) into one SQLite file.
    Data keys are deliberately NOT in it: see docs/keys.md."""
    with opened() as vault:
        data_restore.backup_data(vault.data_engine, destination)
        vault.audit.record(operator(), Event("ops.backup", reason="data store backed up"))
        out.print(
            f"Data store backed up to {destination} (no data keys inside; the key store is backed up separately)."
        )


def restore(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A file made by `backup`.")],
) -> None:
    """Restore the data store from a backup into an EMPTY data store, keeping the current keys:
    citizens erased since the backup stay unreadable and are made unfindable."""
    with failing_cleanly():
        settings = app_settings()
        if settings.key_provider == "local" and not settings.keyring_path.exists():
            err.print("[bold red]error:[/] no keyring in the data directory: run `keys restore` first")
            raise typer.Exit(2)
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_restore.load_backup(source, settings.resolved_database_url(), settings.data_dir)
    with opened() as vault:
        report = data_restore.finish_restore(vault, operator(), source.name)
    out.print(f"Restored the data store from {source}.")
    out.print(f"Citizens purged (their data keys were destroyed after the backup): {len(report.purged)}")
    out.print(f"Audit anchor set to the restored log's newest checkpoint (event {report.anchored_at}).")
    out.print("Next: `citizen-vault audit verify`.")


def keys_backup(
    destination: Annotated[Path, typer.Argument(dir_okay=False, help="Key backup file to create (0600).")],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Seal the keyring, signing keys and key store under a passphrase (Argon2id + AES-256-GCM)."""
    with opened() as vault:
        counts = key_backup.write_bundle(
            vault.settings.data_dir, vault.key_engine, destination, _passphrase(passphrase_file, confirm=True)
        )
        vault.audit.record(operator(), Event("keys.backup", reason=f"{counts.get('data_keys', 0)} data keys"))
    out.print(f"Keys backed up to {destination}: {counts.get('data_keys', 0)} data keys, sealed under the passphrase.")
    if vault.settings.key_provider == "pkcs11":
        err.print("[bold yellow]The KEKs stay in the HSM: back the token up with the HSM's own tools.[/]")


def keys_restore(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A file made by `keys backup`.")],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Restore the keyring, signing keys and key store into a fresh data directory."""
    with failing_cleanly():
        settings = app_settings()
        counts = key_backup.restore_bundle(
            source, _passphrase(passphrase_file, confirm=False), settings.data_dir, settings.resolved_keystore_url()
        )
    out.print(f"Keys restored into {settings.data_dir}: {counts.get('data_keys', 0)} data keys.")
