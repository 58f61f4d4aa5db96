"""The `citizen-vault` command line (never `vault`: that name belongs to another well-known tool)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from api import logconfig
from api.security import issuing
from api.settings import AppSettings
from keys import rotation
from keys.errors import KeyLayerError
from vault import demo as demo_data
from vault import operations
from vault.demo_registry import AGENCIES, DemoClient, seed_registry
from vault.errors import ConfigurationError, VaultError
from vault.importer import Format, Importer, count_lines
from vault.registry import ROLES
from vault.runtime import Vault, init_vault, open_vault

app = typer.Typer(help="Citizen Vault: encrypted citizen profiles, consent and audited access.", no_args_is_help=True)
keys_app = typer.Typer(help="Key management: status, KEK rotation and retirement, DEK rotation.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
_state: dict[str, Any] = {}

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: $CITIZEN_VAULT_DATA_DIR or ./data)."),
]


@app.callback()
def _main(data_dir: DataDir = None) -> None:
    logconfig.configure()
    _state["data_dir"] = data_dir


def app_settings() -> AppSettings:
    """Settings from the environment, with --data-dir taking precedence."""
    overrides: dict[str, Any] = {}
    if _state.get("data_dir") is not None:
        overrides["data_dir"] = _state["data_dir"]
    return AppSettings(**overrides)


@contextmanager
def failing_cleanly() -> Iterator[None]:
    """Turn domain and key errors into one clear line on stderr and exit code 2: no tracebacks."""
    try:
        yield
    except (VaultError, KeyLayerError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


@contextmanager
def opened(**kwargs: Any) -> Iterator[Vault]:
    """An open vault for one command, with development warnings shown."""
    with failing_cleanly():
        vault = open_vault(app_settings(), **kwargs)
        try:
            for warning in vault.warnings:
                err.print(f"[bold yellow]WARNING:[/] {warning}")
            yield vault
        finally:
            vault.close()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    )


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
        with _progress() as bar:
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
        with _progress() as bar:
            task = bar.add_task("exporting", total=operations.count_citizens(vault))
            count = operations.export(vault, destination, decrypted, progress=lambda n: bar.advance(task, n))
        kind = "PLAINTEXT" if decrypted else "encrypted"
        out.print(f"Exported {count} citizens ({kind}) to {destination}")


@app.command()
def backup(destination: Annotated[Path, typer.Argument(dir_okay=False, help="Backup file to create.")]) -> None:
    """Online backup of the data store (SQLite). Data keys are deliberately NOT in it: see docs/keys.md."""
    with opened() as vault:
        operations.backup_data(vault, destination)
        out.print(
            f"Data store backed up to {destination} (no data keys inside; the key store is backed up separately)."
        )


@app.command()
def erase(citizen_id: Annotated[str, typer.Argument(help="The citizen's vault id (UUID).")]) -> None:
    """Erase a citizen by crypto-shredding; legally held fields are kept under a separate key."""
    with opened() as vault:
        report = vault.profiles.erase(_uuid(citizen_id))
        if report.already_erased:
            out.print("Already erased; key destruction confirmed.")
        out.print(f"Destroyed fields: {', '.join(report.destroyed_fields) or '-'}")
        for name, basis in report.held_fields.items():
            out.print(f"Kept {name}: {basis}")


@app.command()
def demo(
    citizens: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many fictitious citizens.")] = 50,
) -> None:
    """Initialise (if needed), seed agencies, officers, clients and fictitious citizens; show how to try each role."""
    with failing_cleanly():
        vault = init_vault(app_settings())
    try:
        for warning in vault.warnings:
            err.print(f"[bold yellow]WARNING:[/] {warning}")
        path = vault.settings.data_dir / f"demo-citizens-{citizens}.jsonl"
        demo_data.write_jsonl(path, citizens)
        with failing_cleanly():
            result = Importer(vault.profiles, workers=0).run(path, "civil-registry")
            clients = seed_registry(vault.registry)
        path.unlink()
        _demo_summary(vault, result.accepted, result.already_done, clients)
    finally:
        vault.close()


def _demo_summary(vault: Vault, accepted: int, already: bool, clients: list[DemoClient]) -> None:
    settings = app_settings()
    first = demo_data.profile(0)
    ids = vault.profiles.lookup("national_id", first["national_id"])
    citizen = str(ids[0]) if ids else "<citizen-id>"
    out.print(f"[bold]Citizen Vault demo[/] in {vault.settings.data_dir.resolve()}")
    out.print("Citizens were seeded earlier." if already else f"Imported {accepted} fictitious citizens.")
    out.print(f"Total citizens: {operations.count_citizens(vault)}; agencies: {', '.join(AGENCIES)}")
    base = settings.issuer

    def token(subject: str, role: str, agency: str | None) -> str:
        return issuing.issue(vault.signing, settings.issuer, settings.audience, subject, role, agency, 3600)

    examples = [
        ("citizen: my own profile", token(citizen, "citizen", None), f"{base}/v1/me"),
        (
            "registrar (civil-registry): read a profile",
            token("registrar@civil-registry", "registrar", "civil-registry"),
            f"{base}/v1/citizens/{citizen}",
        ),
        (
            "caseworker (benefits-office): look up by national id",
            token("caseworker@benefits-office", "caseworker", "benefits-office"),
            f"{base}/v1/citizens?national_id={first['national_id']}",
        ),
        (
            "registrar (tax-office): refused, only the civil registry reads profiles",
            token("registrar@tax-office", "registrar", "tax-office"),
            f"{base}/v1/citizens/{citizen}",
        ),
        ("admin (vault operator): list agencies", token("admin@vault", "admin", "vault"), f"{base}/v1/agencies"),
        (
            "agency-app (tax-office): look up by email",
            token(clients[0].client_id, "agency-app", clients[0].agency),
            f"{base}/v1/citizens?email={first['email']}",
        ),
    ]
    out.print("\nTry each role (tokens valid for one hour):")
    for title, tok, url in examples:
        out.print(f"\n# {title}", markup=False)
        out.print(f"curl -s -H 'Authorization: Bearer {tok}' '{url}'", markup=False)
    for c in clients:
        if c.secret:
            out.print(f"\n# {c.agency} application: client credentials (secret shown once)", markup=False)
            out.print(
                f"curl -s -d grant_type=client_credentials -d client_id={c.client_id} -d client_secret={c.secret} "
                f"{base}/v1/token",
                markup=False,
            )
    out.print(f"\nAPI documentation: {base}/docs   operator CLI: .venv/bin/citizen-vault --help", markup=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API under uvicorn."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    if _state.get("data_dir") is not None:
        os.environ["CITIZEN_VAULT_DATA_DIR"] = str(_state["data_dir"])
    with failing_cleanly():
        open_vault(app_settings()).close()  # refuse to start (clearly) before forking workers
    out.print(f"Citizen Vault listening on http://{host}:{port}  (docs: /docs, {workers} worker(s))")
    uvicorn.run("api.asgi:app", factory=True, host=host, port=port, workers=workers, log_level="warning")


@app.command("token")
def token_(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    agency: Annotated[str | None, typer.Option(help="Agency (domain) the token acts in.")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject; for role citizen, the citizen's vault id.")] = None,
    ttl: Annotated[int, typer.Option(min=60, max=3600, help="Lifetime in seconds.")] = 900,
) -> None:
    """Print a token signed by the vault (an operator tool for scripts and tests)."""
    if role not in ROLES:
        err.print(f"[bold red]error:[/] unknown role {role!r}; one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    if role != "citizen" and not agency:
        err.print("[bold red]error:[/] --agency is required for every role but citizen")
        raise typer.Exit(2)
    if role == "citizen":
        if subject is None:
            err.print("[bold red]error:[/] --subject (the citizen's vault id) is required for role citizen")
            raise typer.Exit(2)
        _uuid(subject)
    settings = app_settings()
    with opened() as vault:
        out.print(
            issuing.issue(
                vault.signing, settings.issuer, settings.audience, subject or f"{role}@{agency}", role, agency, ttl
            ),
            markup=False,
        )


@keys_app.command("status")
def keys_status() -> None:
    """Show the KEK provider, KEK versions, and how many data keys each wraps."""
    with opened() as vault:
        for key, value in vault.provider.describe().items():
            out.print(f"{key}: {value}")
        counts = vault.dekstore.count_by_kek_version()
        table = Table("KEK version", "state", "created", "data keys wrapped")
        for info in vault.provider.versions():
            table.add_row(
                str(info.version),
                info.state,
                info.created_at.isoformat(timespec="seconds"),
                str(counts.get(info.version, 0)),
            )
        for version, n in sorted(counts.items()):
            if version not in {i.version for i in vault.provider.versions()}:
                table.add_row(str(version), "[red]missing[/]", "-", str(n))
        out.print(table)
        pending = rotation.pending(vault.dekstore)
        if pending:
            out.print(f"[yellow]{pending} data keys are not under the active KEK yet: run `keys rotate` to finish.[/]")


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int | None, typer.Option(min=1, max=50_000, help="Data keys per transaction.")] = None,
) -> None:
    """New KEK version; re-wrap every data key (no data re-encryption). Re-run to resume after a crash."""
    with opened() as vault, _progress() as bar:
        task = bar.add_task("re-wrapping data keys", total=None)

        def start(total: int, created: bool) -> None:
            bar.update(task, total=total)
            verb = "created" if created else "resuming rotation to"
            bar.console.print(f"{verb} KEK version {vault.provider.active_version()}")

        result = rotation.rotate(
            vault.dekstore,
            batch_size or vault.settings.rotation_batch_size,
            on_start=start,
            on_progress=lambda n: bar.advance(task, n),
        )
    out.print(f"active KEK version {result.active_version}: re-wrapped {result.rewrapped} data keys")
    if result.failed:
        err.print(
            f"[bold red]{result.failed} data keys could not be unwrapped (see the log); they were left as they were.[/]"
        )
        raise typer.Exit(1)


@keys_app.command("retire")
def keys_retire(version: Annotated[int, typer.Argument(help="KEK version to destroy.")]) -> None:
    """Destroy an old KEK version; refused while any data key is still wrapped under it."""
    with opened() as vault:
        still = vault.dekstore.count_by_kek_version().get(version, 0)
        if still:
            err.print(
                f"[bold red]error:[/] {still} data keys still wrapped under version {version}: `keys rotate` first"
            )
            raise typer.Exit(2)
        try:
            vault.provider.retire_version(version)
        except ValueError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
        out.print(
            f"KEK version {version} destroyed: data keys wrapped under it (old key-store backups) are now useless."
        )


@keys_app.command("rotate-dek")
def keys_rotate_dek(citizen_id: Annotated[str, typer.Argument(help="The citizen's vault id (UUID).")]) -> None:
    """Re-encrypt one citizen's fields under a fresh data key."""
    with opened() as vault:
        version = vault.profiles.rotate_dek(_uuid(citizen_id))
        out.print(f"citizen {citizen_id}: now under data key version {version}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations to the data store and the key store."""
    with opened(check_schema=False) as vault:
        operations.upgrade(vault)
        out.print("Schemas are up to date.")


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        err.print("[bold red]error:[/] not a citizen id (expected a UUID)")
        raise typer.Exit(2) from None


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - only for display

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """Entry point."""
    try:
        app()
    except ConfigurationError as exc:  # pragma: no cover - failing_cleanly catches these first
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
