"""Shared helpers for benchmarks: timing, medians, machine description (data: vault.demo)."""

from __future__ import annotations

import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    """Median."""
    return statistics.median(values)


def machine() -> str:
    """One line describing this machine."""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{model}, {cores} cores, Python {platform.python_version()}"


def speed_probe() -> float:
    """Milliseconds a fixed piece of pure-Python work takes now (median of 5). This VM's speed varies
    with its neighbours; a run's absolute figures (records/s) are comparable with another run's only
    as far as their probes agree. Lower is faster."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        table: dict[int, int] = {}
        for i in range(100_000):
            table[i & 1023] = table.get(i & 1023, 0) + i * i
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)
