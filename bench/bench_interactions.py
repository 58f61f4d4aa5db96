"""Interaction intake benchmark (issue 15): interactions recorded per second through
InteractionService.create (catalogue check, PII screening, sealing, the row, its history, its facts
row and the audit event in one transaction; real SQLite and crypto), with and without Presidio's
slow path: texts the pre-filter clears (no digit, no @: Presidio is never called) and texts holding
a phone number and an email (every one is scanned by Presidio's recognizers). The screening alone
is timed too. Linked items use one citizen's key; anonymous ones make a key each.

Run: .venv/bin/python -m bench.bench_interactions [--n 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import machine
from vault.audit.log import Actor
from vault.demo import profile
from vault.interactions import intake
from vault.interactions.model import Contact, Location, NewInteraction
from vault.runtime import Vault, init_vault
from vault.settings import Settings

CLEAN = "The street light at the corner of Fable Street has been out since last week, please fix it."
WITH_PII = "The street light is out since last week. Call me on +1 212 555 0147 or write to a.person@example.org."
WORKS = Actor("caseworker@public-works", "caseworker", "public-works")


def request(text: str, citizen: str | None) -> NewInteraction:
    """One street-light report."""
    return NewInteraction(
        "streetlight",
        text,
        citizen_id=citizen,
        location=Location(None, 45.03, 7.10),
        contact=Contact(email="a.person@example.org") if citizen is None else None,
    )


def per_second(n: int, work: Callable[[int], object]) -> tuple[float, float]:
    """Items per second over ``n`` calls, and the median milliseconds of one."""
    times = []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        work(i)
        times.append(time.perf_counter() - t)
    return n / (time.perf_counter() - started), statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    print(f"# Interaction intake benchmark: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        vault: Vault = init_vault(Settings(data_dir=Path(tmp) / "data", keyring_scrypt_n=2**10))
        try:
            citizen = Actor(str(vault.profiles.create(profile(1), "civil-registry")), "citizen", "-")
            service = vault.interactions
            service.detector()  # Presidio loads once, outside the timings
            print()
            print("| what | text | per second | median ms |")
            print("|---|---|---:|---:|")
            for label, text in (("pre-filter only (no Presidio)", CLEAN), ("Presidio scan", WITH_PII)):
                rate, median = per_second(args.n, lambda _: intake.screen(text, service.detector))
                print(f"| screening alone | {label} | {rate:,.0f} | {median:.3f} |")
            for who, actor, cid in (
                ("citizen (their key)", citizen, citizen.subject),
                ("anonymous (own key)", WORKS, None),
            ):
                for label, text in (("pre-filter only (no Presidio)", CLEAN), ("Presidio scan", WITH_PII)):
                    rate, median = per_second(args.n, lambda _: service.create(actor, request(text, cid)))
                    print(f"| create, {who} | {label} | {rate:,.0f} | {median:.3f} |")
        finally:
            vault.close()
    print(f"\n{args.n} items per row, one process, SQLite (WAL) in a temporary directory; nothing else asserted.")


if __name__ == "__main__":
    main()
