"""Separation of duties in the registry (issue 19, finding 5) and client secret expiry (finding 14).

An agency admin must not reach citizen data by minting credentials (create a client, take its token,
request a grant, read) or by giving themselves a reviewing role. A client created or re-keyed by a
person works only once a different admin has approved it; secrets expire; every step is audited and
flagged. All people and agencies are fictitious.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import insert, update

from tests.support.api_world import ODILE, Headers, World, open_world, problem
from vault.models import clients, role_assignments

ADMIN = "admin@tax-office"
SECOND_ADMIN = "deputy-admin@tax-office"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch) as w:
        # The operator (command line) appoints two admins of the tax office.
        w.vault.registry.assign(ADMIN, "tax-office", "admin")
        w.vault.registry.assign(SECOND_ADMIN, "tax-office", "admin")
        yield w


def _admin(w: World, subject: str = ADMIN, agency: str = "tax-office") -> Headers:
    return w.token(subject, "admin", agency)


def _take_token(w: World, client_id: str, secret: str) -> Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response: Response = w.client.post("/v1/token", data=form)
    return response


def _same_answer(a: Response, b: Response) -> None:
    """Two refusals a caller cannot tell apart (request ids aside)."""
    assert (a.status_code, a.headers["www-authenticate"]) == (b.status_code, b.headers["www-authenticate"])
    strip = ("request_id",)
    assert {k: v for k, v in a.json().items() if k not in strip} == {
        k: v for k, v in b.json().items() if k not in strip
    }


def _token_refusal_reason(w: World, client_id: str) -> list[str]:
    return [e["reason"] for e in w.events(action="token.issue", outcome="denied") if e["actor"] == client_id]


def _new_client(w: World, headers: Headers, agency: str = "tax-office") -> dict[str, Any]:
    created = w.client.post("/v1/clients", json={"agency": agency, "name": "Assessment batch"}, headers=headers)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


# -- the attack path of the finding ----------------------------------------------------------------


def test_an_agency_admin_cannot_take_a_token_for_a_client_they_created(world: World) -> None:
    """admin creates a client -> token -> statutory grant -> data: refused at the token."""
    w = world
    odile = w.citizen(ODILE)
    client = _new_client(w, _admin(w))  # creating is allowed: the client is inert until approved

    response = _take_token(w, client["client_id"], client["client_secret"])
    problem(response, 401)
    assert client["status"] == "pending-approval" and client["created_by"] == ADMIN
    _same_answer(response, _take_token(w, client["client_id"], "cvs_not-the-secret"))
    assert "client-pending" in _token_refusal_reason(w, client["client_id"])

    # Nor can they approve their own client: the second person is a different person.
    own = w.client.post(f"/v1/clients/{client['client_id']}/approve", headers=_admin(w))
    problem(own, 403, "own-client")
    assert _take_token(w, client["client_id"], client["client_secret"]).status_code == 401
    # No grant was ever requested and nothing about Odile was read.
    assert not [e for e in w.events(action="grants.create") if e["actor"] == client["client_id"]]
    assert not w.events(citizen_id=odile, action="grants.read")


def test_a_second_admin_approves_a_client_and_then_its_token_works(world: World) -> None:
    w = world
    client = _new_client(w, _admin(w))
    approved = w.client.post(f"/v1/clients/{client['client_id']}/approve", headers=_admin(w, SECOND_ADMIN))
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active" and approved.json()["approved_by"] == SECOND_ADMIN
    assert _take_token(w, client["client_id"], client["client_secret"]).status_code == 200
    approvals = w.events(action="clients.approve")
    assert [(e["actor"], e["outcome"]) for e in approvals] == [(SECOND_ADMIN, "allowed")]
    # Approving twice is a conflict, not a second approval.
    problem(w.client.post(f"/v1/clients/{client['client_id']}/approve", headers=w.admin), 409)


def test_another_agencys_admin_cannot_approve(world: World) -> None:
    w = world
    w.vault.registry.assign("admin@city-clinic", "city-clinic", "admin")
    client = _new_client(w, _admin(w))
    other = w.client.post(
        f"/v1/clients/{client['client_id']}/approve", headers=_admin(w, "admin@city-clinic", "city-clinic")
    )
    problem(other, 403)
    assert w.client.post(f"/v1/clients/{client['client_id']}/approve", headers=w.admin).status_code == 200


def test_a_vault_admins_client_also_waits_for_a_second_admin(world: World) -> None:
    w = world
    client = _new_client(w, w.admin)
    assert client["status"] == "pending-approval"
    problem(w.client.post(f"/v1/clients/{client['client_id']}/approve", headers=w.admin), 403, "own-client")
    assert w.client.post(f"/v1/clients/{client['client_id']}/approve", headers=_admin(w)).status_code == 200


# -- role assignments ------------------------------------------------------------------------------


def test_an_admin_cannot_assign_themselves_compliance_officer(world: World) -> None:
    w = world
    body = {"subject": ADMIN, "agency": "tax-office", "role": "compliance-officer"}
    problem(w.client.post("/v1/role-assignments", json=body, headers=_admin(w)), 403, "self-assignment")
    assert not w.vault.registry.holds(ADMIN, "tax-office", "compliance-officer")
    # Not even the vault's admin assigns a role to themselves.
    mine = {"subject": "admin@vault", "agency": "tax-office", "role": "caseworker"}
    problem(w.client.post("/v1/role-assignments", json=mine, headers=w.admin), 403, "self-assignment")
    denied = [e for e in w.events(action="role-assignments.create", outcome="denied")]
    assert [e["reason"].split(":")[0] for e in denied] == ["self-assignment", "self-assignment"]


def test_only_the_vault_admins_assign_or_remove_reviewing_and_administering_roles(world: World) -> None:
    w = world
    for role in ("compliance-officer", "admin"):
        body = {"subject": "auditor@tax-office", "agency": "tax-office", "role": role}
        problem(w.client.post("/v1/role-assignments", json=body, headers=_admin(w)), 403, "operator-only-role")
    caseworker = {"subject": "clerk@tax-office", "agency": "tax-office", "role": "caseworker"}
    assert w.client.post("/v1/role-assignments", json=caseworker, headers=_admin(w)).status_code == 201
    reviewer = {"subject": "auditor@tax-office", "agency": "tax-office", "role": "compliance-officer"}
    assert w.client.post("/v1/role-assignments", json=reviewer, headers=w.admin).status_code == 201
    removal = w.client.delete("/v1/role-assignments", params=reviewer, headers=_admin(w))
    problem(removal, 403, "operator-only-role")
    assert w.vault.registry.holds("auditor@tax-office", "tax-office", "compliance-officer")


def test_admin_and_compliance_officer_exclude_each_other_in_both_directions(world: World) -> None:
    w = world
    reviewer = {"subject": "auditor@tax-office", "agency": "tax-office", "role": "compliance-officer"}
    assert w.client.post("/v1/role-assignments", json=reviewer, headers=w.admin).status_code == 201
    as_admin = reviewer | {"role": "admin"}
    problem(w.client.post("/v1/role-assignments", json=as_admin, headers=w.admin), 403, "duty-conflict")
    as_reviewer = {"subject": SECOND_ADMIN, "agency": "tax-office", "role": "compliance-officer"}
    problem(w.client.post("/v1/role-assignments", json=as_reviewer, headers=w.admin), 403, "duty-conflict")
    # The vault's compliance officers review every agency: none may administer one.
    vault_wide = {"subject": "compliance@vault", "agency": "tax-office", "role": "admin"}
    problem(w.client.post("/v1/role-assignments", json=vault_wide, headers=w.admin), 403, "duty-conflict")


def test_nobody_reviews_an_agency_they_work_in(world: World) -> None:
    """A caseworker or registrar made compliance officer of their own agency would audit their own
    reads and approve their colleagues' deferrals (found by the replay of the review)."""
    w = world
    for subject, role in (("case@tax-office", "caseworker"), ("clerk@tax-office", "registrar")):
        worker = {"subject": subject, "agency": "tax-office", "role": role}
        assert w.client.post("/v1/role-assignments", json=worker, headers=w.admin).status_code == 201
        reviewer = worker | {"role": "compliance-officer"}
        problem(w.client.post("/v1/role-assignments", json=reviewer, headers=w.admin), 403, "duty-conflict")
    auditor = {"subject": "auditor@tax-office", "agency": "tax-office", "role": "compliance-officer"}
    assert w.client.post("/v1/role-assignments", json=auditor, headers=w.admin).status_code == 201
    as_worker = auditor | {"role": "caseworker"}
    problem(w.client.post("/v1/role-assignments", json=as_worker, headers=w.admin), 403, "duty-conflict")
    # A caseworker elsewhere may review another agency.
    elsewhere = {"subject": "case@tax-office", "agency": "benefits-office", "role": "compliance-officer"}
    assert w.client.post("/v1/role-assignments", json=elsewhere, headers=w.admin).status_code == 201


