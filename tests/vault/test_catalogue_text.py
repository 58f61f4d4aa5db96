"""Text the vault cannot store is refused by the field catalogue itself, whichever door it came
through (HTTP, import, command line): a lone surrogate has no UTF-8 form, and a name that is not a
field name is never repeated in a problem (issue 19, findings 2 and 13)."""

from __future__ import annotations

import pytest

from vault.catalogue import Catalogue
from vault.errors import ValidationFailed
from vault.settings import Settings

CATALOGUE = Catalogue.load(Settings().catalogue_path)
TEXT_FIELDS = [s.name for s in CATALOGUE.fields.values() if s.type != "integer"]


@pytest.mark.parametrize("name", TEXT_FIELDS)
@pytest.mark.parametrize("value", ["\ud800", "Od\udfffile", "a\ud83d"])
def test_a_lone_surrogate_is_refused_in_every_text_field(name: str, value: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        CATALOGUE.validate({name: value}, creating=False)
    assert refused.value.problems == {name: "not valid Unicode (a lone surrogate)"}


def test_a_surrogate_pair_written_as_one_character_is_accepted() -> None:
    clean = CATALOGUE.validate({"health_notes": "Allergic to invented pollen \U0001f33c"}, creating=False)
    assert clean["health_notes"] == "Allergic to invented pollen \U0001f33c"


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "shoe size", "Given_Name", "x" * 65, "\ud800"])
def test_an_unknown_name_that_is_not_field_shaped_is_not_repeated(name: str) -> None:
    for attempt in (
        lambda: CATALOGUE.validate({name: "x"}, creating=False),
        lambda: CATALOGUE.spec(name),
        lambda: CATALOGUE.check_names([name]),
    ):
        with pytest.raises(ValidationFailed) as refused:
            attempt()
        assert refused.value.problems == {"?": "unknown field"}


def test_an_unknown_field_shaped_name_is_named() -> None:
    with pytest.raises(ValidationFailed) as refused:
        CATALOGUE.validate({"shoe_size": "42"}, creating=False)
    assert refused.value.problems == {"shoe_size": "unknown field"}
