"""Suite-wide test setup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

_INIT = TestClient.__init__


def _local_init(self: TestClient, app: Any, base_url: str = "http://localhost", *args: Any, **kwargs: Any) -> None:
    _INIT(self, app, base_url, *args, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def _test_client_speaks_as_localhost() -> Iterator[None]:
    """Starlette's TestClient sends `Host: testserver` unless told otherwise; the service answers only
    for the hosts it is (api/shield.py, TrustedHosts: by default the issuer's and the local names), so
    clients built without a base_url speak as http://localhost, as a local browser would."""
    with pytest.MonkeyPatch.context() as patch:  # session-wide: module-scoped worlds build clients too
        patch.setattr(TestClient, "__init__", _local_init)
        yield
