"""Server time of the web pages (issue 14): the citizen's "who read my data" page with 1,000 entries
in their access log, and the compliance console's first log page over 100,000 audit events, each
against its JSON API route as the baseline; and the weight of every main page.

Run: .venv/bin/python -m bench.bench_web [--requests 200] [--runs 3] [--events 100000] [--own 1000]

* Data: a fresh vault with the demo registry and purposes and ``--citizens`` demo profiles, then
  audit events through the vault's own ``AuditLog.append`` (100 per call, one officer per call,
  10,000 per transaction, chained and checkpointed as any event) up to ``--events`` in all, of
  which ``--own`` are reads and refusals about the first citizen, spread evenly through the log.
* Pages against their API: ``GET /portal/access-log`` (a session cookie from the app's session store)
  against ``GET /v1/me/access-log?limit=50`` (a bearer token; the page shows 50), and
  ``GET /console/events`` (newest first, no filter) against ``GET /v1/audit/events?limit=50``
  (oldest first: the API's only order), each viewed by the compliance officer of the operator, who
  sees every agency. Each request is audited (``me.access-log``, ``audit.read``) exactly as in use.
  Timed one request at a time, interleaved in blocks of 10 so both sides see the same machine load:
  in-process (the app through Starlette's TestClient) and over HTTP (a real `citizen-vault serve`
  on loopback, one keep-alive httpx connection; the client's time, so it includes loopback).
* Page weight: the bytes of each main page's HTML plus every stylesheet, script or font it links
  (uncompressed, no images), fetched in-process with the seeded data.

Every value is fictitious (vault.demo); every officer and id is invented.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import issuing
from api.settings import AppSettings
from bench.common import machine, speed_probe
from tests.support.server_proc import CLI, clean_env, free_port, running
from vault import demo
from vault.audit.log import Actor, AuditLog, Event
from vault.demo_registry import seed_purposes, seed_registry
from vault.runtime import init_vault

FIELDS = list(demo.profile(0))
OFFICERS = [  # (actor, actions it takes, purposes it states)
    (Actor("caseworker@tax-office", "caseworker", "tax-office"), "grants.use", "tax-assessment"),
    (Actor("caseworker@benefits-office", "caseworker", "benefits-office"), "grants.use", "benefit-eligibility"),
    (Actor("caseworker@city-clinic", "caseworker", "city-clinic"), "grants.use", "treatment"),
    (Actor("registrar@civil-registry", "registrar", "civil-registry"), "citizens.read", None),
    (Actor("registrar@tax-office", "registrar", "tax-office"), "citizens.lookup", None),
    (Actor("svc-benefits", "agency-app", "benefits-office"), "citizens.read", "benefit-eligibility"),
    (Actor("operator", "operator", "vault"), "citizens.correct", None),
]
BLOCK = 10
RATE, IDLE = 10_000_000, 86_400  # no rate limit in the way of the timed requests; sessions outlive the run
ASSET = re.compile(r'<(?:link|script)\b[^>]*\b(?:href|src)="(/[^"]+)"')
TR = re.compile(r"<tr\b")
Get = Callable[..., httpx.Response]  # TestClient.get or httpx.Client.get


def seed(audit: AuditLog, citizens: list[str], total: int, own: int) -> int:
    """Append ``total`` events (``own`` of them about ``citizens[0]``); returns those about her."""
    step, about_her, done = total // own, 0, 0
    while done < total:
        with audit.transaction() as conn:
            end = min(done + 10_000, total)
            while done < end:
                size = min(100, end - done)
                who, action, purpose = OFFICERS[(done // 100) % len(OFFICERS)]
                actor = Actor(who.subject, who.role, who.agency, f"req-{done:07d}")
                events = []
                for i in range(done, done + size):
                    her = i % step == step // 2 and about_her < own
                    about_her += her
                    denied = i % 53 == 0
                    events.append(
                        Event(
                            action,
                            outcome="denied" if denied else "allowed",
                            citizen_id=citizens[0] if her else citizens[1 + i % (len(citizens) - 1)],
                            fields=FIELDS[i % 9 : i % 9 + 1 + i % 3],
                            purpose=purpose,
                            grant_id=str(uuid.UUID(int=i * 7919 + 1)) if action == "grants.use" else None,
                            reason="policy" if denied else None,
                        )
                    )
                audit.append(conn, actor, events)
                done += size
    return about_her


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    """(p50, p90, p99) of ``ms``."""
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return cuts[49], cuts[89], cuts[98]


def timed_pairs(get: Get, cases: dict[str, tuple[str, dict[str, str]]], requests: int) -> dict[str, list[float]]:
    """Milliseconds per request for each case, ``requests`` each, interleaved in blocks of 10."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for name, (path, headers) in cases.items():  # warm-up: templates compiled, connections open
        for _ in range(5):
            check(name, get(path, headers=headers))
    for _ in range(0, requests, BLOCK):
        for name, (path, headers) in cases.items():
            for _ in range(BLOCK):
                start = time.perf_counter()
                response = get(path, headers=headers)
                times[name].append((time.perf_counter() - start) * 1000)
                check(name, response)
    return times


