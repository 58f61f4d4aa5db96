"""A real OpenID provider for the sign-in tests: Canaille (through pytest-iam's server), in a thread,
listening on localhost only, in-memory, nothing fetched from outside.

Canaille enforces PKCE (a code issued with a challenge is exchanged only with its verifier) and the
nonce. Its ID tokens are signed here with an EC P-256 key (ES256, the vault's one allowed algorithm);
Canaille also insists on an RSA key, which the vault's verifier never uses. Canaille emits only the
registered OpenID claims that its settings can map (no custom ones), so the tests carry an officer's
role in ``locale`` and agency in ``website`` (configured claim names, as a deployment points them at
its own provider's claims).

Missing Canaille or pytest-iam: the tests skip, except with CI=true, where they fail.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

CLIENT_ID = "citizen-vault-web"
CLIENT_SECRET = "not-a-real-secret-0123456789"
REDIRECT_URL = "http://localhost/login/oidc/callback"
ROLE_CLAIM, AGENCY_CLAIM = "locale", "website"


def require_provider() -> None:
    """Skip without Canaille / pytest-iam, except on CI (CI=true), where that is a failure."""
    try:
        import canaille  # noqa: F401, PLC0415 - imported here so that a missing one skips (or fails on CI)
        import pytest_iam  # noqa: F401, PLC0415
    except ImportError as exc:
        reason = f"canaille / pytest-iam not installed: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the OpenID provider is required on CI: {reason}", pytrace=False)
        pytest.skip(reason)


@dataclass
class Provider:
    """The running provider: its issuer URL, the private EC key its ID tokens are signed with, and helpers."""

    server: Any  # pytest_iam.Server
    issuer: str
    ec_jwk: dict[str, Any]
    client: Any  # canaille Client model

    def person(self, user_name: str, role: str | None = None, agency: str | None = None) -> Any:
        """A user at the provider who has consented to the vault's client (title = role, department = agency)."""
        with self.server.app.app_context():
            user = self.server.models.User(
                user_name=user_name, password="correct horse battery staple", title=role, department=agency
            )
            self.server.backend.save(user)
        self.server.consent(user, self.client)
        return user

    def forget_codes(self) -> None:
        """Delete every authorization code not yet exchanged.

        Canaille 0.3.6's in-memory backend ORs the filters of a query (its docs say AND), so looking a
        code up by (code, client) may return another outstanding code of the same client. With one code
        outstanding per test, the provider checks each test's own code (and its PKCE challenge).
        """
        with self.server.app.app_context():
            for code in self.server.backend.query(self.server.models.AuthorizationCode):
                self.server.backend.delete(code)


def _config(port: int, ec_jwk: dict[str, Any], rsa_jwk: dict[str, Any]) -> dict[str, Any]:
    return {
        "TESTING": True,
        "ENV_FILE": None,
        "SECRET_KEY": str(uuid.uuid4()),
        "WTF_CSRF_ENABLED": False,
        "PREFERRED_URL_SCHEME": "http",
        "SERVER_NAME": f"localhost:{port}",
        "CANAILLE": {
            "DATABASE": "memory",
            "JAVASCRIPT": False,
            "ACL": {"DEFAULT": {"PERMISSIONS": ["use_oidc"]}},
            "LOGGING": {"version": 1, "disable_existing_loggers": False},
        },
        "CANAILLE_OIDC": {
            "ACTIVE_JWKS": [ec_jwk, rsa_jwk],
            "REQUIRE_NONCE": True,
            "USERINFO_MAPPING": {
                "SUB": "{{ user.user_name }}",
                "LOCALE": "{% if user.title %}{{ user.title }}{% endif %}",
                "WEBSITE": "{% if user.department %}{{ user.department }}{% endif %}",
            },
        },
    }


def start_provider() -> Iterator[Provider]:
    """Run Canaille on a free localhost port until the generator is closed."""
    require_provider()
    import portpicker  # noqa: PLC0415 - after require_provider()
    from canaille import create_app  # noqa: PLC0415 - after require_provider()
    from canaille.backends import Backend  # noqa: PLC0415 - after require_provider()
    from joserfc.jwk import ECKey, RSAKey  # noqa: PLC0415 - after require_provider()
    from pytest_iam import Server  # noqa: PLC0415 - after require_provider()

    ec_jwk = ECKey.generate_key("P-256", auto_kid=True).as_dict(private=True)
    rsa_jwk = RSAKey.generate_key(2048, auto_kid=True).as_dict(private=True)
    port = portpicker.pick_unused_port()
    app = create_app(config=_config(port, ec_jwk, rsa_jwk), env_file=None, env_prefix="CV_TEST_IAM_")
    server = Server(app, port, Backend.instance)  # binds "localhost": loopback only
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with app.app_context():
            client = server.models.Client(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                client_name="Citizen Vault (tests)",
                client_uri="http://localhost",
                redirect_uris=[REDIRECT_URL],
                grant_types=["authorization_code"],
                response_types=["code"],
                token_endpoint_auth_method="client_secret_basic",
                id_token_signed_response_alg="ES256",
                scope=["openid", "profile"],
            )
            server.backend.save(client)
            client.audience = [client]  # Canaille's ID tokens name the clients of ``audience`` (its admin UI sets this)
            server.backend.save(client)
            yield Provider(server, f"http://localhost:{port}", ec_jwk, client)
    finally:
        server.httpd.shutdown()
        thread.join()
