"""Consent receipts: Kantara Consent Receipt v1.1 field names (the basis of ISO/IEC TS 27560).

A receipt is built for every consent version and signed by the vault (ES256 JWS, ``typ``
``consent-receipt+jwt``); anyone verifies it with the vault's public JWKS.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

TYP = "consent-receipt+jwt"
VERSION = "KI-CR-v1.1.0"
SENSITIVE = {"health"}


def receipt(consent_id: str, values: dict[str, Any], purpose: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The receipt of one consent version (``values``: the stored state after the change)."""

    categories = json.loads(values["categories"])
    withdrawn = values["status"] == "withdrawn"
    return {
        "version": VERSION,
        "jurisdiction": "fictitious-state",
        "consentTimestamp": int(now.timestamp()),
        "collectionMethod": "Citizen Vault API, authenticated citizen",
        "consentReceiptID": f"{consent_id}/v{values['version']}",
        "language": "en",
        "piiPrincipalId": values["citizen_id"],
        "piiControllers": [{"piiController": values["agency"], "onBehalf": False}],
        "policyUrl": "https://citizen-vault.example/purposes/" + purpose["code"],
        "services": [
            {
                "service": purpose["code"],
                "purposes": [
                    {
                        "purpose": purpose["description"],
                        "purposeCategory": [purpose["code"]],
                        "consentType": "EXPLICIT",
                        "piiCategory": categories,
                        "primaryPurpose": True,
                        "termination": values["expires_at"] or "until withdrawn",
                        "thirdPartyDisclosure": False,
                    }
                ],
            }
        ],
        "sensitive": bool(SENSITIVE & set(categories)),
        "spiCat": sorted(SENSITIVE & set(categories)),
        # Vault extensions: this version's state, so a receipt of a withdrawal proves the withdrawal.
        "consentId": consent_id,
        "consentVersion": values["version"],
        "consentStatus": "WITHDRAWN" if withdrawn else "ACTIVE",
        "lawfulBasis": purpose["lawful_basis"],
        # The version of the purpose's wording this consent was given for (``purpose`` is that version).
        "purposeVersion": values["purpose_version"],
        "retentionDays": purpose["retention_days"],
    }
