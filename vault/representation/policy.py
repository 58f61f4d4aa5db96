"""The representation policy (policies/representation.yaml): majority age, and which purposes
need a parent's consent for a minor. Loaded once when the vault opens; a bad file refuses to start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from vault.errors import ConfigurationError
from vault.settings import POLICIES_DIR

POLICY_PATH = POLICIES_DIR / "representation.yaml"
EVERY_PURPOSE = "*"


@dataclass(frozen=True)
class RepresentationPolicy:
    """Majority age and the purposes whose consent, for a minor, a parent or guardian gives."""

    majority_age: int = 18
    parental_consent: frozenset[str] = frozenset({EVERY_PURPOSE})

    def needs_parent(self, purpose: str) -> bool:
        """Whether a minor's consent to ``purpose`` must come from a parent or guardian."""
        return EVERY_PURPOSE in self.parental_consent or purpose in self.parental_consent

    def majority(self, born: date) -> date:
        """The day a person born on ``born`` comes of age (29 February: 1 March in common years)."""
        try:
            return born.replace(year=born.year + self.majority_age)
        except ValueError:
            return date(born.year + self.majority_age, 3, 1)


def load(path: Path = POLICY_PATH) -> RepresentationPolicy:
    """The policy in ``path``; ConfigurationError when it is missing or malformed."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"representation policy unreadable: {type(exc).__name__}") from None
    if not isinstance(raw, dict):
        raise ConfigurationError("representation policy: not a mapping")
    age, purposes = raw.get("majority_age"), raw.get("parental_consent", [])
    if not isinstance(age, int) or not 14 <= age <= 25:
        raise ConfigurationError("representation policy: majority_age must be an integer from 14 to 25")
    if not isinstance(purposes, list) or not all(isinstance(p, str) and p for p in purposes):
        raise ConfigurationError("representation policy: parental_consent must be a list of purpose codes")
    return RepresentationPolicy(age, frozenset(purposes))
