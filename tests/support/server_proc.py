"""A real server process (`citizen-vault serve`, or the same server configuration around a test app)
on a free port, its stderr kept in a file, and raw-socket helpers for what an HTTP client will not send."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CLI = str(Path(sys.executable).parent / "citizen-vault")


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's CITIZEN_VAULT_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITIZEN_VAULT_")}
    env["CITIZEN_VAULT_KEYRING_SCRYPT_N"] = "1024"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env.update(extra)
    return env


@dataclass
class Server:
    """A running server: where it listens and where its stderr goes."""

    port: int
    stderr: Path
    proc: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> str:
        """Stop it (SIGTERM to its process group) and return what it wrote on stderr."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        return self.stderr.read_text()


@contextmanager
def running(command: list[str], env: dict[str, str], port: int, stderr: Path) -> Iterator[Server]:
    """Start ``command`` and wait (up to 60 s) until /healthz answers; stop it afterwards."""
    with stderr.open("wb") as sink:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink, start_new_session=True)
    server = Server(port, stderr, proc)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"server did not start (within 60 s): {stderr.read_text()[-2000:]}")
        yield server
    finally:
        server.stop()


def initialised(data: Path, env: dict[str, str]) -> None:
    """`citizen-vault init` in ``data``."""
    subprocess.run([CLI, "--data-dir", str(data), "init"], env=env, check=True, capture_output=True)


def exchange(port: int, payload: bytes, *, timeout: float = 60.0) -> bytes:
    """Send raw bytes (without finishing the request, if they do not) and read until the server closes.

    The generous client-side timeout only guards against a hung test: a server that closes the
    connection ends the read long before it.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def parse_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and JSON body of a raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(body) if body else None
