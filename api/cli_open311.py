"""`citizen-vault open311 key ...`: issue, list and revoke the API keys of Open311 applications."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli_audit import operator
from api.cli_common import opened, out
from vault import open311keys

open311_app = typer.Typer(help="Open311 GeoReport v2: application keys.", no_args_is_help=True)
key_app = typer.Typer(help="API keys of registered Open311 applications.", no_args_is_help=True)
open311_app.add_typer(key_app, name="key")


@key_app.command("create")
def key_create(
    name: Annotated[str, typer.Option("--name", help="The application's name (e.g. 'City 311 app').")],
) -> None:
    """Issue a key for an application: printed once, stored only hashed."""
    with opened() as vault:
        issued = open311keys.for_vault(vault).create(name, operator())
        out.print(f"Open311 key {issued.app.key_id} for {issued.app.name}. Shown once; store it now:", markup=False)
        out.print(issued.api_key, markup=False)


@key_app.command("list")
def key_list() -> None:
    """Every key issued (never the keys themselves): id, application, status, created."""
    with opened() as vault:
        table = Table("key id", "application", "status", "created")
        for k in open311keys.for_vault(vault).list():
            table.add_row(k.key_id, k.name, k.status, k.created_at.isoformat(timespec="seconds"))
        out.print(table)


@key_app.command("revoke")
def key_revoke(key_id: Annotated[str, typer.Argument(help="The key id shown by `open311 key list`.")]) -> None:
    """Revoke a key: the application's next creation request is refused."""
    with opened() as vault:
        k = open311keys.for_vault(vault).revoke(key_id, operator())
        out.print(f"Revoked Open311 key {k.key_id} ({k.name}).", markup=False)
