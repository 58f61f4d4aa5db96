"""`citizen-vault demo | serve | token`: the running service and its demo."""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from api import logconfig
from api.cli_common import app_settings, err, failing_cleanly, opened, out, parse_uuid, state
from api.security import issuing
from api.web.login import home_for
from vault import demo as demo_data
from vault import operations
from vault.demo_interactions import DAYS, seed_interactions
from vault.demo_registry import AGENCIES, ROLE_NAMES, DemoClient, demo_people, seed_purposes, seed_registry
from vault.importer import Importer
from vault.registry import ROLES
from vault.representation import demo as representation_demo
from vault.runtime import Vault, init_vault, open_vault


def demo(
    citizens: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many fictitious citizens.")] = 50,
    curl: Annotated[bool, typer.Option("--curl", help="Show curl commands for the HTTP API instead.")] = False,
) -> None:
    """Initialise (if needed), seed agencies, officers, clients and fictitious citizens; show how to sign in
    as each demo person in a browser (or, with --curl, how to call the API as each role)."""
    with failing_cleanly():
        vault = init_vault(app_settings())
    try:
        for warning in vault.warnings:
            err.print(f"[bold yellow]WARNING:[/] {warning}")
        path = vault.settings.data_dir / f"demo-citizens-{citizens}.jsonl"
        demo_data.write_jsonl(path, citizens)
        with failing_cleanly():
            result = Importer(vault.profiles, workers=0).run(path, "civil-registry")
            clients = seed_registry(vault.registry)
            seed_purposes(vault.purposes)
            interactions = seed_interactions(vault)
            representation_demo.seed(vault)  # a parent with a minor child, and a mandate (issue 17)
        path.unlink()
        if interactions:
            out.print(f"Seeded {interactions} fictitious service requests over {DAYS} days.")
        if curl:
            _demo_summary(vault, result.accepted, result.already_done, clients)
        else:
            _browser_summary(vault, result.accepted, result.already_done)
    finally:
        vault.close()


def _on_terminal() -> bool:
    # Not rich's Console.is_terminal: FORCE_COLOR or FORCE_TERMINAL would make a pipe look like one.
    try:
        return os.isatty(sys.stdout.fileno())
    except (OSError, ValueError):
        return False


def _headline(vault: Vault, accepted: int, already: bool) -> None:
    out.print(f"[bold]Citizen Vault demo[/] in {vault.settings.data_dir.resolve()}")
    out.print("Citizens were seeded earlier." if already else f"Imported {accepted} fictitious citizens.")
    out.print(f"Total citizens: {operations.count_citizens(vault)}; agencies: {', '.join(AGENCIES)}")


def _browser_summary(vault: Vault, accepted: int, already: bool) -> None:
    _headline(vault, accepted, already)
    base = app_settings().issuer
    out.print(
        f"\n[bold]Open {base}/login in a browser[/] (the service started with `serve --demo`, as `make run` does)."
    )
    out.print(
        "The development sign-in page lists these fictitious people; choose one to sign in as them:", markup=False
    )
    for person in demo_people(vault.profiles):
        home = home_for(person.role)  # where the sign-in page sends them
        out.print(
            f"  - {person.display_name} ({ROLE_NAMES.get(person.role, person.role)}): then {base}{home}", markup=False
        )
    out.print(
        f"\nThe HTTP API as each role, with curl: {shlex.quote(sys.argv[0])} demo --curl   API docs: {base}/docs",
        markup=False,
    )


