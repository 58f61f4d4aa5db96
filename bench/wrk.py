"""HTTP load from wrk (Debian package `wrk`): a C load generator, so the client takes little of the
two cores the servers need, unlike a Python client. Closed loop: ``connections`` requests in
flight at all times for ``seconds``; latencies are over every response, 2xx or not.

`scripts/bootstrap.sh bench` (run by `make bench`) installs it when missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkRun:
    """One wrk run, summarised."""

    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    failed: int  # non-2xx/3xx responses plus socket errors (connect, read, write, timeout)

    @property
    def ok_per_s(self) -> float:
        """Successful responses per second."""
        return self.requests_per_s * (self.requests - self.failed) / self.requests if self.requests else 0.0


def require() -> str:
    """The wrk executable, or a clear error saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: run `scripts/bootstrap.sh bench` (or `apt-get install wrk`)")
    return path


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkRun:
    """Read wrk's --latency report."""
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    total = re.search(r"^\s+(\d+) requests in ", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if total is None or rate is None or len(pct) != 3:
        raise ValueError(f"unexpected wrk output:\n{output}")
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failed = (sum(int(g) for g in socket.groups()) if socket else 0) + (int(non2xx.group(1)) if non2xx else 0)
    return WrkRun(float(rate.group(1)), _ms(pct["50"]), _ms(pct["90"]), _ms(pct["99"]), int(total.group(1)), failed)


# Each connection pauses a random, exponentially distributed time before each request: 32 such
# connections offer a load close to Poisson arrivals at 32 / (think + latency) requests/s.
_THINK = """
math.randomseed(os.time())
function delay()
  return math.floor(-{mean_ms} * math.log(1 - math.random()))
end
"""


def run(
    url: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    timeout_s: int = 30,
    think_ms: float | None = None,
) -> WrkRun:
    """Load ``url`` (loopback only) with ``connections`` connections from one wrk thread: closed loop,
    or, with ``think_ms``, each connection pausing a random time of that mean between requests (a
    load below saturation, at which a latency target means something)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("benchmarks only load 127.0.0.1")
    cmd = [require(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if think_ms is not None:
            script.write(_THINK.format(mean_ms=float(think_ms)))
            script.flush()
            cmd += ["-s", script.name]
        done = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + timeout_s + 30)
    return parse(done.stdout)
