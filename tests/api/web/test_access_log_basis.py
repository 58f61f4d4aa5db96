"""Who read my data shows each read's lawful basis in plain words, with the statute its purpose named
when the read happened, and the API's /v1/me/access-log says the same. People and statutes are
fictitious (vault/demo_registry.py)."""

from __future__ import annotations

import html

from tests.support.web_world import WebWorld
from vault.demo_registry import PURPOSES
from vault.registry import OPERATOR

TAX_ACT = next(p[4] for p in PURPOSES if p[0] == "tax-assessment")


def test_the_access_log_shows_the_lawful_basis_and_statute_as_the_api_gives_them(web: WebWorld) -> None:
    citizen = web.demo_citizens[0]  # type: ignore[index]
    taxed = web.granted(web.tax, citizen_id=citizen, purpose="tax-assessment", fields=["income"], max_uses=5)
    assert web.read(web.tax, taxed["id"]).status_code == 200
    given = web.consent(citizen, agency="benefits-office", purpose="benefit-eligibility", categories=["contact"])
    assert given.status_code == 201, given.text
    benefit = web.granted(web.benefits, citizen_id=citizen, purpose="benefit-eligibility", fields=["email"])
    assert web.read(web.benefits, benefit["id"]).status_code == 200
    # A later version of the purpose names another statute: the earlier read keeps the one in force then.
    web.vault.purposes.update("tax-assessment", actor=OPERATOR, statute="Income Tax Act (fictitious) s. 43")
    assert web.read(web.tax, taxed["id"]).status_code == 200

    entries = web.client.get("/v1/me/access-log", headers=web.me(citizen)).json()["entries"]
    reads = [(e["agency"], e["lawful_basis"], e["statute"]) for e in entries if e["action"] == "grants.read"]
    assert reads == [
        ("tax-office", "legal-obligation", TAX_ACT),
        ("benefits-office", "consent", None),
        ("tax-office", "legal-obligation", "Income Tax Act (fictitious) s. 43"),
    ]
    assert all(e["lawful_basis"] is None for e in entries if e["purpose"] is None)

    web.sign_in("citizen-0")
    page = html.unescape(web.client.get("/portal/access-log").text)
    assert "Lawful basis" in page
    assert f"Legal obligation under {TAX_ACT}" in page
    assert "Legal obligation under Income Tax Act (fictitious) s. 43" in page
    assert "Your consent" in page
    assert "access grant" not in page
