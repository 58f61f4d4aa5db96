"""api.concurrency.run_short: work runs on the event loop only when it need not wait, for SQLite's
write lock (tests/vault/test_quick_paths.py) or for a pooled connection (here)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import Request

from api.concurrency import run_short
from keys import sqlstore
from vault.runtime import Vault, init_vault
from vault.settings import Settings


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = init_vault(Settings(data_dir=tmp_path / "data", keyring_scrypt_n=2**10))
    yield v
    v.close()


def _where(vault: Vault) -> tuple[bool, dict[str, Any]]:
    """(ran on the loop's thread, keyword arguments it got) for one run_short call."""
    request = cast(
        Request,
        SimpleNamespace(
            app=SimpleNamespace(state=SimpleNamespace(vault=vault, inline_writes=True)), scope={"state": {}}
        ),
    )
    seen: dict[str, Any] = {}

    def work(**kwargs: Any) -> int:
        seen.update(kwargs, thread=threading.get_ident())
        return 1

    async def go() -> int:
        loop_thread = threading.get_ident()
        assert await run_short(request, work) == 1
        return loop_thread

    loop_thread = asyncio.run(go())
    return seen.pop("thread") == loop_thread, seen


@pytest.mark.parametrize("store", ["data_engine", "key_engine"])
def test_the_loop_never_waits_for_a_pooled_connection(vault: Vault, store: str) -> None:
    assert _where(vault) == (True, {"wait": False})
    engine = getattr(vault, store)
    held = [engine.connect() for _ in range(sqlstore.POOL_SIZE + sqlstore.POOL_OVERFLOW)]
    try:
        assert _where(vault) == (False, {})  # the threadpool, where waiting is harmless
    finally:
        for conn in held:
            conn.close()
    assert _where(vault) == (True, {"wait": False})
