"""`citizen-vault demo` prints bearer tokens and client secrets to a terminal only, once, saying so;
redirected to a file it prints commands that mint a token when run (issue 19, finding 14)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

from tests.support.server_proc import CLI, clean_env

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_redirected_demo_output_holds_no_token_or_secret_and_says_how_to_get_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        [CLI, "--data-dir", str(data), "demo", "--citizens", "3", "--curl"],
        env=clean_env(FORCE_COLOR="1"),  # colour forced on must not make a pipe look like a terminal
        capture_output=True,
        text=True,
        check=True,
    )
    printed = ANSI.sub("", result.stdout)
    assert not JWT.search(printed)
    assert "client_secret=" not in printed
    assert "not a terminal" in printed
    command = re.search(r"\$\(([^)]*token --role registrar --agency civil-registry[^)]*)\)", printed)
    assert command, printed
    minted = subprocess.run(command.group(1), shell=True, env=clean_env(), capture_output=True, text=True, check=True)
    assert JWT.fullmatch(minted.stdout.strip())


def test_demo_on_a_terminal_shows_tokens_and_secrets_once_and_says_they_expire(tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the demo, its stdout a terminal
        env = clean_env()
        os.execve(CLI, [CLI, "--data-dir", str(tmp_path / "data"), "demo", "--citizens", "3", "--curl"], env)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal closes when the demo exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    shown = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    assert JWT.search(shown)
    assert "client_secret=" in shown
    assert "shown once" in shown and "expire" in shown
