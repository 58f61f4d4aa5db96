"""Wiring: settings -> key provider, key store, data store, catalogue, services. Built on demand, never at import."""

from __future__ import annotations

import gc
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from keys import migrate
from keys.anchor import AuditAnchor
from keys.audit_signing import AuditSigner
from keys.dekstore import DekStore
from keys.errors import KeyLayerError
from keys.local import LocalKeyProvider
from keys.provider import KeyProvider
from keys.signing import SigningKeyring
from keys.sqlstore import Checkpointer, make_engine
from vault import db
from vault.audit.log import AuditLog
from vault.catalogue import Catalogue
from vault.consent.service import ConsentService
from vault.errors import ConfigurationError, VaultError
from vault.grants.service import GrantService
from vault.interactions.service import InteractionService
from vault.profiles.service import ProfileService
from vault.purposes.service import PurposeService
from vault.registry import Registry
from vault.representation import policy as representation_policy
from vault.representation.service import RepresentationService
from vault.requests.handling import RequestDesk
from vault.settings import Settings

# Label of the provider-derived key that hashes client secrets (not a field name: fields cannot hold "/").
CLIENT_SECRET_KEY_LABEL = "client-secrets/v1"  # noqa: S105 - a derivation label, not a secret
# Label of the provider-derived key that MACs the audit log's head record.
AUDIT_HEAD_KEY_LABEL = "audit-head/v1"

DEV_KEYRING_WARNING = (
    "DEVELOPMENT MODE: the keyring is NOT protected by a master secret. Anyone who can read "
    "the data directory can decrypt every profile. Set CITIZEN_VAULT_MASTER_SECRET before `init` "
    "for anything but a demo."
)


@dataclass
class Vault:
    """An opened vault: everything a command or the HTTP app needs."""

    settings: Settings
    data_engine: Engine
    key_engine: Engine
    provider: KeyProvider
    dekstore: DekStore
    catalogue: Catalogue
    profiles: ProfileService
    registry: Registry
    signing: SigningKeyring
    audit: AuditLog
    purposes: PurposeService
    consents: ConsentService
    grants: GrantService
    interactions: InteractionService
    requests: RequestDesk
    representation: RepresentationService
    warnings: list[str] = field(default_factory=list)
    _checkpointer: Checkpointer | None = field(default=None, repr=False)

    def background_checkpoints(self) -> Checkpointer:
        """Start folding the data store's WAL into its file from a background thread (the server,
        long-running benchmarks); stopped by :meth:`close`."""
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.data_engine)
            self._checkpointer.start()
        return self._checkpointer

    def close(self) -> None:
        """Release database connections."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.data_engine.dispose()
        self.key_engine.dispose()


def _secret(settings: Settings) -> bytes | None:
    return settings.master_secret.get_secret_value().encode() if settings.master_secret else None


def _check_settings(settings: Settings) -> None:
    data_url = make_url(settings.resolved_database_url())
    key_url = make_url(settings.resolved_keystore_url())
    if data_url == key_url:
        raise ConfigurationError(
            "the key store must not be the data store: backups of the data must not carry data keys"
        )
    if settings.environment == "production":
        if settings.key_provider == "local" and settings.master_secret is None:
            raise ConfigurationError("production needs CITIZEN_VAULT_MASTER_SECRET to protect the keyring")
        if settings.key_provider == "pkcs11" and settings.pkcs11_pin is None:
            raise ConfigurationError("production with an HSM needs CITIZEN_VAULT_PKCS11_PIN")


def _store_files(settings: Settings) -> list[Path]:
    """The data directory, its files, and the embedded databases with SQLite's companions (-wal, -shm)."""
    paths = [settings.data_dir, *(p for p in settings.data_dir.iterdir() if p.is_file())]
    for url in (settings.resolved_database_url(), settings.resolved_keystore_url()):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            db_file = Path(parsed.database)
            paths += [db_file, *(Path(f"{db_file}{suffix}") for suffix in ("-wal", "-shm", "-journal"))]
    return [p for p in dict.fromkeys(paths) if p.exists()]


def private_files(settings: Settings) -> list[str]:
    """Make this process create files for its owner only, then check the files that exist.

    A umask is the one setting that covers every file the process creates, SQLite's -wal and -shm
    included (SQLite copies the database file's mode to them anyway). Existing files that group or
    others may read (made by an older version, or by hand) are refused in production, where the
    operator must look; in development they are made private and a warning says so. Returns the
    warnings.
    """
    os.umask(0o077)
    if not settings.data_dir.exists():
        return []
    loose = [p for p in _store_files(settings) if stat.S_IMODE(p.stat().st_mode) & 0o077]
    if not loose:
        return []
    listed = ", ".join(f"{p} ({stat.S_IMODE(p.stat().st_mode):04o})" for p in loose)
    if settings.environment == "production":
        raise ConfigurationError(
            f"data files readable by other users: {listed}; chmod 600 the files (700 the directory) and restart"
        )
    for p in loose:
        os.chmod(p, 0o700 if p.is_dir() else 0o600)
    return [f"data files were readable by other users and are now private (0600, directory 0700): {listed}"]


