"""What the real server writes to its log: JSON lines, an exception's type only, never its message
or a traceback (issue 19, finding 14)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from tests.api.raising_app import VALUE
from tests.support.server_proc import clean_env, free_port, initialised, running

RUN = (
    "import sys; from api.server import run; from api.settings import AppSettings; "
    "run('tests.api.raising_app:app', host='127.0.0.1', port=int(sys.argv[1]), workers=1, settings=AppSettings())"
)


def test_an_uncaught_exception_logs_one_json_line_with_its_type_only(tmp_path: Path) -> None:
    env = clean_env(CITIZEN_VAULT_DATA_DIR=str(tmp_path / "data"))
    initialised(tmp_path / "data", env)
    port = free_port()
    with running([sys.executable, "-c", RUN, str(port)], env, port, tmp_path / "stderr.log") as server:
        answer = httpx.get(f"{server.base}/boom", timeout=30)
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert VALUE not in answer.text
        assert "default-src 'self'" in answer.headers["content-security-policy"]  # the 500 too
        log = server.stop()
    assert VALUE not in log
    assert "Traceback" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    about = [line for line in lines if "ValueError" in json.dumps(line)]
    assert len(about) == 1, lines
