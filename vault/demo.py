"""Fictitious citizens for the demo, tests and benchmarks. Every value is invented.

Names are made up, emails use the reserved example.org domain, phone numbers the unassigned
+999 country code, and national ids the fictitious nine-digit scheme of the field catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GIVEN = ["Ailsa", "Borek", "Casimir", "Delphine", "Eero", "Fenna", "Gudrun", "Hiro", "Ilse", "Joost", "Kalinda"]
FAMILY = ["Quillfeather", "Marrowby", "Vantablack", "Oddsock", "Plumtree", "Zephyrine", "Tumbleweed", "Brackenbury"]
STREETS = ["Imaginary Lane", "Nowhere Road", "Fable Street", "Mirage Avenue", "Placeholder Square"]
NOTES = [
    "Routine check-up; no findings.",
    "Allergy to fictional pollen noted.",
    "Follow-up in six months.",
]


def profile(i: int) -> dict[str, Any]:
    """Fictitious profile number ``i`` with all nine catalogue fields; national ids unique per i."""
    given = GIVEN[i % len(GIVEN)]
    family = FAMILY[(i // len(GIVEN)) % len(FAMILY)]
    return {
        "given_name": given,
        "family_name": family,
        "date_of_birth": f"{1940 + i % 70}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "national_id": f"{900 + i // 1_000_000 % 100:03d}-{i // 1000 % 1000:03d}-{i % 1000:03d}",
        "email": f"{given.lower()}.{family.lower()}.{i}@example.org",
        "phone": f"+999 555 {i % 10000:04d}",
        "address": f"{1 + i % 300} {STREETS[i % len(STREETS)]}, Nowhereville",
        "income": (i * 7919) % 200_000,
        "health_notes": NOTES[i % len(NOTES)],
    }


def profiles(n: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` fictitious profiles."""
    for i in range(start, start + n):
        yield profile(i)


def write_jsonl(path: Path, n: int, start: int = 0) -> Path:
    """Write ``n`` fictitious profiles as JSON Lines."""
    with path.open("w", encoding="utf-8") as fh:
        for p in profiles(n, start):
            fh.write(json.dumps(p) + "\n")
    return path
