"""Audit-log benchmarks (SQLite): append throughput under concurrency, `verify` over a large log,
and the per-request cost of auditing a profile read.

Run: .venv/bin/python -m bench.bench_audit [--procs 1,2,4] [--events 1000] [--verify-events 1000000] [--runs 3]

* Appends: K processes each call `AuditLog.record` M times (one event, one transaction each, as a
  request would); events/s overall, median of several runs, on one vault per K.
* Verify: a genuinely chained log of N events is generated quickly with `AuditLog.append` (1,000
  events per append, so checkpoints fall every 1,000 events as with the default setting; 10,000
  events per transaction), then `verify_database` is timed (median of several runs; the report
  must be ok).
* Read overhead: `ProfileService.read` (decrypt + audit event in the same transaction) against the
  same service wired to an audit log whose `append` does nothing, alternating in blocks of 100
  reads in the same run.

Every value is fictitious (vault.demo); every actor and id is invented.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from bench.common import machine, median, timed
from vault import demo
from vault.audit.log import Actor, AuditLog, Event
from vault.audit.tables import audit_checkpoints
from vault.audit.verify import verify_database
from vault.profiles.service import ProfileService
from vault.runtime import AUDIT_HEAD_KEY_LABEL, Vault, init_vault, open_vault
from vault.settings import Settings

SCRYPT_N = 2**10
FIELDS = list(demo.profile(0))
ACTIONS = ("citizens.read", "citizens.lookup", "citizens.correct", "consents.grant", "citizens.read")
ACTORS = [
    Actor("citizen-0001", "citizen", "self"),
    Actor("clerk-ada", "registrar", "civil-registry", "req-0001"),
    Actor("nurse-bo", "caseworker", "health-board", "req-0002"),
    Actor("svc-tax", "service", "tax-office", "req-0003"),
    Actor("operator", "operator", "vault"),
]


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, keyring_scrypt_n=SCRYPT_N)


def _event(i: int) -> Event:
    """A varied, value-free event: action, a citizen id, one to three field names."""
    return Event(
        ACTIONS[i % len(ACTIONS)],
        citizen_id=uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % (1 << 128)),
        fields=FIELDS[i % 9 : i % 9 + 1 + i % 3],
        purpose="case-handling" if i % 4 == 0 else None,
    )


# -- 1. append throughput under concurrency -------------------------------------------------
def _append_worker(data_dir: str, worker: int, m: int, barrier: Barrier, out: Any) -> None:
    """Open the vault, wait for the others, append ``m`` events one transaction each; report times."""
    vault = open_vault(_settings(Path(data_dir)))
    actor = Actor(f"bench-worker-{worker}", "caseworker", "health-board")
    events = [_event(worker * m + i) for i in range(m)]
    vault.audit.record(actor, events[0])  # warm the connection pool outside the timed part
    barrier.wait()
    start = time.perf_counter()
    for event in events:
        vault.audit.record(actor, event)
    out.put((start, time.perf_counter()))
    vault.close()


def _collect(workers: list[Any], out: Any) -> list[tuple[float, float]]:
    """One (start, end) per worker; fails at once if a worker dies instead of reporting."""
    spans: list[tuple[float, float]] = []
    while len(spans) < len(workers):
        try:
            spans.append(out.get(timeout=1))
        except queue.Empty:
            dead = [p.exitcode for p in workers if p.exitcode not in (None, 0)]
            if dead:
                for p in workers:
                    p.kill()
                raise RuntimeError(f"append worker exited with {dead[0]}") from None
    return spans


def bench_appends(procs: Sequence[int], m: int, runs: int) -> list[tuple[int, float, float, int]]:
    """(K, median events/s overall, median µs per append seen by one process, events verified) per K."""
    ctx = mp.get_context("spawn")
    results = []
    for k in procs:
        root = Path(tempfile.mkdtemp(prefix="cv-audit-append-"))
        init_vault(_settings(root / "data")).close()
        rates, latencies = [], []
        for _ in range(runs):
            barrier, out = ctx.Barrier(k), ctx.Queue()
            workers = [
                ctx.Process(target=_append_worker, args=(str(root / "data"), w, m, barrier, out)) for w in range(k)
            ]
            for p in workers:
                p.start()
            spans = _collect(workers, out)
            for p in workers:
                p.join(timeout=60)
                if p.exitcode != 0:
                    raise RuntimeError(f"append worker exited with {p.exitcode}")
            wall = max(end for _, end in spans) - min(start for start, _ in spans)
            rates.append(k * m / wall)
            latencies.append(median([(end - start) / m * 1e6 for start, end in spans]))
        vault = open_vault(_settings(root / "data"))
        report = verify_database(vault.audit)
        vault.close()
        assert report.ok, report.public()
        assert report.events == runs * k * (m + 1), report.public()
        results.append((k, median(rates), median(latencies), report.events))
        shutil.rmtree(root)
    return results


# -- 2. verify over a large log -----------------------------------------------------------
def generate(audit: AuditLog, n: int, per_append: int = 1000, per_transaction: int = 10_000) -> None:
    """Append ``n`` chained events: ``per_append`` per append call, ``per_transaction`` per commit."""
    done = 0
    while done < n:
        with audit.transaction() as conn:
            size = min(per_transaction, n - done)
            for start in range(0, size, per_append):
                count = min(per_append, size - start)
                base = done + start
                actor = ACTORS[(base // per_append) % len(ACTORS)]
                audit.append(conn, actor, [_event(base + i) for i in range(count)])
        done += size


def _checkpoints(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(audit_checkpoints)) or 0)


def bench_verify(n: int, runs: int) -> tuple[float, float, list[tuple[float, float]], int, int]:
    """(seconds to generate, MB on disk, verify (wall, CPU) seconds per run, events, checkpoints)."""
    root = Path(tempfile.mkdtemp(prefix="cv-audit-verify-"))
    try:
        vault = init_vault(_settings(root / "data"))
        generation = timed(lambda: generate(vault.audit, n))
        with vault.data_engine.connect() as conn:
            checkpoints = _checkpoints(conn)
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size = sum(f.stat().st_size for f in (root / "data").glob("vault.db*")) / 1e6
        seconds: list[tuple[float, float]] = []
        for _ in range(runs):
            start, cpu = time.perf_counter(), time.process_time()
            report = verify_database(vault.audit)
            seconds.append((time.perf_counter() - start, time.process_time() - cpu))
            assert report.ok, report.public()
            assert report.events == n and report.head_count == n, report.public()
            assert report.checkpoints == checkpoints, report.public()
        vault.close()
        return generation, size, seconds, n, checkpoints
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- 3. per-request overhead of auditing a read ----------------------------------------------
class NoAudit(AuditLog):
    """The baseline: an audit log that records nothing (never used by the product)."""

    def append(self, conn: Connection, actor: Actor, events: Sequence[Event]) -> list[int]:
        """Do nothing."""
        return []


def _unaudited(vault: Vault) -> ProfileService:
    audit = NoAudit(vault.data_engine, vault.provider.index_key(AUDIT_HEAD_KEY_LABEL), vault.audit.signer)
    return ProfileService(vault.data_engine, vault.dekstore, vault.catalogue, audit)


def bench_read(citizens: int, reads: int, runs: int) -> list[tuple[str, float, float]]:
    """(label, audited µs/read, unaudited µs/read) for all fields and for one field, medians of ``runs``."""
    root = Path(tempfile.mkdtemp(prefix="cv-audit-read-"))
    try:
        vault = init_vault(_settings(root / "data"))
        ids = [vault.profiles.create(demo.profile(i), "civil-registry") for i in range(citizens)]
        plain = _unaudited(vault)
        actor = Actor("clerk-ada", "registrar", "civil-registry", "req-bench")
        out = []
        for label, fields in (("all 9 fields", None), ("1 field (email)", ["email"])):
            audited_runs: list[float] = []
            plain_runs: list[float] = []
            for service in (vault.profiles, plain):  # warm-up, not timed
                for cid in ids[:50]:
                    service.read(cid, fields, actor=actor)
            for _ in range(runs):
                # Alternate in blocks of 100 reads, so both sides see the same machine load.
                spent = {"audited": 0.0, "plain": 0.0}
                for block in range(0, reads, 100):
                    for name, service in (("audited", vault.profiles), ("plain", plain)):
                        start = time.perf_counter()
                        for i in range(block, min(block + 100, reads)):
                            service.read(ids[i % citizens], fields, actor=actor)
                        spent[name] += time.perf_counter() - start
                audited_runs.append(spent["audited"] / reads * 1e6)
                plain_runs.append(spent["plain"] / reads * 1e6)
            out.append((label, median(audited_runs), median(plain_runs)))
        report = verify_database(vault.audit)
        assert report.ok, report.public()
        vault.close()
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """Run everything and print a markdown summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--procs", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--events", type=int, default=1000, help="events appended per process per run")
    parser.add_argument("--verify-events", type=int, default=1_000_000)
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    procs = [int(p) for p in args.procs.split(",")]
    print(f"command: python -m bench.bench_audit {' '.join(sys.argv[1:])}".strip())
    print(f"machine: {machine()}; load average at start: {os.getloadavg()[0]:.2f}")

    started = time.perf_counter()
    appends = bench_appends(procs, args.events, args.runs)
    phase_appends = time.perf_counter() - started
    print(
        f"\n| appending processes | events appended (each its own transaction) | events/s overall (median of {args.runs}) "
        "| µs per append seen by one process |\n|---|---|---|---|"
    )
    for k, rate, latency, _ in appends:
        print(f"| {k} | {k} x {args.events:,} | {rate:,.0f} | {latency:,.0f} |")
    print(f"(each log verified afterwards: {', '.join(f'{e:,} events ok' for *_, e in appends)})")

    started = time.perf_counter()
    generation, size, seconds, events, checkpoints = bench_verify(args.verify_events, args.runs)
    phase_verify = time.perf_counter() - started
    wall, cpu = median([w for w, _ in seconds]), median([c for _, c in seconds])
    print(
        f"\nverify log: {events:,} events, {checkpoints:,} signed checkpoints, {size:,.0f} MB on disk; "
        f"generated in {generation:.1f} s ({events / generation:,.0f} events/s, 10,000 per transaction)"
    )
    print(
        f"\n| audit verify | wall s (median of {args.runs}) | events/s | CPU s of the verifying process |"
        "\n|---|---|---|---|"
    )
    print(
        f"| verify_database, {events:,} events (target <= 10 s for 1M) | {wall:.1f} | {events / wall:,.0f} | {cpu:.1f} |"
    )
    print(f"(wall s per run: {', '.join(f'{w:.1f}' for w, _ in seconds)}; every report ok)")

    started = time.perf_counter()
    reads = bench_read(args.citizens, args.reads, args.runs)
    phase_reads = time.perf_counter() - started
    print(
        f"\n| profiles.read ({args.reads:,} reads over {args.citizens:,} citizens) | audited µs/read "
        f"(median of {args.runs}) | without the audit write µs/read | ratio | audit cost µs |\n|---|---|---|---|---|"
    )
    for label, audited, plain in reads:
        print(f"| {label} | {audited:,.0f} | {plain:,.0f} | {audited / plain:.2f} | {audited - plain:,.0f} |")

    print(
        f"\nphases: appends {phase_appends:.0f} s, verify (generation + {args.runs} runs) {phase_verify:.0f} s, "
        f"reads {phase_reads:.0f} s"
    )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