def _demo_summary(vault: Vault, accepted: int, already: bool, clients: list[DemoClient]) -> None:
    settings = app_settings()
    first = demo_data.profile(0)
    ids = vault.profiles.lookup("national_id", first["national_id"])
    citizen = str(ids[0]) if ids else "<citizen-id>"
    _headline(vault, accepted, already)
    base = settings.issuer
    # Bearer tokens and client secrets go to a terminal only, where they are seen once; redirected
    # to a file they would outlive the session. Otherwise each command mints its own token.
    terminal = _on_terminal()
    cli = f"{shlex.quote(sys.argv[0])} --data-dir {shlex.quote(str(vault.settings.data_dir.resolve()))}"

    def token(subject: str, role: str, agency: str | None) -> str:
        if terminal:
            return issuing.issue(vault.signing, settings.issuer, settings.audience, subject, role, agency, 3600)
        who = f"--subject {shlex.quote(subject)}" if role == "citizen" else f"--agency {shlex.quote(agency or '')}"
        if role != "citizen" and subject != f"{role}@{agency}":
            who += f" --subject {shlex.quote(subject)}"
        return f"$({cli} token --role {role} {who})"

    examples = [
        ("citizen: my own profile", token(citizen, "citizen", None), f"{base}/v1/me"),
        (
            "registrar (civil-registry): read a profile",
            token("registrar@civil-registry", "registrar", "civil-registry"),
            f"{base}/v1/citizens/{citizen}",
        ),
        (
            "caseworker (benefits-office): look up by national id",
            token("caseworker@benefits-office", "caseworker", "benefits-office"),
            f"{base}/v1/citizens?national_id={first['national_id']}",
        ),
        (
            "registrar (tax-office): refused, only the civil registry reads profiles",
            token("registrar@tax-office", "registrar", "tax-office"),
            f"{base}/v1/citizens/{citizen}",
        ),
        ("admin (vault operator): list agencies", token("admin@vault", "admin", "vault"), f"{base}/v1/agencies"),
        (
            "compliance officer: who touched this citizen's data (the audit log, filtered)",
            token("compliance@vault", "compliance-officer", "vault"),
            f"{base}/v1/audit/events?citizen_id={citizen}",
        ),
        (
            "compliance officer: is the audit log intact?",
            token("compliance@vault", "compliance-officer", "vault"),
            f"{base}/v1/audit/verify",
        ),
        ("citizen: who read my data", token(citizen, "citizen", None), f"{base}/v1/me/access-log"),
        ("citizen: requests waiting for my consent", token(citizen, "citizen", None), f"{base}/v1/me/grant-requests"),
        ("citizen: everything held on me, signed", token(citizen, "citizen", None), f"{base}/v1/me/export"),
        (
            "agency-app (tax-office): look up by email",
            token(clients[0].client_id, "agency-app", clients[0].agency),
            f"{base}/v1/citizens?email={first['email']}",
        ),
    ]
    if terminal:
        out.print(
            "\n[bold]Tokens and client secrets below are shown once, on this terminal only[/]: tokens expire "
            "in one hour, client secrets expire too; do not paste them into files or tickets. "
            f"New tokens: {cli} token --help",
        )
    else:
        out.print(
            "\nNo token or client secret is printed: the output is not a terminal. Each command below asks "
            "`citizen-vault token` for a fresh token (valid 15 minutes) when you run it.",
            markup=False,
        )
    out.print("\nTry each role:")
    for title, tok, url in examples:
        out.print(f"\n# {title}", markup=False)
        out.print(f"curl -s -H \"Authorization: Bearer {tok}\" '{url}'", markup=False)
    posts = [
        (
            "tax office (legal obligation): request a grant, then GET /v1/grants/<id>/data with the same token",
            token("caseworker@tax-office", "caseworker", "tax-office"),
            "/v1/grants",
            {"citizen_id": citizen, "purpose": "tax-assessment", "fields": ["given_name", "income"], "max_uses": 5},
        ),
        (
            "benefits office (consent): refused with consent-required; the citizen approves in /v1/me/grant-requests",
            token("caseworker@benefits-office", "caseworker", "benefits-office"),
            "/v1/grants",
            {"citizen_id": citizen, "purpose": "benefit-eligibility", "fields": ["email", "income"]},
        ),
        (
            "citizen: consent to the benefits office",
            token(citizen, "citizen", None),
            "/v1/me/consents",
            {"agency": "benefits-office", "purpose": "benefit-eligibility"},
        ),
    ]
    for title, tok, path, body in posts:
        out.print(f"\n# {title}", markup=False)
        out.print(
            f"curl -s -H \"Authorization: Bearer {tok}\" -H 'Content-Type: application/json' "
            f"-d '{json.dumps(body)}' '{base}{path}'",
            markup=False,
        )
    fresh = [c for c in clients if c.secret]
    if fresh and terminal:
        for c in fresh:
            out.print(f"\n# {c.agency} application: client credentials (secret shown once)", markup=False)
            out.print(
                f"curl -s -d grant_type=client_credentials -d client_id={c.client_id} -d client_secret={c.secret} "
                f"{base}/v1/token",
                markup=False,
            )
    elif fresh:
        out.print(
            f"\n# {len(fresh)} agency application(s) got client secrets, not printed: the output is not a terminal. "
            "An administrator creates a client with a new secret through POST /v1/clients.",
            markup=False,
        )
    out.print(f"\nAPI documentation: {base}/docs   operator CLI: {cli} --help", markup=False)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    demo_login: Annotated[
        bool, typer.Option("--demo", help="Development sign-in page listing the demo people (never in production).")
    ] = False,
) -> None:
    """Run the HTTP API and the web pages under uvicorn (bounded headers, JSON logs: api/server.py)."""
    from api import metrics, server  # noqa: PLC0415 - only this command needs the server

    if state.get("data_dir") is not None:
        os.environ["CITIZEN_VAULT_DATA_DIR"] = str(state["data_dir"])
    if demo_login:
        os.environ["CITIZEN_VAULT_DEMO_LOGIN"] = "true"  # the workers read their settings from the environment
    try:
        settings = app_settings()
    except ValidationError as exc:  # e.g. --demo with CITIZEN_VAULT_ENVIRONMENT=production
        reasons = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
        err.print(f"[bold red]error:[/] settings refused: {reasons}", markup=True)
        raise typer.Exit(2) from None
    with failing_cleanly():
        vault = open_vault(settings)  # refuse to start (clearly) before forking workers
    vault.close()
    metrics.prepare_multiprocess(settings.data_dir, workers)  # several workers: one /metrics for all
    logconfig.configure()  # from here stderr is the server's log: JSON lines only
    for warning in vault.warnings:
        logconfig.log.warning(warning)
    out.print(f"Citizen Vault listening on http://{host}:{port}  (docs: /docs, {workers} worker(s))")
    if settings.demo_login:
        out.print(
            f"Open http://{host}:{port}/login in a browser and choose a demo person to sign in (development only)."
        )
    server.run("api.asgi:app", host=host, port=port, workers=workers, settings=settings)


def token_(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    agency: Annotated[str | None, typer.Option(help="Agency (domain) the token acts in.")] = None,
    subject: Annotated[str | None, typer.Option(help="Subject; for role citizen, the citizen's vault id.")] = None,
    ttl: Annotated[int, typer.Option(min=60, max=3600, help="Lifetime in seconds.")] = 900,
) -> None:
    """Print a token signed by the vault (an operator tool for scripts and tests)."""
    if role not in ROLES:
        err.print(f"[bold red]error:[/] unknown role {role!r}; one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    if role != "citizen" and not agency:
        err.print("[bold red]error:[/] --agency is required for every role but citizen")
        raise typer.Exit(2)
    if role == "citizen":
        if subject is None:
            err.print("[bold red]error:[/] --subject (the citizen's vault id) is required for role citizen")
            raise typer.Exit(2)
        parse_uuid(subject)
    settings = app_settings()
    with opened() as vault:
        out.print(
            issuing.issue(
                vault.signing, settings.issuer, settings.audience, subject or f"{role}@{agency}", role, agency, ttl
            ),
            markup=False,
        )
