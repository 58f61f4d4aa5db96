"""Representation in plain words: names for the pages, and a represented citizen's access log
entries ("Your guardian Ada Example viewed your profile").

A name is a decrypted profile value: each one is read through ProfileService.read, audited
(``representation.names``) under whoever asked, on the named person's own log. Nothing is cached.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from vault.audit.log import Actor
from vault.audit.review import AccessEntry
from vault.errors import VaultError
from vault.profiles.service import ProfileService
from vault.representation.service import KINDS, REPRESENTATIVE

KIND_WORDS = {"parent": "parent", "guardian": "guardian", "mandate": "representative (by your mandate)"}
AS_WORDS = {"parent": "as their parent", "guardian": "as their guardian", "mandate": "under their mandate"}
VERBS = {
    "me.read": "viewed your profile",
    "me.export": "downloaded all your data",
    "me.access-log": "looked at who read your data",
    "consents.give": "gave a consent for you",
    "consents.withdraw": "withdrew one of your consents",
    "consents.renew": "renewed one of your consents",
    "grants.approve": "approved a request for your data",
    "grants.decline": "declined a request for your data",
    "representation.age-check": "checked your date of birth (a parent acts for you until you come of age)",
    "representation.names": "read your name (to show it on their pages)",
}
UNKNOWN_NAME = "(name not available)"


def names(profiles: ProfileService, ids: Iterable[str], actor: Actor) -> dict[str, str]:
    """Each citizen's given and family name, read in an audited read per person; a person whose
    name cannot be read (erased, no such field) is named :data:`UNKNOWN_NAME`."""
    found: dict[str, str] = {}
    for cid in dict.fromkeys(ids):
        try:
            values = profiles.read(
                uuid.UUID(cid), ["given_name", "family_name"], actor=actor, action="representation.names"
            ).values
            found[cid] = " ".join(str(values[k]) for k in ("given_name", "family_name") if k in values) or UNKNOWN_NAME
        except (ValueError, VaultError):
            found[cid] = UNKNOWN_NAME
    return found


def said(profiles: ProfileService, entries: Sequence[AccessEntry], viewer: Actor) -> dict[int, str]:
    """For each entry made by a representative, by sequence number: what happened, in words."""
    acts = [e for e in entries if e.role == REPRESENTATIVE and e.agency.partition(":")[0] in KINDS]
    who = names(profiles, (e.who for e in acts), viewer) if acts else {}
    words: dict[int, str] = {}
    for e in acts:
        kind = e.agency.partition(":")[0]
        verb = VERBS.get(e.action, f"acted for you ({e.action})")
        if e.outcome != "allowed":
            verb = f"tried to act for you ({e.action}) and was refused"
        words[e.seq] = f"Your {KIND_WORDS[kind]} {who.get(e.who, UNKNOWN_NAME)} {verb}"
    return words
