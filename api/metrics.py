"""Prometheus metrics (docs/operations.md, "Metrics"): what the service does, never who it does it for.

Labels are drawn only from bounded, code-defined sets: route templates (never paths, which carry
citizen ids), methods, status codes, refusal reasons (problem slugs), audit actions and outcomes,
key operations. No citizen id, token, subject, agency of a caller or field value is ever a label.

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` (set by ``citizen-vault serve
--workers N``) makes every worker write its figures to files there and a scrape sums them.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from vault.runtime import Vault

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,47}$")
F = TypeVar("F", bound=Callable[..., Any])


def label(value: object) -> str:
    """A label value only if it looks like a code (slug); anything else is "other"."""
    text = str(value)
    return text if _SLUG.match(text) else "other"


class Metrics:
    """The service's metrics, registered on a registry of their own (one per app: tests build many)."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        self.engines: dict[str, Engine] = {}
        r = self.registry
        self.requests = Counter("cv_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "cv_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.refusals = Counter("cv_refusals", "Requests refused (4xx/5xx problem answers)", ["reason"], registry=r)
        self.audit_append = Histogram(
            "cv_audit_append_duration_seconds",
            "Time to append audit events in the caller's transaction",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=r,
        )
        self.audit_failures = Counter("cv_audit_append_failures", "Audit appends that raised", registry=r)
        self.verify_failures = Counter(
            "cv_audit_verify_failures", "Audit verifications (GET /v1/audit/verify) that found a break", registry=r
        )
        self.audit_events = Counter("cv_audit_events", "Audit events appended", ["action", "outcome"], registry=r)
        self.key_ops = Counter("cv_key_operations", "KEK operations", ["operation", "result"], registry=r)
        self.pii_scans = Histogram(
            "cv_pii_scan_duration_seconds",
            "Time of one PII screening of submitted text",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=r,
        )
        self.ready = Gauge(
            "cv_ready", "1 when the last readiness check passed", ["check"], registry=r, multiprocess_mode="min"
        )

    def instrument(self, vault: Vault) -> None:
        """Wrap the vault's audit log, key provider and PII screening of this process (instance
        attributes only: the classes, and other vaults, are untouched)."""
        self.engines.update({"data": vault.data_engine, "keys": vault.key_engine})
        if not self.multiprocess:
            self.registry.register(_PoolCollector(self.engines))
        audit = vault.audit
        setattr(audit, "append", self._timed_append(audit.append))  # noqa: B010 - instance override
        setattr(audit, "append_per_citizen", self._timed_append(audit.append_per_citizen, per_citizen=True))  # noqa: B010
        for method, op in (("wrap", "wrap"), ("wrap_many", "wrap"), ("unwrap", "unwrap"), ("create_version", "rotate")):
            setattr(vault.provider, method, self._counted_key_op(op, getattr(vault.provider, method)))
        intake = vault.profiles.pii
        setattr(intake, "screen", self._timed(self.pii_scans, intake.screen))  # noqa: B010

    def _timed_append(self, append: F, per_citizen: bool = False) -> F:
        @functools.wraps(append)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = append(*args, **kwargs)
            except BaseException:
                self.audit_failures.inc()
                raise
            self.audit_append.observe(time.perf_counter() - start)
            self._count_events(args, per_citizen)
            return result

        return timed  # type: ignore[return-value]

    def _count_events(self, args: Sequence[Any], per_citizen: bool) -> None:
        if len(args) < 3:
            return
        if per_citizen:
            event, times = args[2], len(args[3]) if len(args) > 3 else 1
            self.audit_events.labels(label(event.action), label(event.outcome)).inc(times)
            return
        for event in args[2]:
            self.audit_events.labels(label(event.action), label(event.outcome)).inc()
            if event.action == "audit.verify" and event.reason != "intact":
                self.verify_failures.inc()

    def _counted_key_op(self, op: str, call: F) -> F:
        @functools.wraps(call)
        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                result = call(*args, **kwargs)
            except BaseException:
                self.key_ops.labels(op, "failed").inc()
                raise
            many = args[0] if op == "wrap" and args and isinstance(args[0], list) else None
            self.key_ops.labels(op, "ok").inc(1 if many is None else len(many))
            return result

        return counted  # type: ignore[return-value]

    @staticmethod
    def _timed(histogram: Histogram, call: F) -> F:
        @functools.wraps(call)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with histogram.time():
                return call(*args, **kwargs)

        return timed  # type: ignore[return-value]

    def exposition(self) -> bytes:
        """The text a scrape gets: this process's figures (or, multi-process, every worker's), and
        the connection pools of the process that answers."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_PoolCollector(self.engines))
        return generate_latest(registry)


class _PoolCollector(Collector):
    """Database connection pool usage of this process, read at scrape time."""

    def __init__(self, engines: dict[str, Engine]) -> None:
        self.engines = engines

    def collect(self) -> Iterable[Metric]:
        used = GaugeMetricFamily("cv_db_pool_checked_out", "Connections in use", labels=["store"])
        size = GaugeMetricFamily("cv_db_pool_size", "Connections the pool keeps", labels=["store"])
        for name, engine in self.engines.items():
            pool: Any = engine.pool
            used.add_metric([name], float(getattr(pool, "checkedout", lambda: 0)()))
            size.add_metric([name], float(getattr(pool, "size", lambda: 0)()))
        yield used
        yield size


def allowed(client: str | None, networks: Sequence[str]) -> bool:
    """Whether a scrape from ``client`` may read /metrics (the configured allow-list)."""
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def prepare_multiprocess(data_dir: Path, workers: int) -> Path | None:
    """For several workers: a fresh directory for their metric files, exported as
    PROMETHEUS_MULTIPROC_DIR before they start (an operator's own setting is kept)."""
    if workers < 2:
        return None
    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(chosen) if chosen else data_dir / "metrics"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in directory.glob("*.db"):  # figures of a previous run's processes
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory
