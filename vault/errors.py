"""Errors of the vault domain, mapped to responses in one place by the interfaces (api/).

    VaultError
    ├── ConfigurationError       settings, catalogue or key provider unusable: refuse to start
    ├── ValidationFailed         input does not satisfy the catalogue; names the field, never the value
    ├── NotFound                 no such citizen (or not visible to the caller)
    ├── Conflict                 a unique field's value is already registered
    ├── CitizenErased            the citizen was erased (only legally held fields remain)
    ├── Refused                  a grant or consent rule says no (reason code the caller can act on)
    ├── CannotDecrypt            ciphertext cannot be opened: shredded, unknown key, tampered, moved
    └── AuditUnavailable         the audit event cannot be written: the access does not happen

A message never contains a field value, a key or a ciphertext.
"""

from __future__ import annotations


class VaultError(Exception):
    """Base class for domain errors."""


class ConfigurationError(VaultError):
    """The vault cannot run with this configuration."""


class ValidationFailed(VaultError):
    """Input rejected by the field catalogue."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {why}" for field, why in sorted(problems.items())))


class NotFound(VaultError):
    """No such citizen."""


class Conflict(VaultError):
    """A unique value is already registered."""

    def __init__(self, field: str, why: str = "already registered to another citizen") -> None:
        self.field = field
        super().__init__(f"{field}: {why}")


class CitizenErased(VaultError):
    """The citizen was erased."""


class CannotDecrypt(VaultError):
    """One opaque error for every decryption failure; the cause goes to the server log only."""


class AuditUnavailable(VaultError):
    """The audit event could not be written: the access it records does not happen (no audit, no data)."""


class Refused(VaultError):
    """The request is understood but a rule refuses it: ``reason`` is a stable code (consent-required,
    fields-outside-purpose, grant-expired ...), ``details`` ids the caller may act on (never values)."""

    def __init__(self, reason: str, message: str, **details: str) -> None:
        self.reason = reason
        self.details = details
        super().__init__(f"{reason}: {message}")
