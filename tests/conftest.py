"""Suite-wide test setup."""

from __future__ import annotations

import os

# Starlette's TestClient speaks to http://testserver; the service answers only for hosts it knows
# (api/shield.py, TrustedHosts). Tests of that check set allowed_hosts themselves; servers started
# as subprocesses get a clean environment and answer on 127.0.0.1.
os.environ.setdefault("CITIZEN_VAULT_ALLOWED_HOSTS", '["testserver", "localhost", "127.0.0.1", "::1"]')