def build_provider(settings: Settings, *, create: bool) -> KeyProvider:
    """The configured KEK provider; with ``create``, set it up if it does not exist yet."""
    try:
        if settings.key_provider == "pkcs11":
            from keys.pkcs11 import Pkcs11KeyProvider  # noqa: PLC0415 - optional native module

            if settings.pkcs11_pin is None:
                raise ConfigurationError("CITIZEN_VAULT_PKCS11_PIN is not set")
            return Pkcs11KeyProvider(
                settings.pkcs11_module,
                settings.pkcs11_token_label,
                settings.pkcs11_pin.get_secret_value(),
                create=create,
            )
        path = settings.keyring_path
        if create and not path.exists():
            return LocalKeyProvider.create(path, _secret(settings), scrypt_n=settings.keyring_scrypt_n)
        return LocalKeyProvider(path, _secret(settings))
    except KeyLayerError as exc:
        raise ConfigurationError(str(exc)) from None


def _assemble(
    settings: Settings, provider: KeyProvider, data_engine: Engine, key_engine: Engine, *, create: bool
) -> Vault:
    catalogue = Catalogue.load(settings.catalogue_path)
    path = settings.data_dir / "signing-keys.json"
    try:
        if create:
            signing = SigningKeyring.open_or_create(path, _secret(settings), settings.keyring_scrypt_n)
        else:
            signing = SigningKeyring(path, _secret(settings))
        audit_signer = AuditSigner.open(
            settings.data_dir / "audit-signing-keys.json",
            _secret(settings),
            create=create,
            scrypt_n=settings.keyring_scrypt_n,
        )
    except KeyLayerError as exc:
        raise ConfigurationError(str(exc)) from None
    audit = AuditLog(
        data_engine,
        provider.index_key(AUDIT_HEAD_KEY_LABEL),
        audit_signer,
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
        anchor=AuditAnchor(key_engine),
    )
    dekstore = DekStore(key_engine, provider)
    warnings = []
    if isinstance(provider, LocalKeyProvider) and not provider.protected:
        warnings.append(DEV_KEYRING_WARNING)
    profiles = ProfileService(data_engine, dekstore, catalogue, audit, pii_spacy_model=settings.pii_spacy_model)
    purposes = PurposeService(data_engine, catalogue, audit)
    consents = ConsentService(data_engine, purposes, signing, audit)
    representation = RepresentationService(data_engine, profiles, audit, representation_policy.load())
    consents.gate = representation.consent_gate
    return Vault(
        settings=settings,
        data_engine=data_engine,
        key_engine=key_engine,
        provider=provider,
        dekstore=dekstore,
        catalogue=catalogue,
        profiles=profiles,
        registry=Registry(
            data_engine, provider.index_key(CLIENT_SECRET_KEY_LABEL), audit, secret_days=settings.client_secret_days
        ),
        signing=signing,
        audit=audit,
        purposes=purposes,
        consents=consents,
        grants=GrantService(data_engine, profiles, purposes, consents, signing, audit),
        interactions=InteractionService(data_engine, dekstore, audit, profiles.pii.detector),
        requests=RequestDesk(data_engine, dekstore, catalogue, profiles, purposes, audit),
        representation=representation,
        warnings=warnings,
    )


def init_vault(settings: Settings) -> Vault:
    """Create (or complete) a vault: data directory, keyring or HSM keys, both schemas."""
    _check_settings(settings)
    repaired = private_files(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    provider = build_provider(settings, create=True)
    data_engine = db.data_engine(settings.resolved_database_url())
    key_engine = make_engine(settings.resolved_keystore_url(), secure_delete=True)
    migrate.upgrade_keystore(key_engine)
    db.upgrade(data_engine)
    vault = _assemble(settings, provider, data_engine, key_engine, create=True)
    vault.warnings += repaired
    vault.audit.ensure_head()
    return vault


def open_vault(settings: Settings, *, check_schema: bool = True) -> Vault:
    """Open an initialised vault; refuses when keys are missing or the schema is out of date."""
    _check_settings(settings)
    if settings.key_provider == "local" and not settings.keyring_path.exists():
        raise ConfigurationError(
            f"no keyring at {settings.keyring_path}: run `citizen-vault init` first "
            "(or point --data-dir / CITIZEN_VAULT_DATA_DIR at an initialised vault)"
        )
    repaired = private_files(settings)
    provider = build_provider(settings, create=False)
    data_engine = db.data_engine(settings.resolved_database_url())
    key_engine = make_engine(settings.resolved_keystore_url(), secure_delete=True)
    if check_schema and not (db.is_current(data_engine) and migrate.keystore_is_current(key_engine)):
        data_engine.dispose()
        key_engine.dispose()
        raise ConfigurationError("the database schema is not up to date: run `citizen-vault db upgrade`")
    vault = _assemble(settings, provider, data_engine, key_engine, create=False)
    vault.warnings += repaired
    if check_schema:
        try:
            vault.audit.ensure_head()
        except VaultError as exc:
            vault.close()
            raise ConfigurationError(f"audit log unusable: {exc}") from None
    return vault


def settle_heap() -> None:
    """Take everything allocated at start-up out of the cyclic garbage collector's reach.

    A server process holds millions of long-lived objects once the vault, the policy engine and
    the web framework are loaded; every full collection walked all of them, which cost bulk grant
    reads about a fifth of their time. ``gc.freeze`` moves them to a permanent generation (they are
    still reference-counted and freed normally). Call once, when start-up is done.
    """
    gc.collect()
    gc.freeze()
