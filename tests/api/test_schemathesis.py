"""Property-based requests generated from the app's own OpenAPI document: no server errors.

Bounded (few examples per operation, derandomised) so the suite stays fast and repeatable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from api.security import issuing
from api.settings import AppSettings
from vault.demo_registry import seed_registry
from vault.runtime import init_vault

TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data: Path = tmp_path_factory.mktemp("schemathesis")
    app_settings = AppSettings(
        data_dir=data,
        keyring_scrypt_n=2**10,
        rate_limit_per_minute=100_000,
        allowed_hosts=["testserver"],  # the Host schemathesis's ASGI transport sends
    )
    vault = init_vault(app_settings)
    seed_registry(vault.registry)
    vault.profiles.create({"given_name": "Joost", "family_name": "Vantablack", "national_id": "111-222-333"}, "x")
    for name, (subject, role, agency) in {
        "registrar": ("registrar@civil-registry", "registrar", "civil-registry"),
        "admin": ("admin@vault", "admin", "vault"),
    }.items():
        TOKENS[name] = issuing.issue(
            vault.signing, app_settings.issuer, app_settings.audience, subject, role, agency, 3600
        )
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings, vault))


def test_no_server_errors(api_schema: Any) -> None:
    """Every operation, as a registrar (profiles) and as the vault's admin (registry)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            for who in ("registrar", "admin"):
                response = case.call(headers={"Authorization": f"Bearer {TOKENS[who]}"})
                assert response.status_code < 500, (
                    f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
                )

        check()
