"""The `citizen-vault` command line (never `vault`: that name belongs to another well-known tool)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from api import cli_ops, cli_service, logconfig
from api.cli_audit import audit_app, operator
from api.cli_common import DataDir, app_settings, err, failing_cleanly, opened, out, parse_uuid, progress, state
from api.cli_keys import keys_app
from api.cli_open311 import open311_app
from vault import operations
from vault.errors import ConfigurationError
from vault.importer import Format, Importer, count_lines
from vault.runtime import init_vault

app = typer.Typer(help="Citizen Vault: encrypted citizen profiles, consent and audited access.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.callback()
def _main(data_dir: DataDir = None) -> None:
    logconfig.configure()
    state["data_dir"] = data_dir


app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(open311_app, name="open311")


@app.command()
def init() -> None:
    """Create the data directory, keyring (or HSM keys) and database schemas. Safe to re-run."""
    with failing_cleanly():
        vault = init_vault(app_settings())
        try:
            for warning in vault.warnings:
                err.print(f"[bold yellow]WARNING:[/] {warning}")
            facts = vault.provider.describe()
            out.print(f"Vault ready in [bold]{vault.settings.data_dir.resolve()}[/]")
            for key, value in facts.items():
                out.print(f"  {key}: {value}")
            out.print(f"  data store: {_redact(vault.settings.resolved_database_url())}")
            out.print(f"  key store:  {_redact(vault.settings.resolved_keystore_url())}")
        finally:
            vault.close()


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JSON Lines or CSV")],
    agency: Annotated[str, typer.Option(help="Agency supplying the data (recorded as provenance).")] = "civil-registry",
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl or csv (default: from the extension)")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, max=50_000, help="Profiles per transaction.")] = None,
    workers: Annotated[int | None, typer.Option(min=0, max=32, help="Encryption worker processes.")] = None,
) -> None:
    """Import profiles: batched, resumable (re-run the same command after a crash), with progress."""
    if fmt not in (None, "jsonl", "csv"):
        err.print("[bold red]error:[/] --format must be jsonl or csv")
        raise typer.Exit(2)
    with opened() as vault:
        importer = Importer(vault.profiles, batch_size or vault.settings.import_batch_size, workers)
        fmt_arg: Format | None = "jsonl" if fmt == "jsonl" else "csv" if fmt == "csv" else None
        with progress() as bar, cli_ops.store_refusals("import"):
            task = bar.add_task(f"importing {file.name}", total=count_lines(file))
            result = importer.run(file, agency, fmt_arg, progress=lambda n: bar.advance(task, n))
        if result.already_done:
            out.print(f"{file.name} was already imported for {agency} (run {result.run_id}): nothing to do.")
        elif result.resumed_from_line:
            out.print(f"Resumed after line {result.resumed_from_line} (run {result.run_id}).")
        out.print(f"accepted: {result.accepted}  rejected: {result.rejected}")
        for e in result.errors[:50]:
            problems = "; ".join(f"{k}: {v}" for k, v in sorted(e.problems.items()))
            out.print(f"  line {e.line}: {problems}", markup=False)
        if len(result.errors) > 50:
            out.print(f"  ... and {result.rejected - 50} more rejected lines")


@app.command()
def export(
    destination: Annotated[Path, typer.Argument(dir_okay=False, help="Output file (JSON Lines), created 0600.")],
    decrypted: Annotated[bool, typer.Option("--decrypted", help="Write PLAINTEXT values (dangerous).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before writing plaintext.")] = False,
) -> None:
    """Operator export for backup or migration: still encrypted unless --decrypted is given."""
    if decrypted and not yes and not typer.confirm(f"Write every citizen's data in PLAINTEXT to {destination}?"):
        raise typer.Exit(1)
    with opened() as vault:
        with progress() as bar:
            task = bar.add_task("exporting", total=operations.count_citizens(vault))
            result = operations.export(vault, destination, decrypted, progress=lambda n: bar.advance(task, n))
        kind = "PLAINTEXT" if decrypted else "encrypted"
        out.print(f"Exported {result.written} citizens ({kind}) to {destination}")
        if result.skipped:
            err.print(f"[bold yellow]Skipped {len(result.skipped)} citizens whose data cannot be decrypted[/]")
            for citizen in result.skipped[:50]:
                err.print(f"  {citizen}")


@app.command()
def erase(citizen_id: Annotated[str, typer.Argument(help="The citizen's vault id (UUID).")]) -> None:
    """Erase a citizen by crypto-shredding; legally held fields are kept under a separate key."""
    with opened() as vault:
        report = vault.profiles.erase(parse_uuid(citizen_id), actor=operator())
        if report.already_erased:
            out.print("Already erased; key destruction confirmed.")
        out.print(f"Destroyed fields: {', '.join(report.destroyed_fields) or '-'}")
        for name, basis in report.held_fields.items():
            out.print(f"Kept {name}: {basis}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations to the data store and the key store."""
    with opened(check_schema=False) as vault:
        operations.upgrade(vault)
        out.print("Schemas are up to date.")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - only for display

    return make_url(url).render_as_string(hide_password=True)


# Registered last so that `--help` lists the vault commands first.
app.command()(cli_service.demo)
app.command()(cli_service.serve)
app.command("token")(cli_service.token_)
app.command()(cli_ops.backup)
app.command()(cli_ops.restore)
keys_app.command("backup")(cli_ops.keys_backup)
keys_app.command("restore")(cli_ops.keys_restore)


def main() -> None:
    """Entry point."""
    try:
        app()
    except ConfigurationError as exc:  # pragma: no cover - failing_cleanly catches these first
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
