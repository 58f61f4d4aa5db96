"""Errors raised by the key layer.

    KeyLayerError
    ├── KeyringError            keyring file missing, unreadable, wrong master secret
    ├── ProviderError           the KEK provider (file, HSM) refused or failed
    ├── UnknownKeyVersion       a KEK version this provider does not hold (retired or never existed)
    ├── KeyDestroyed            the DEK was destroyed (crypto-shredded) or never existed
    └── DecryptionFailed        authentication failed: wrong key, wrong associated data, tampering

Callers outside ``keys`` should treat every one of them as "cannot decrypt": none of them ever
carries key material or plaintext in its message.
"""


class KeyLayerError(Exception):
    """Base class for key-layer failures."""


class KeyringError(KeyLayerError):
    """The keyring cannot be opened or written."""


class ProviderError(KeyLayerError):
    """The KEK provider failed."""


class UnknownKeyVersion(KeyLayerError):
    """A KEK version that the provider does not hold."""


class KeyDestroyed(KeyLayerError):
    """The data key is gone (crypto-shredded) or never existed."""


class DecryptionFailed(KeyLayerError):
    """Authenticated decryption failed."""
