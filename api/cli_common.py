"""Shared pieces of the command line: consoles, settings, clean failures, progress bars."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.settings import AppSettings
from keys.errors import KeyLayerError
from vault.errors import VaultError
from vault.runtime import Vault, open_vault

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
state: dict[str, Any] = {}

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: $CITIZEN_VAULT_DATA_DIR or ./data)."),
]


def app_settings() -> AppSettings:
    """Settings from the environment, with --data-dir taking precedence."""
    overrides: dict[str, Any] = {}
    if state.get("data_dir") is not None:
        overrides["data_dir"] = state["data_dir"]
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


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    )


def parse_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        err.print("[bold red]error:[/] not a citizen id (expected a UUID)")
        raise typer.Exit(2) from None
