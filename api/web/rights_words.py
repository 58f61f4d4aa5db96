"""Rights requests in plain words, for the portal's and the officers' pages alike: kinds, steps,
and the refusal reasons of vault/requests (a page never shows a code alone)."""

from __future__ import annotations

from typing import Any

from vault.requests.model import RightsRequest

KINDS = {
    "access": "A copy of your data",
    "rectification": "Correction",
    "erasure": "Erasure",
    "restriction": "Restriction of use",
    "objection": "Objection to a use",
}
REASONS = {
    "duplicate-open-request": "You already have an open request of this kind covering the same data or purpose. "
    "Follow it under My rights requests.",
    "already-restricted": "The use of your data for this purpose is already restricted.",
    "erasure-blocked-legal-obligation": "Your data cannot be erased now: an agency processes it under a legal "
    "obligation. You can ask again when that has ended.",
    "objection-consent-basis": "This purpose rests on your consent: withdraw the consent instead, under My consents.",
    "objection-legal-obligation": "This purpose rests on a legal obligation: the law overrides an objection.",
    "objection-vital-interest": "This purpose protects someone's vital interests: the law overrides an objection.",
    "invalid-transition": "The request is no longer at a step where this can be done.",
    "changed-concurrently": "The request changed meanwhile. Reload the page and try again.",
    "extension-limit": "The deadline can be extended by two months at most in all.",
    "nothing-to-lift": "Only a restriction in force can be lifted.",
    "accept-rectification": "A correction is decided with Accept or Refuse.",
    "not-a-rectification": "Only a correction is accepted with a correction.",
    "erasure-by-registrar": "Only a registrar of the civil registry can carry out an erasure.",
    "compliance-read-only": "Compliance officers oversee requests; the agency handling one decides it.",
}
UNKNOWN = "This was refused by a rule of the service."


def explain(reason: str | None) -> str:
    """A rights-request refusal in plain words."""
    return REASONS.get(reason or "", UNKNOWN)


def request_rows(found: list[RightsRequest], href: str) -> list[list[Any]]:
    """Requests as table cells: kind (a link to ``href`` + id), status, submitted, due."""
    rows: list[list[Any]] = []
    for r in found:
        due = r.due_at[:10] + (" (overdue)" if r.overdue else "")
        rows.append([{"text": KINDS.get(r.kind, r.kind), "href": f"{href}/{r.id}"}, r.status, r.submitted_at[:10], due])
    return rows


def outcome(found: RightsRequest) -> list[str]:
    """What the request led to, in sentences (names and statutes only)."""
    detail = found.detail
    said: list[str] = []
    if detail.get("answer") == "export":
        said.append("Answered: download everything held on you under Download everything.")
    if detail.get("outcome") == "corrected":
        said.append("Done: the correction was applied.")
    done = detail.get("outcome")
    if isinstance(done, dict):
        if done.get("destroyed"):
            said.append("Erased (made unreadable for good): " + ", ".join(done["destroyed"]) + ".")
        for name, basis in sorted(done.get("held", {}).items()):
            said.append(f"Kept: {name}, because {basis}.")
    return said


def history_rows(found: RightsRequest) -> list[list[Any]]:
    """A request's history as table cells: step, status, when (UTC), by whom (role)."""
    return [
        [h.event.replace("-", " "), h.status, h.at[:16].replace("T", " ") + " UTC", h.actor_role] for h in found.history
    ]