def check(name: str, response: httpx.Response) -> None:
    """Every timed request must be a full, successful answer (50 entries or rows)."""
    assert response.status_code == 200, (name, response.status_code, response.text[:300])
    if "page" in name:
        assert len(TR.findall(response.text)) == 51, (name, "expected 50 rows and a header row")
    else:
        body = response.json()
        assert len(body.get("entries", body.get("events", []))) == 50, name


def weight(get: Get, path: str, headers: dict[str, str]) -> tuple[int, int, int]:
    """(HTML bytes, bytes of the stylesheets and scripts it links, how many) of one page."""
    page = get(path, headers=headers)
    assert page.status_code == 200, (path, page.status_code)
    assets = sorted(set(ASSET.findall(page.text)))
    sizes = []
    for asset in assets:
        fetched = get(asset)
        assert fetched.status_code == 200, (asset, fetched.status_code)
        sizes.append(len(fetched.content))
    return len(page.content), sum(sizes), len(assets)


def report(title: str, results: list[dict[str, list[float]]], pairs: list[tuple[str, str, str]]) -> None:
    """A markdown table: p50/p90/p99 over every run's requests, per-run p50s, page / API ratio."""
    runs = len(results)
    print(f"\n{title}\n\n| request | n | p50 ms | p90 ms | p99 ms | p50 per run | p50 page / p50 API |")
    print("|---|---|---|---|---|---|---|")
    for page, api, label in pairs:
        p50s = {}
        for name in (page, api):
            pooled = [t for r in results for t in r[name]]
            p50, p90, p99 = percentiles(pooled)
            p50s[name] = p50
            per_run = ", ".join(f"{percentiles(r[name])[0]:.1f}" for r in results)
            ratio = f"{p50s[page] / p50:.2f}" if name == api else "(target p50 <= 50 ms)"
            print(
                f"| {label if name == page else '  API: ' + label} {CASES_SHOWN[name]} | {len(pooled):,} | "
                f"{p50:.1f} | {p90:.1f} | {p99:.1f} | {per_run} | {ratio} |"
            )
    print(f"({runs} run(s), requests interleaved in blocks of {BLOCK})")


CASES_SHOWN = {
    "portal page": "`GET /portal/access-log`",
    "me api": "`GET /v1/me/access-log?limit=50`",
    "console page": "`GET /console/events`",
    "audit api": "`GET /v1/audit/events?limit=50`",
}
PAIRS = [
    ("portal page", "me api", "who read my data"),
    ("console page", "audit api", "console log, first page"),
]


