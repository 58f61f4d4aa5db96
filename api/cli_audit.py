"""`citizen-vault audit ...`: verify the chain, export for SIEMs, sign a checkpoint, show the public key."""

from __future__ import annotations

import base64
import contextlib
import getpass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from api.cli_common import err, failing_cleanly, opened, out, progress
from vault.audit import export as audit_export
from vault.audit.log import Actor, Event
from vault.audit.review import EventFilter
from vault.audit.verify import Report, verify_database
from vault.errors import VaultError

audit_app = typer.Typer(help="The audit log: verify, export, checkpoint.", no_args_is_help=True)


def operator() -> Actor:
    """The operator running this command, as the audit log records them."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return Actor(f"operator:{name}"[:256], "operator", "vault")


def _print_report(report: Report) -> None:
    if report.ok:
        out.print(
            f"[green]intact[/]: {report.events} events, {report.checkpoints} signed checkpoints verified"
            + (f", head at {report.head_count}" if report.head_count is not None else "")
        )
        return
    f = report.finding
    if f is None:
        return
    err.print(f"[bold red]NOT INTACT[/]: first mismatch at event {f.seq}: {f.kind}: {f.detail}")


@audit_app.command("verify")
def verify(
    export_file: Annotated[
        Path | None, typer.Option("--export", exists=True, dir_okay=False, help="Verify an export file instead.")
    ] = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option("--public-key", help="KID=BASE64 checkpoint key to trust (for --export; repeatable)."),
    ] = None,
) -> None:
    """Re-walk the hash chain and check every signed checkpoint. Exit 0 when intact, 1 otherwise."""
    if export_file is not None:
        keys = None
        if public_key:
            try:
                keys = {k: base64.b64decode(v, validate=True) for k, _, v in (p.partition("=") for p in public_key)}
            except ValueError:
                err.print("[bold red]error:[/] --public-key takes KID=BASE64")
                raise typer.Exit(2) from None
        else:
            err.print("[yellow]note:[/] trusting the public key inside the export; pass --public-key to pin it")
        with failing_cleanly():
            try:
                report = audit_export.verify_export(export_file, keys)
            except (ValueError, KeyError, TypeError) as exc:
                err.print(f"[bold red]error:[/] unreadable export: {type(exc).__name__}")
                raise typer.Exit(2) from None
        _print_report(report)
        raise typer.Exit(0 if report.ok else 1)
    with opened() as vault, progress() as bar:
        task = bar.add_task("verifying the audit chain", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        report = verify_database(vault.audit, progress=step)
        finding = report.finding
        # A damaged log refuses appends (fail closed); the report below still stands.
        with contextlib.suppress(VaultError):
            vault.audit.record(
                operator(),
                Event("audit.verify", reason="intact" if finding is None else f"{finding.kind} at {finding.seq}"),
            )
    _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        err.print(f"[bold red]error:[/] not an ISO 8601 time: {text[:40]!r}")
        raise typer.Exit(2) from None
    if moment.tzinfo is None:
        err.print("[bold red]error:[/] give times with a zone, e.g. 2026-11-01T00:00:00Z")
        raise typer.Exit(2)
    return moment


@audit_app.command("export")
def export(
    destination: Annotated[Path, typer.Argument(dir_okay=False, help="File to write (mode 0600).")],
    fmt: Annotated[Literal["jsonl", "csv"], typer.Option("--format", help="jsonl (verifiable) or csv.")] = "jsonl",
    citizen: Annotated[str | None, typer.Option(help="Only events about this citizen id.")] = None,
    agency: Annotated[str | None, typer.Option(help="Only events by this agency.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only events by this actor.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. citizens.read.")] = None,
    outcome: Annotated[str | None, typer.Option(help="allowed, denied or failed.")] = None,
    purpose: Annotated[str | None, typer.Option(help="Only this purpose.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601, inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601).")] = None,
) -> None:
    """Export events (with a checkpoint signed now, so a third party can verify the file)."""
    flt = EventFilter(citizen, agency, actor, action, outcome, purpose, _when(since), _when(until))
    with opened() as vault, progress() as bar:
        task = bar.add_task("exporting audit events", total=None)
        count, cp = audit_export.export(vault.audit, destination, fmt, flt, lambda n: bar.advance(task, n))
        vault.audit.record(operator(), Event("audit.export", reason=f"{count} events, {fmt}"))
    out.print(f"Exported {count} events to {destination} (checkpoint at event {cp.count}, key {cp.kid}).")


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint over the current head now."""
    with opened() as vault:
        cp = vault.audit.checkpoint()
    out.print(f"Checkpoint at event {cp.count}: head {cp.head_hash.hex()} signed by {cp.kid} at {cp.ts}")


@audit_app.command("public-key")
def public_key() -> None:
    """Print the checkpoint public keys (KID=BASE64), for external verifiers."""
    with opened() as vault:
        for kid, key in vault.audit.signer.public_keys_b64().items():
            out.print(f"{kid}={key}")
