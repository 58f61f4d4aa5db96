"""`citizen-vault keys ...`: KEK status, rotation, retirement; DEK rotation for one citizen."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli_audit import operator
from api.cli_common import err, opened, out, parse_uuid, progress
from keys import rotation
from vault.audit.log import Event

keys_app = typer.Typer(help="Key management: status, KEK rotation and retirement, DEK rotation.", no_args_is_help=True)


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
    with opened() as vault, progress() as bar:
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
        vault.audit.record(
            operator(),
            Event("keys.rotate", reason=f"KEK v{result.active_version}: {result.rewrapped} data keys re-wrapped"),
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
        if version == vault.provider.active_version():
            # Checked first: "N data keys still wrapped, rotate first" would be wrong advice here.
            err.print(f"[bold red]error:[/] version {version} is the active KEK version: it cannot be retired")
            raise typer.Exit(2)
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
        vault.audit.record(operator(), Event("keys.retire", reason=f"KEK v{version} destroyed"))
        out.print(
            f"KEK version {version} destroyed: data keys wrapped under it (old key-store backups) are now useless."
        )


@keys_app.command("rotate-dek")
def keys_rotate_dek(citizen_id: Annotated[str, typer.Argument(help="The citizen's vault id (UUID).")]) -> None:
    """Re-encrypt one citizen's fields under a fresh data key."""
    with opened() as vault:
        version = vault.profiles.rotate_dek(parse_uuid(citizen_id), actor=operator())
        out.print(f"citizen {citizen_id}: now under data key version {version}")