def main() -> None:
    """Seed, measure in-process, then over HTTP, then page weight; print markdown."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--own", type=int, default=1000, help="events about the citizen whose page is timed")
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"command: .venv/bin/python -m bench.bench_web {' '.join(sys.argv[1:])}".strip())
    print(f"machine: {machine()}; load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"speed probe: {speed_probe():.1f} ms; date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    root = Path(tempfile.mkdtemp(prefix="cv-web-"))
    settings = AppSettings(
        data_dir=root / "data", keyring_scrypt_n=2**10, rate_limit_per_minute=RATE, session_idle_seconds=IDLE
    )
    try:
        app = create_app(settings, init_vault(settings))
        vault = app.state.vault
        seed_registry(vault.registry)
        seed_purposes(vault.purposes)
        citizens = [str(vault.profiles.create(demo.profile(i), "civil-registry")) for i in range(args.citizens)]
        start = time.perf_counter()
        with vault.data_engine.connect() as conn:
            existing = int(conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar() or 0)
        her = seed(vault.audit, citizens, args.events - existing, args.own)
        print(
            f"data: {args.citizens} citizens, {args.events:,} audit events ({her:,} about the citizen whose page "
            f"is timed), seeded in {time.perf_counter() - start:.1f} s"
        )
        store, cookie = app.state.web_sessions, app.state.web_cookies.session
        sessions = {
            "citizen": store.create(citizens[0], "citizen", "-", settings.issuer)[0],
            "compliance": store.create("compliance@vault", "compliance-officer", "vault", settings.issuer)[0],
            "registrar": store.create("registrar@civil-registry", "registrar", "civil-registry", settings.issuer)[0],
            "caseworker": store.create("caseworker@tax-office", "caseworker", "tax-office", settings.issuer)[0],
        }
        jar = {role: {"Cookie": f"{cookie}={sid}"} for role, sid in sessions.items()}

        def bearer(subject: str, role: str, agency: str | None) -> dict[str, str]:
            token = issuing.issue(vault.signing, settings.issuer, settings.audience, subject, role, agency, 3600)
            return {"Authorization": f"Bearer {token}"}

        cases = {
            "portal page": ("/portal/access-log", jar["citizen"]),
            "me api": ("/v1/me/access-log?limit=50", bearer(citizens[0], "citizen", None)),
            "console page": ("/console/events", jar["compliance"]),
            "audit api": ("/v1/audit/events?limit=50", bearer("compliance@vault", "compliance-officer", "vault")),
        }
        with TestClient(app, base_url=settings.issuer, follow_redirects=False) as client:
            inproc = [timed_pairs(client.get, cases, args.requests) for _ in range(args.runs)]
            report("In-process (TestClient, one request at a time):", inproc, PAIRS)
            weights = page_weights(client.get, jar, citizens[0])
        vault.close()

        port = free_port()
        env = clean_env(
            CITIZEN_VAULT_ISSUER=settings.issuer,
            CITIZEN_VAULT_RATE_LIMIT_PER_MINUTE=str(RATE),
            CITIZEN_VAULT_SESSION_IDLE_SECONDS=str(IDLE),
        )
        command = [CLI, "--data-dir", str(root / "data"), "serve", "--port", str(port)]
        with (
            running(command, env, port, root / "server.stderr") as server,
            httpx.Client(base_url=server.base, timeout=30) as http,
        ):
            over_http = [timed_pairs(http.get, cases, args.requests) for _ in range(args.runs)]
        report(
            "Over HTTP (`citizen-vault serve`, 1 worker, loopback, one keep-alive connection, client-side time):",
            over_http,
            PAIRS,
        )
        print("\n| page | HTML bytes | linked CSS/JS bytes (files) | total KB (target <= 150) |\n|---|---|---|---|")
        for path, (html, assets, count) in weights.items():
            shown = re.sub(r"/[0-9a-f-]{36}$", "/{id}", path)
            print(f"| `{shown}` | {html:,} | {assets:,} ({count}) | {(html + assets) / 1024:.1f} |")
        print(f"\nload average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def page_weights(get: Get, jar: dict[str, dict[str, str]], citizen: str) -> dict[str, tuple[int, int, int]]:
    """Every main page of the portal, console and agency console, weighed as its person sees it."""
    pages = {
        "citizen": [
            "/portal",
            "/portal/data",
            "/portal/access-log",
            "/portal/consents",
            "/portal/consents/new",
            "/portal/requests",
            "/portal/export",
        ],
        "compliance": [
            "/console",
            "/console/events",
            "/console/events/1",
            "/console/integrity",
            "/console/reports",
            "/console/flags",
            "/console/export",
        ],
        "registrar": ["/agency", "/agency/citizens", f"/agency/citizens/{citizen}"],
        "caseworker": ["/agency/grants", "/agency/grants/new"],
    }
    weights = {path: weight(get, path, {}) for path in ("/", "/login")}
    for role, paths in pages.items():
        weights |= {path: weight(get, path, jar[role]) for path in paths}
    return weights


if __name__ == "__main__":
    main()
