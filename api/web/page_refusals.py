"""Why a page request was refused, in plain words: the one table the error pages (error_pages.py) use.

Keys are the refusal's reason code when it has one (``csrf``, ``policy``, ``sign-in-rate``...), else
its problem type (``not-found``, ``internal``...). The consent and grant reasons the domain refuses
with are the agency console's table (agency_refusals.py), not repeated here. Each entry is a title
and one sentence saying what happened and what to do.
"""

from __future__ import annotations

from api.web.agency_refusals import REFUSALS, explain
from vault.demo_registry import ROLE_NAMES

SIGN_IN_AGAIN = "We could not sign you in. Start again from the sign-in page."
TRY_LATER = "The service cannot do this just now. Try again in a few minutes."

PAGE_REFUSALS: dict[str, tuple[str, str]] = {
    # Forms and sessions (api/security/sessions.py, api/web/render.py, api/web/login.py)
    "csrf": (
        "Your form expired",
        "Your form expired or came from another page. Go back, reload the page and try again.",
    ),
    "malformed-form": ("The form could not be read", "Go back, reload the page and send the form again."),
    "unsupported-media-type": ("The form could not be read", "Go back, reload the page and send the form again."),
    "unknown-person": (
        "Choose someone from the list",
        "Go back to the sign-in page and choose a person from the list.",
    ),
    "too-large": ("Too much was sent", "What you sent is larger than the service accepts. Go back and send less."),
    # Who may use a page (api/security/auth.py); "policy" gets a sentence naming the roles (see below)
    "policy": ("You cannot use this page", "Your role may not use this page."),
    "role-not-held": (
        "You cannot use this page",
        "Your role is no longer assigned to you. Sign in again, or ask your agency's administrator.",
    ),
    "own-agency-only": ("You cannot use this page", "Officers review their own agency's records only."),
    # Signing in (api/web/login.py, api/web/oidc.py)
    "unauthorized": ("You could not be signed in", SIGN_IN_AGAIN),
    "sign-in-failed": ("You could not be signed in", SIGN_IN_AGAIN),
    "sign-in-unavailable": (
        "Sign-in is not available",
        "The identity provider could not be reached. Try again in a few minutes.",
    ),
    "sign-in-rate": ("Too many sign-in attempts", "There were too many sign-in attempts from your connection."),
    "rate-limited": ("Too many requests", "You made too many requests in a short time."),
    # What a page asked for (api/errors.py's DOMAIN table and HTTP errors)
    "not-found": ("Not found", "We could not find this page. Check the address, or start again from your start page."),
    "method-not-allowed": ("This page cannot be used this way", "Go back and use the page's links and buttons."),
    "invalid-request": (
        "This address is not valid",
        "Part of the page's address is not valid. Go back and use its links.",
    ),
    "validation-failed": ("Something is not valid", "What was sent is not valid. Go back and check what you entered."),
    "refused": ("This is not possible", "This was refused by a rule of the service."),
    "conflict": ("This changed", "This changed since you opened the page. Reload the page and try again."),
    "erased": ("No longer available", "This profile was erased, so its data is no longer available."),
    "internal": (
        "Something went wrong",
        "Something went wrong on our side. Try again; if it happens again, contact support with the reference below.",
    ),
    "unavailable": ("Not available just now", TRY_LATER),
    "cannot-decrypt": ("Not available just now", TRY_LATER),
    "audit-unavailable": (
        "Not available just now",
        "This could not be recorded in the audit log, so it did not happen. Try again in a few minutes.",
    ),
}
NOT_FOUND: dict[str, str] = {  # a 404 names what was not found when the address says (its path parameter)
    "consent_id": "We could not find that consent. Go back to your consents.",
    "grant_id": "We could not find that request or grant. Go back to the list.",
    "citizen_id": "We could not find that citizen. Search again.",
    "seq": "We could not find that event in the agencies you review. Go back to the log.",
    "deferral_id": "We could not find that deferral request. Go back to the flags.",
}
BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("Something was wrong with the request", "Go back and try again."),
    401: ("You could not be signed in", SIGN_IN_AGAIN),
    403: ("You cannot do this", "This was refused by a rule of the service."),
    404: PAGE_REFUSALS["not-found"],
    409: PAGE_REFUSALS["conflict"],
    410: PAGE_REFUSALS["erased"],
    422: PAGE_REFUSALS["validation-failed"],
    429: PAGE_REFUSALS["rate-limited"],
    500: PAGE_REFUSALS["internal"],
    503: PAGE_REFUSALS["unavailable"],
}


def words(status: int, slug: str, reason: str | None, path_params: dict[str, str]) -> tuple[str, str]:
    """The title and the plain-words sentence of a refusal (a domain consent or grant reason: the
    agency console's sentence)."""
    if status == 404 and slug == "not-found":
        thing = next((NOT_FOUND[name] for name in path_params if name in NOT_FOUND), None)
        if thing:
            return PAGE_REFUSALS["not-found"][0], thing
    if reason in PAGE_REFUSALS:
        return PAGE_REFUSALS[reason]
    if reason in REFUSALS:
        return PAGE_REFUSALS["refused"][0], explain(reason)
    if slug in PAGE_REFUSALS:
        return PAGE_REFUSALS[slug]
    return BY_STATUS.get(status, BY_STATUS[500 if status >= 500 else 400])


def _a(role: str) -> str:
    name = ROLE_NAMES.get(role, role).lower()
    return ("an " if name[:1] in "aeiou" else "a ") + name


def roles_sentence(role: str, agency: str, allowed: list[str]) -> str:
    """The sentence for a policy refusal, e.g. "You are signed in as a caseworker; this page is for
    compliance officers" (``allowed``: the roles the policy lets use the page)."""
    names = [ROLE_NAMES.get(r, r).lower() + "s" for r in allowed]
    if role in allowed or not names:  # the role may, but not in this agency (an "own" or agency-bound rule)
        return f"You are signed in as {_a(role)} of {agency}; your agency may not do this."
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"You are signed in as {_a(role)}; this page is for {listed}."
