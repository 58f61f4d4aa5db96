"""Intake screening without loading Presidio when no text needs it (bulk imports), with exactly the
results of a full scan. Every person and identifier here is invented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vault.catalogue import Catalogue
from vault.errors import ValidationFailed
from vault.pii.engine import shared_detector
from vault.pii.intake import Intake, own_values
from vault.settings import Settings

PERSON = {
    "given_name": "Zebulon",
    "family_name": "Quibblewick",
    "national_id": "961-000-777",
    "email": "zebulon@example.org",
    "date_of_birth": "1969-04-01",
    "address": "7 Treacle Mews, Nowhereville",
}
NOTES = [
    "",
    "   ",
    "Routine check-up; no findings.",
    "Mr QUIBBLEWICK was seen on Tuesday.",
    "Lives on Treacle Mews.",
    "Call +44 20 7946 0958 after six.",
    "SSN 536-90-4399 written on the form",
    "mail zebulon@example.org",
    "His id is 961 000 777.",
    "Born 1969-04-01, allergy to fictional pollen.",
]


def test_the_pre_filter_gives_exactly_the_full_scans_results() -> None:
    catalogue = Catalogue.load(Settings().catalogue_path)
    filtered = Intake(catalogue)
    full = Intake(catalogue, detector=shared_detector)  # an injected detector: every text is scanned
    for note in NOTES:
        values = {**PERSON, "health_notes": note}
        outcomes: list[object] = []
        for intake in (filtered, full):
            try:
                outcomes.append(intake.screen(values, own_values(values)))
            except ValidationFailed as exc:  # a refusal must be the same refusal
                outcomes.append(exc.problems)
        assert outcomes[0] == outcomes[1], note


_CHILD = """
import sys
from pathlib import Path
from vault import demo
from vault.importer import Importer
from vault.runtime import init_vault
from vault.settings import Settings

root = Path(sys.argv[1])
vault = init_vault(Settings(data_dir=root / "data", keyring_scrypt_n=2**10))
result = Importer(vault.profiles, workers=0).run(demo.write_jsonl(root / "in.jsonl", 30), "civil-registry")
assert (result.accepted, result.rejected) == (30, 0)
print("after import:", "presidio_analyzer" in sys.modules)
vault.profiles.create({**demo.profile(99), "health_notes": "Seen on 12 May."}, "civil-registry")
print("after a note with a digit:", "presidio_analyzer" in sys.modules)
vault.close()
"""


def test_an_import_of_notes_that_cannot_hold_pii_does_not_load_presidio(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path)], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    assert out.splitlines() == ["after import: False", "after a note with a digit: True"]