def test_a_compliance_role_held_beside_an_admin_role_from_older_data_is_not_honoured(world: World) -> None:
    w = world
    with w.vault.data_engine.begin() as conn:  # written before the rule existed
        conn.execute(
            insert(role_assignments).values(
                subject=ADMIN, agency="tax-office", role="compliance-officer", created_at=datetime.now(UTC)
            )
        )
    response = w.client.get("/v1/audit/events", headers=w.token(ADMIN, "compliance-officer", "tax-office"))
    problem(response, 403)
    assert response.json()["reason"].startswith("role-not-held")


# -- secret expiry and rotation (finding 14) -------------------------------------------------------


def test_new_secrets_expire_after_the_configured_lifetime(world: World) -> None:
    w = world
    client = _new_client(w, _admin(w))
    expires = datetime.fromisoformat(client["secret_expires_at"])
    lifetime = timedelta(days=w.settings.client_secret_days)
    assert w.settings.client_secret_days == 90
    assert abs(expires - (datetime.now(UTC) + lifetime)) < timedelta(minutes=5)
    listed = w.client.get("/v1/clients", headers=_admin(w)).json()
    assert {c["client_id"]: c["secret_expires_at"] for c in listed}[client["client_id"]] == client["secret_expires_at"]


def test_an_expired_secret_is_refused_like_a_wrong_one_and_audited_as_expired(world: World) -> None:
    w = world
    demo = w.apps["tax-office"]
    assert demo.secret is not None
    assert _take_token(w, demo.client_id, demo.secret).status_code == 200
    with w.vault.data_engine.begin() as conn:
        conn.execute(
            update(clients)
            .where(clients.c.client_id == demo.client_id)
            .values(secret_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = _take_token(w, demo.client_id, demo.secret)
    problem(expired, 401)
    _same_answer(expired, _take_token(w, demo.client_id, "cvs_wrong"))
    assert "secret-expired" in _token_refusal_reason(w, demo.client_id)


def test_rotating_a_secret_shows_it_once_and_an_agency_admins_rotation_needs_approval(world: World) -> None:
    w = world
    demo = w.apps["tax-office"]
    assert demo.secret is not None
    rotated = w.client.post(f"/v1/clients/{demo.client_id}/secret", headers=_admin(w))
    assert rotated.status_code == 201, rotated.text
    fresh = rotated.json()
    assert fresh["status"] == "pending-approval" and fresh["client_secret"] != demo.secret
    # The old secret stops at once; the new one waits for a second admin.
    assert _take_token(w, demo.client_id, demo.secret).status_code == 401
    assert _take_token(w, demo.client_id, fresh["client_secret"]).status_code == 401
    assert "client-pending" in _token_refusal_reason(w, demo.client_id)
    problem(w.client.post(f"/v1/clients/{demo.client_id}/approve", headers=_admin(w)), 403, "own-client")
    assert w.client.post(f"/v1/clients/{demo.client_id}/approve", headers=_admin(w, SECOND_ADMIN)).status_code == 200
    assert _take_token(w, demo.client_id, fresh["client_secret"]).status_code == 200
    # The secret is never shown again.
    assert fresh["client_secret"] not in w.client.get("/v1/clients", headers=w.admin).text
    assert [e["actor"] for e in w.events(action="clients.rotate")] == [ADMIN]


def test_tokens_of_a_client_waiting_for_approval_are_refused(world: World) -> None:
    w = world
    app = w.app("tax-office")
    assert w.client.get("/v1/purposes", headers=app).status_code == 200
    assert w.client.post(f"/v1/clients/{w.apps['tax-office'].client_id}/secret", headers=_admin(w)).status_code == 201
    problem(w.client.get("/v1/purposes", headers=app), 401, "client-pending")


# -- flags -----------------------------------------------------------------------------------------


def test_flags_show_client_creations_approvals_and_sensitive_role_assignments(world: World) -> None:
    w = world
    client = _new_client(w, _admin(w))
    w.client.post(f"/v1/clients/{client['client_id']}/approve", headers=_admin(w, SECOND_ADMIN))
    reviewer = {"subject": "auditor@tax-office", "agency": "tax-office", "role": "compliance-officer"}
    assert w.client.post("/v1/role-assignments", json=reviewer, headers=w.admin).status_code == 201
    self_made = {"subject": ADMIN, "agency": "tax-office", "role": "caseworker"}
    problem(w.client.post("/v1/role-assignments", json=self_made, headers=_admin(w)), 403)
    flags = w.client.get("/v1/audit/flags", headers=w.compliance)
    assert flags.status_code == 200, flags.text
    seen = {(f["rule"], f["actor"]) for f in flags.json()}
    assert {
        ("client-created", ADMIN),
        ("client-approved", SECOND_ADMIN),
        ("sensitive-role-assigned", "admin@vault"),
        ("duty-refused", ADMIN),
    } <= seen, seen
    created = [f for f in flags.json() if f["rule"] == "client-created" and f["actor"] == ADMIN]
    assert client["client_id"] in created[0]["detail"]
