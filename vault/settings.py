"""Settings, from the environment (prefix CITIZEN_VAULT_) or given explicitly. Nothing is read at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"


class Settings(BaseSettings):
    """Every knob of the vault, each described; secrets are SecretStr and have no default."""

    model_config = SettingsConfigDict(env_prefix="CITIZEN_VAULT_", extra="forbid")

    data_dir: Path = Field(
        default=Path("data"), description="Directory for the embedded database, key store and keyring."
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        description="production refuses to start without a master secret (local keyring) or HSM PIN.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the data store; default SQLite vault.db in data_dir."
    )
    keystore_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the key store (wrapped data keys). Must not be the data store: "
        "backups of the data must not carry data keys. Default SQLite keystore.db in data_dir.",
    )
    key_provider: Literal["local", "pkcs11"] = Field(
        default="local", description="Where KEKs live: a local keyring file, or a PKCS#11 HSM."
    )
    master_secret: SecretStr | None = Field(
        default=None, description="Protects the local keyring file; required in production."
    )
    keyring_scrypt_n: int = Field(
        default=2**15, description="scrypt cost for deriving the keyring key from the master secret."
    )
    pkcs11_module: Path = Field(
        default=Path("/usr/lib/softhsm/libsofthsm2.so"), description="PKCS#11 module (shared library)."
    )
    pkcs11_token_label: str = Field(default="citizen-vault", description="Label of the HSM token.")
    pkcs11_pin: SecretStr | None = Field(default=None, description="User PIN of the HSM token.")
    catalogue_path: Path = Field(default=POLICIES_DIR / "fields.yaml", description="The field catalogue (YAML).")
    deferral_bases_path: Path = Field(
        default=POLICIES_DIR / "deferral-bases.yaml",
        description="Registered legal bases for deferring a citizen's view of accesses (YAML; docs/audit.md).",
    )
    import_batch_size: int = Field(default=5000, ge=1, le=50_000, description="Profiles per import transaction.")
    audit_checkpoint_every: int = Field(
        default=1000, ge=1, le=10_000_000, description="Write a signed audit checkpoint at least every N events."
    )
    audit_checkpoint_seconds: int = Field(
        default=300, ge=1, description="... and at the first event after this many seconds without one."
    )
    rotation_batch_size: int = Field(default=2000, ge=1, le=50_000, description="DEKs re-wrapped per transaction.")
    client_secret_days: int = Field(
        default=90,
        ge=1,
        le=730,
        description="Lifetime of a new or rotated API client secret, in days; an expired secret gets no token "
        "(rotate it: POST /v1/clients/{id}/secret).",
    )
    pii_spacy_model: str | None = Field(
        default=None,
        description="Installed spaCy model (package name or path) whose NER adds names and places to PII "
        "detection; default none: pattern recognizers on a blank tokenizer. Never downloaded.",
    )
    insights_k: int = Field(
        default=10, ge=2, le=1000, description="Insights: groups whose noisy count is below k are never shown."
    )
    insights_query_epsilon: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="Insights: the epsilon one query spends unless it asks for less.",
    )
    insights_max_query_epsilon: float = Field(
        default=2.0, gt=0, le=10, description="Insights: the most epsilon one query may spend."
    )
    insights_delta: float = Field(
        default=1e-7, gt=0, le=1e-4, description="Insights: bound on the chance a group of one interaction is shown."
    )
    insights_budget_epsilon: float = Field(
        default=10.0, gt=0, le=1000, description="Insights: epsilon each analyst may spend per budget period."
    )
    insights_budget_period: Literal["day", "week", "month"] = Field(
        default="month", description="Insights: the budget renews at the start of each such UTC period."
    )
    insights_refresh_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="Insights: each server rebuilds the recent rollup days this often (the first time each UTC "
        "day, every day); 0: before every query instead (small stores, tests).",
    )
    insights_refresh_days: int = Field(
        default=60, ge=1, le=3660, description="Insights: how many recent days each rollup refresh rebuilds."
    )

    def resolved_database_url(self) -> str:
        """The data store URL, defaulting to SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'vault.db'}"

    def resolved_keystore_url(self) -> str:
        """The key store URL, defaulting to SQLite in the data directory."""
        return self.keystore_url or f"sqlite:///{self.data_dir.resolve() / 'keystore.db'}"

    @property
    def keyring_path(self) -> Path:
        """The local keyring file."""
        return self.data_dir / "keyring.json"
