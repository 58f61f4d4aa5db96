"""PII recognizers (issue #6): each national identifier found when valid and not when its checksum
fails, known confusions settled, the citizen's own values found without NER, no network at start-up
or scan, bounded time on pathological input. Every identifier here is generated or a published
specimen; every person is invented.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vault.errors import ConfigurationError
from vault.pii import checksums
from vault.pii.engine import Detector, shared_detector
from vault.pii.model import Entity, redact, summarise


@pytest.fixture(scope="module")
def detector() -> Detector:
    """Built once for the module (it takes about a second)."""
    return shared_detector()


def found(detector: Detector, text: str) -> list[tuple[str, str]]:
    return [(e.type, text[e.start : e.end]) for e in detector.scan(text)]


def _aadhaar(eleven: str) -> str:
    d = eleven + checksums.verhoeff_digit(eleven)
    return f"{d[:4]} {d[4:8]} {d[8:]}"


def _iban_de(bban: str) -> str:
    return "DE" + checksums.iban_check_digits("DE", bban) + bban


def _flip_last_digit(text: str) -> str:
    i = max(i for i, c in enumerate(text) if c.isdigit())
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :]


VALID = [
    ("US_SSN", "SSN 536-90-4399 on file", "536-90-4399"),
    ("UK_NINO", "NI number AB123456C given", "AB123456C"),
    ("UK_NHS", "NHS number 943 476 5919 noted", "943 476 5919"),
    ("SG_NRIC_FIN", "NRIC S1234567D shown", "S1234567D"),
    ("SG_NRIC_FIN", "FIN G1234567X shown", "G1234567X"),
    ("MY_NRIC", "MyKad 900101-14-5678 seen", "900101-14-5678"),
    ("IN_AADHAAR", f"Aadhaar {_aadhaar('23456789012')} seen", _aadhaar("23456789012")),
    ("EE_PERSONAL_CODE", "isikukood 37605030299 seen", "37605030299"),
    ("IBAN_CODE", "pay to GB82 WEST 1234 5698 7654 32 today", "GB82 WEST 1234 5698 7654 32"),
    ("IBAN_CODE", f"pay to {_iban_de('370400440532013000')} today", _iban_de("370400440532013000")),
    ("IBAN_CODE", "pay to gb82 west 1234 5698 7654 32 today", "gb82 west 1234 5698 7654 32"),
    ("DATE_OF_BIRTH", "date of birth: March 14, 1977; seen", "March 14, 1977"),
    ("DATE_OF_BIRTH", "DOB 14th March 1977", "14th March 1977"),
    ("CREDIT_CARD", "card 2223 0000 4841 0010 used", "2223 0000 4841 0010"),
    ("CREDIT_CARD", "card 4111 1111 1111 1111 used", "4111 1111 1111 1111"),
    ("PHONE_NUMBER", "call +44 20 7946 0958 later", "+44 20 7946 0958"),
    ("EMAIL_ADDRESS", "write to zebulon.quibble@example.co.uk soon", "zebulon.quibble@example.co.uk"),
    ("DATE_OF_BIRTH", "she was born on 1961-07-23 in a town", "1961-07-23"),
]


@pytest.mark.parametrize(("entity", "text", "value"), VALID, ids=[f"{v[0]}-{i}" for i, v in enumerate(VALID)])
def test_each_identifier_is_found_when_valid(detector: Detector, entity: str, text: str, value: str) -> None:
    assert (entity, value) in found(detector, text)


CHECKSUM_FAILS = [
    ("UK_NHS", "NHS number 943 476 5918 noted"),
    ("SG_NRIC_FIN", "NRIC S1234567A shown"),
    ("MY_NRIC", "MyKad 901301-14-5678 seen"),  # month 13
    ("MY_NRIC", "MyKad 900101-00-5678 seen"),  # place-of-birth code 00 is not issued
    ("IN_AADHAAR", f"Aadhaar {_flip_last_digit(_aadhaar('23456789012'))} seen"),
    ("EE_PERSONAL_CODE", "isikukood 37605030298 seen"),
    ("IBAN_CODE", "pay to GB82 WEST 1234 5698 7654 33 today"),
    ("CREDIT_CARD", "card 4111 1111 1111 1112 used"),
    ("US_SSN", "SSN 000-12-3456 on file"),  # area 000 is never issued
    ("EMAIL_ADDRESS", "write to someone@example.notatld soon"),
]


@pytest.mark.parametrize(("entity", "text"), CHECKSUM_FAILS, ids=[f"{v[0]}-{i}" for i, v in enumerate(CHECKSUM_FAILS)])
def test_a_failing_checksum_or_rule_is_not_that_identifier(detector: Detector, entity: str, text: str) -> None:
    assert entity not in {t for t, _ in found(detector, text)}


def _us_numbers_passing_mod_11(area: int) -> list[str]:
    numbers = [f"{area}555{n:04d}" for n in range(100, 200)]
    return [n for n in numbers if checksums.nhs_valid(n)][:3]


def test_a_us_phone_number_is_not_an_nhs_number(detector: Detector) -> None:
    # One US number in eleven passes the NHS mod-11 check: the confusion is real.
    for area in (212, 415, 646):
        numbers = _us_numbers_passing_mod_11(area)
        assert numbers
        for n in numbers:
            a, b, c = n[:3], n[3:6], n[6:]
            # Formatted as a phone (dashes, parentheses, dots, +1), or any form after a phone word.
            for text in (
                f"Seen; {a}-{b}-{c} on file",
                f"Seen; ({a}) {b}-{c} on file",
                f"Seen; {a}.{b}.{c} on file",
                f"Seen; +1 {a} {b} {c} on file",
                f"Please call me at {a} {b} {c} tomorrow",
                f"Mobile {n} tomorrow",
            ):
                types = {t for t, _ in found(detector, text)}
                assert "UK_NHS" not in types and "PHONE_NUMBER" in types, text
    # Written as the NHS writes (3 3 4, no formatting of a phone, no phone word) the digits are an NHS
    # number only in the issued NHS ranges (first digit 3, 4, 6, 7): 212 ... stays a phone number.
    n = _us_numbers_passing_mod_11(212)[0]
    assert found(detector, f"Ref {n[:3]} {n[3:6]} {n[6:]} noted") == [("PHONE_NUMBER", f"{n[:3]} {n[3:6]} {n[6:]}")]
    n = _us_numbers_passing_mod_11(415)[0]
    assert found(detector, f"Ref {n[:3]} {n[3:6]} {n[6:]} noted") == [("UK_NHS", f"{n[:3]} {n[3:6]} {n[6:]}")]
    # With NHS context it is an NHS number whatever the range.
    n = _us_numbers_passing_mod_11(212)[0]
    assert ("UK_NHS", f"{n[:3]} {n[3:6]} {n[6:]}") in found(detector, f"NHS no. {n[:3]} {n[3:6]} {n[6:]}")


def test_a_date_with_birth_context_is_a_date_of_birth_and_others_are_dates(detector: Detector) -> None:
    text = "Born on 1961-07-23, admitted 2024-01-02 for observation"
    assert found(detector, text) == [("DATE_OF_BIRTH", "1961-07-23"), ("DATE_TIME", "2024-01-02")]


def test_the_citizens_own_values_are_found_without_an_ner_model(detector: Detector) -> None:
    assert not detector.uses_ner
    own = [
        ("PERSON", "Odile"),
        ("PERSON", "Quibblethorpe"),
        ("LOCATION", "3 Marmalade Row, Nowhereville"),
        ("NATIONAL_ID", "961-000-001"),
        ("DATE_OF_BIRTH", "1977-03-14"),
    ]
    text = "odile QUIBBLETHORPE (id 961 000 001, dob 14/03/1977) moved to 3 Marmalade Row; Odilek is not her."
    hits = [(e.type, text[e.start : e.end]) for e in detector.scan(text, own)]
    assert ("PERSON", "odile") in hits and ("PERSON", "QUIBBLETHORPE") in hits
    assert ("NATIONAL_ID", "961 000 001") in hits
    assert ("DATE_OF_BIRTH", "14/03/1977") in hits
    assert ("LOCATION", "3 Marmalade Row") in hits
    assert ("PERSON", "Odilek") not in hits and all(v != "Odile" for _, v in hits)
    # Without the profile the same text yields no names: the pattern engine has no NER.
    assert {"PERSON", "LOCATION", "NATIONAL_ID"}.isdisjoint(t for t, _ in found(detector, text))


def test_redaction_and_summaries_carry_no_values(detector: Detector) -> None:
    text = "SSN 536-90-4399, card 4111 1111 1111 1111, mail zebulon.quibble@example.org"
    entities = detector.scan(text)
    assert redact(text, entities) == "SSN [US_SSN], card [CREDIT_CARD], mail [EMAIL_ADDRESS]"
    summary = summarise(entities)
    assert set(summary) == {"US_SSN", "CREDIT_CARD", "EMAIL_ADDRESS"}
    assert all(set(s) == {"count", "max_score"} for s in summary.values())
    assert "4399" not in repr(summary) and "zebulon" not in repr(summary)
    assert redact("abcdef", [Entity("A", 1, 4, 1.0), Entity("B", 2, 5, 1.0)]) == "a[A]f"


def test_scanned_text_never_reaches_a_log(detector: Detector, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "GB82 WEST 1234 5698 7654 32 and zz99 ÿÿÿÿ 1234 SSN 536-90-4399"
    detector.scan(secret)
    detector.scan(secret, [("PERSON", "Zebulon")])
    assert "5698" not in caplog.text and "4399" not in caplog.text


def test_other_scripts_and_empty_text(detector: Detector) -> None:
    assert detector.scan("") == [] and detector.scan("   \n\t") == []
    assert found(detector, "患者の電話番号は +44 20 7946 0958 です") == [("PHONE_NUMBER", "+44 20 7946 0958")]
    assert found(detector, "رقم الهاتف ‎+44 20 7946 0958") == [("PHONE_NUMBER", "+44 20 7946 0958")]


@pytest.mark.parametrize(
    "text",
    [
        "1 " * 10_000,
        "123 456 " * 2_500,
        "1" * 20_000,
        "." * 20_000,
        "1-" * 10_000,
        "a.a.a.a@" * 2_500,
        "S1234567D 943 476 5919 " * 800,
        "".join("0123456789 .-/@+()"[(i * 7919) % 18] for i in range(20_000)),
    ],
    ids=["digits-spaced", "groups", "digits", "dots", "dashes", "email-ish", "identifiers", "mixed"],
)
def test_pathological_input_takes_bounded_time(detector: Detector, text: str) -> None:
    started = time.perf_counter()
    detector.scan(text)
    assert time.perf_counter() - started < 5.0  # measured 0.02-0.4 s; the stock Presidio took 24 s on "mixed"


def test_start_up_and_a_scan_make_no_network_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    fresh = Detector()  # not the shared one: a whole start-up, suffix list and all
    text = "Mail zebulon.quibble@example.co.uk or call +44 20 7946 0958; NHS 943 476 5919"
    assert [t for t, _ in found(fresh, text)] == ["EMAIL_ADDRESS", "PHONE_NUMBER", "UK_NHS"]
    assert attempts == []


def test_a_configured_spacy_model_adds_ner_and_a_missing_one_is_refused_never_downloaded(
    detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default path always runs: no model, no NER, patterns only.
    assert not detector.uses_ner
    # A configured model that is not installed is a configuration error (and nothing is fetched).
    monkeypatch.setattr(socket, "create_connection", _no_network)
    with pytest.raises(ConfigurationError, match="never downloaded"):
        Detector("xx_no_such_model_pkg")
    # When a model happens to be installed, its NER is used too (the product never requires one).
    if importlib.util.find_spec("en_core_web_sm") is not None:
        ner = Detector("en_core_web_sm")
        assert ner.uses_ner
        assert "PERSON" in {e.type for e in ner.scan("Yesterday Barack Obama visited Paris.")}


def _no_network(*args: Any, **kwargs: Any) -> Iterator[None]:
    raise OSError("network is blocked in this test")


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (checksums.luhn_valid, "4111111111111111", "4111111111111112"),
        (checksums.iban_valid, "GB82WEST12345698765432", "GB82WEST12345698765433"),
        (checksums.aadhaar_valid, "234567890124", "234567890125"),
        (checksums.nhs_valid, "9434765919", "9434765918"),
        (checksums.sg_nric_valid, "S1234567D", "S1234567E"),
        (checksums.ee_isikukood_valid, "37605030299", "37605030290"),
        (checksums.mykad_valid, "900101145678", "900230145678"),
    ],
    ids=["luhn", "iban", "verhoeff", "nhs", "nric", "isikukood", "mykad"],
)
def test_checksum_functions(check: Any, good: str, bad: str) -> None:
    assert check(good) and not check(bad)
