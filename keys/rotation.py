"""KEK rotation: a new KEK version re-wraps every DEK, in batches, resumable, without touching data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from keys.dekstore import DekStore, data_keys


@dataclass(frozen=True)
class RotationResult:
    """Outcome of `keys rotate`."""

    active_version: int
    created_version: bool
    rewrapped: int
    failed: int


def pending(store: DekStore) -> int:
    """DEKs not yet wrapped under the active KEK version."""
    active = store.provider.active_version()
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).where(data_keys.c.kek_version != active)) or 0)


def rotate(
    store: DekStore,
    batch_size: int,
    *,
    on_start: Callable[[int, bool], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RotationResult:
    """Create a new KEK version (unless an earlier rotation is unfinished) and re-wrap every DEK.

    Re-running after a crash resumes the unfinished rotation instead of starting another one, so
    a kill -9 at any point loses nothing: until a DEK is re-wrapped its old wrap stays valid, and
    old KEK versions are only destroyed by an explicit `keys retire`.
    """
    todo = pending(store)
    created = False
    if todo == 0:
        store.provider.create_version()
        created = True
        todo = pending(store)
    if on_start:
        on_start(todo, created)
    rewrapped = failed = 0
    cursor = None
    while True:
        step = store.rewrap_batch(batch_size, cursor)
        if step.cursor is None:
            break
        cursor = step.cursor
        rewrapped += step.rewrapped
        failed += step.failed
        if on_progress:
            on_progress(step.rewrapped + step.failed)
    return RotationResult(store.provider.active_version(), created, rewrapped, failed)
