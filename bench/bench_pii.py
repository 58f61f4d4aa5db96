"""PII detection benchmark (issue #6): precision, recall and F2 per entity type on a generated,
labelled corpus (bench/pii_corpus.py), and the latency of one scan of a ~200-character text with
the default engine (pattern recognizers on a blank tokenizer), on one core.

Run: .venv/bin/python -m bench.bench_pii [--n 3000] [--seed 6] [--hard]

A prediction counts as a true positive when its type equals a gold entity's and the spans overlap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from bench.common import machine
from bench.pii_corpus import SEED, Sample, generate
from vault.pii.engine import Detector, Entity, PlainPresidio
from vault.pii.model import STRUCTURED


def f_beta(p: float, r: float, beta: float = 2.0) -> float:
    """F-beta; beta 2 weighs recall four times as much as precision (a missed identifier costs more)."""
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--hard", action="store_true", help="identifiers without context, looser formats")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    corpus = generate(args.n, args.seed, hard=args.hard)
    print(f"# PII detection benchmark: {machine()}")
    kind = "hard (no context words, looser formats)" if args.hard else "usual"
    lengths = [len(s.text) for s in corpus]
    print(
        f"corpus: {len(corpus)} {kind} texts (seed {args.seed}), {statistics.mean(lengths):.0f} characters on average"
    )
    for label, build in (
        ("Citizen Vault default engine", Detector),
        ("plain Presidio, predefined patterns", PlainPresidio),
    ):
        started = time.perf_counter()
        detector = build()
        evaluate(label, detector, corpus, time.perf_counter() - started)
        pathological(detector)


# Texts at the scan cap (20,000 characters) built to make pattern recognizers backtrack: digits and
# separators everywhere. The suite checks they are answered; their time is measured here, never asserted.
PATHOLOGICAL = {
    "'1 ' x 10,000": "1 " * 10_000,
    "digits and separators": "".join("0123456789 .-/@+()"[(i * 7919) % 18] for i in range(20_000)),
}


def pathological(detector: Scanner, runs: int = 5) -> None:
    """Median seconds per scan of each pathological text (``runs`` runs each)."""
    print()
    print("| pathological text at the cap | median s per scan | runs |")
    print("|---|---:|---:|")
    for name, text in PATHOLOGICAL.items():
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            detector.scan(text)
            times.append(time.perf_counter() - started)
        print(f"| {name} | {statistics.median(times):.3f} | {runs} |")


class Scanner(Protocol):
    """Anything with the detector's scan method."""

    def scan(self, text: str, own: Sequence[tuple[str, str]] = ()) -> list[Entity]: ...


def evaluate(label: str, detector: Scanner, corpus: list[Sample], build: float) -> None:
    """Score one engine on the corpus and print its figures."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    latencies: list[float] = []
    confusions: Counter[tuple[str, str]] = Counter()
    for sample in corpus:
        t0 = time.perf_counter()
        found = detector.scan(sample.text)
        latencies.append(time.perf_counter() - t0)
        matched: set[int] = set()
        for e in found:
            hit = next(
                (
                    i
                    for i, (t, s, end) in enumerate(sample.gold)
                    if t == e.type and s < e.end and e.start < end and i not in matched
                ),
                None,
            )
            if hit is None:
                fp[e.type] += 1
                other = next((t for t, s, end in sample.gold if s < e.end and e.start < end), "none")
                confusions[(other, e.type)] += 1
            else:
                matched.add(hit)
                tp[e.type] += 1
        for i, (t, _, _) in enumerate(sample.gold):
            if i not in matched:
                fn[t] += 1
    ms = sorted(x * 1000 for x in latencies)
    print(f"\n## {label}")
    print(f"build (imports, patterns, warm-up): {build:.2f} s")
    print(
        f"scan latency per text, one core: p50 {ms[len(ms) // 2]:.2f} ms, "
        f"p99 {ms[int(len(ms) * 0.99)]:.2f} ms, mean {statistics.mean(ms):.2f} ms"
    )
    print()
    print("| entity | gold | TP | FP | FN | precision | recall | F2 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    types = sorted(set(tp) | set(fp) | set(fn))
    for t in types:
        p = tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else 0.0
        r = tp[t] / (tp[t] + fn[t]) if tp[t] + fn[t] else 0.0
        print(f"| {t} | {tp[t] + fn[t]} | {tp[t]} | {fp[t]} | {fn[t]} | {p:.3f} | {r:.3f} | {f_beta(p, r):.3f} |")
    s_tp = sum(tp[t] for t in STRUCTURED)
    s_fp = sum(fp[t] for t in STRUCTURED)
    s_fn = sum(fn[t] for t in STRUCTURED)
    p = s_tp / (s_tp + s_fp) if s_tp + s_fp else 0.0
    r = s_tp / (s_tp + s_fn) if s_tp + s_fn else 0.0
    print(
        f"| structured identifiers | {s_tp + s_fn} | {s_tp} | {s_fp} | {s_fn} | {p:.3f} | {r:.3f} | {f_beta(p, r):.3f} |"
    )
    if confusions:
        print()
        print("false positives by (gold type under the span, predicted type):")
        for (gold, predicted), n in confusions.most_common(12):
            print(f"  {gold} -> {predicted}: {n}")


if __name__ == "__main__":
    main()
