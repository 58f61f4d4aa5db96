"""`make bench`: every benchmark with the arguments docs/benchmarks.md records, one after another.

Each prints its own markdown figures (medians of runs, ratios against baselines measured in the
same run). Expect about half an hour on two cores; run one module alone to look at one figure.
Figures are copied into docs/benchmarks.md by hand, with the machine and its load.
"""

from __future__ import annotations

import subprocess
import sys

RUNS = [
    ["bench.bench_core", "--n", "100000", "--peer-n", "30000", "--runs", "3"],
    ["bench.bench_api", "--seconds", "10", "--concurrency", "16", "--runs", "3"],
    ["bench.bench_grants", "--seconds", "10", "--concurrency", "32", "--runs", "3"],
    ["bench.bench_audit"],
    ["bench.bench_pii", "--n", "3000"],
    ["bench.bench_interactions", "--n", "500"],
    ["bench.bench_pages", "--runs", "10"],
    ["bench.bench_web", "--requests", "200", "--runs", "3"],
]


def main() -> None:
    """Run each benchmark in its own process; stop at the first that fails."""
    for module, *args in RUNS:
        print(f"\n## {module} {' '.join(args)}\n", flush=True)
        subprocess.run([sys.executable, "-m", module, *args], check=True)


if __name__ == "__main__":
    main()
