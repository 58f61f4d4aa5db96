"""Invented families for the representation tests: a parent, a minor child, an adult friend."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def years_ago(years: int, today: date | None = None) -> str:
    """The ISO date ``years`` years before ``today`` (default: today), as a date of birth."""
    day = today or datetime.now(UTC).date()
    try:
        return day.replace(year=day.year - years).isoformat()
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28).isoformat()


def parent_fields() -> dict[str, Any]:
    """An invented adult who will be recorded as a parent."""
    return {
        "given_name": "Perpetua",
        "family_name": "Quillfeather",
        "date_of_birth": years_ago(41),
        "national_id": "971-000-001",
    }


def child_fields(age: int = 10) -> dict[str, Any]:
    """An invented child ``age`` years old."""
    return {
        "given_name": "Tobias",
        "family_name": "Quillfeather",
        "date_of_birth": years_ago(age),
        "national_id": "971-000-002",
    }


def friend_fields() -> dict[str, Any]:
    """An invented adult who receives a mandate."""
    return {
        "given_name": "Mirabel",
        "family_name": "Nettlecombe",
        "date_of_birth": years_ago(52),
        "national_id": "971-000-003",
    }
