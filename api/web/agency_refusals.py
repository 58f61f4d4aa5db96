"""Refusals and statuses in plain words: the one table every agency page uses to explain a "no".

The domain refuses with stable reason codes (vault/grants/refusals.py, vault/consent/coverage.py,
the cascades that revoke grants); a page never shows a code alone: it shows the sentence here, with
the code beside it for whoever reports the problem. An unknown code gets a generic sentence.
"""

from __future__ import annotations

from vault.grants.model import Grant

REFUSALS: dict[str, str] = {
    # The citizen's consent (vault/consent/coverage.py)
    "consent-required": "The citizen has not consented to this purpose yet. They can approve the request in their own "
    "portal; until then no data can be read.",
    "consent-withdrawn": "The citizen withdrew their consent, so this data can no longer be read.",
    "consent-expired": "The citizen's consent has expired. They must give it again before the data can be read.",
    "consent-narrowed": "The citizen's consent no longer covers all the data this grant reads.",
    "consent-purpose-changed": "The purpose changed after the citizen consented. They must renew their consent for "
    "the new version before the data can be read.",
    # The purpose and the agency (vault/grants/service.py, vault/purposes/service.py, vault/registry.py)
    "purpose-retired": "This purpose has been retired: no grant can rest on it any more.",
    "purpose-not-for-agency": "Your agency is not allowed to use this purpose.",
    "purpose-narrowed": "The purpose no longer covers all the data this grant reads.",
    "fields-outside-purpose": "Some of the data you chose is outside what this purpose covers.",
    "unknown-purpose": "There is no such purpose.",
    "agency-retired": "Your agency has been retired from the service, so its grants cannot be used.",
    # The grant itself (vault/grants/refusals.py)
    "grant-expired": "This grant has expired. Request a new one if you still need the data.",
    "grant-exhausted": "This grant has been used as many times as it allowed. Request a new one if you still need "
    "the data.",
    "grant-revoked": "This grant was revoked, so it can no longer be used.",
    "revoked-by-agency": "Your agency revoked this grant.",
    "declined-by-citizen": "The citizen declined this request; their consent is unchanged.",
    "grant-unusable": "This grant cannot be used.",
    "citizen-erased": "The citizen's profile was erased.",
    "processing-restricted": "The citizen has restricted the use of their data for this purpose (a rights "
    "request): it cannot be read until the restriction is lifted.",
    # Finding and correcting profiles (vault/profiles/service.py)
    "not-found": "Nothing was found: it does not exist, or it belongs to another agency.",
    "erased": "The citizen's profile was erased: it can no longer be corrected.",
    "conflict": "This value is already registered to another citizen.",
    "unavailable": "The data could not be read just now. Try again later.",
    # Interactions (vault/interactions/service.py)
    "other-agency": "This request belongs to another agency: only the agency that receives it works on it.",
}
UNKNOWN = "This was refused by a rule of the service."

STATUS_WORDS: dict[str, str] = {
    "active": "Active: the data can be read.",
    "pending": "Waiting for the citizen's consent.",
    "suspended": "Suspended: the citizen's consent no longer covers it.",
    "expired": "Expired.",
    "exhausted": "Used up: every use it allowed has been spent.",
    "revoked": "Revoked.",
}


def explain(reason: str | None) -> str:
    """The plain-words sentence for a refusal reason code."""
    return REFUSALS.get(reason or "", UNKNOWN)


def grant_status(grant: Grant) -> str:
    """A grant's (derived) status in words, with the reason when it has one."""
    words = STATUS_WORDS.get(grant.status, grant.status.replace("-", " ").capitalize() + ".")
    if grant.status in ("suspended", "revoked") and grant.status_reason:
        return f"{words} {explain(grant.status_reason)}"
    return words
