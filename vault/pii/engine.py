"""The one wrapper around Presidio: an offline analyzer with national-identifier recognizers.

This is the only module that imports ``presidio_analyzer`` (import-linter and a check script
enforce it). Everything else in the vault speaks :class:`Entity` and :class:`Detector`.

Offline by construction:

* no spaCy model is downloaded: the NLP engine is a blank English tokenizer (``spacy.blank("en")``)
  unless a model is configured (setting ``pii_spacy_model``) *and installed*; a configured model that
  is not installed is a configuration error, never a download;
* the email recognizer's domain check uses ``tldextract`` with the public-suffix snapshot shipped in
  the package (``suffix_list_urls=()``, no cache directory): no fetch, no disk write.

Start-up and scans make no network connection (tests/vault/test_pii_recognizers.py blocks sockets).
Building the analyzer takes a while (imports, regex compilation): :func:`shared_detector` builds one
per process, lazily, on first use.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import phonenumbers
import spacy
import tldextract
from presidio_analyzer import (
    AnalysisExplanation,
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer import pattern_recognizer as _pattern_recognizer
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    DateRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    InAadhaarRecognizer,
    NhsRecognizer,
    PhoneRecognizer,
    SgFinRecognizer,
    SpacyRecognizer,
    UkNinoRecognizer,
    UsSsnRecognizer,
)
from presidio_analyzer.recognizer_registry import RecognizerRegistry

from vault.errors import ConfigurationError
from vault.pii import checksums
from vault.pii.model import ENTITY_TYPES, Entity, redact, summarise
from vault.pii.prefilter import cannot_hold as _cannot_hold  # no recognizer could match: skip Presidio

__all__ = ["ENTITY_TYPES", "Detector", "Entity", "PlainPresidio", "redact", "shared_detector", "summarise"]

LANGUAGE = "en"
DEFAULT_THRESHOLD = 0.4
# Presidio runs each pattern with the `regex` module's timeout (default 60 s, read per call).
REGEX_TIMEOUT_SECONDS = 2
# Longest run of non-space characters handed to the analyzer. No identifier, email or phone number is
# longer; longer runs (pathological input: digits, dots or dashes by the thousand) are blanked out
# before the scan, which keeps every pattern's time linear in practice. Offsets are preserved.
MAX_TOKEN = 256
_LONG_RUN = re.compile(rf"\S{{{MAX_TOKEN + 1},}}")

# Words that, shortly before a match, say which of several same-shaped identifiers it is.
CONTEXT: dict[str, tuple[str, ...]] = {
    "UK_NHS": ("nhs", "national health"),
    "PHONE_NUMBER": ("phone", "tel", "telephone", "call", "mobile", "cell", "fax"),
    "IN_AADHAAR": ("aadhaar", "aadhar", "uidai", "uid"),
    "MY_NRIC": ("mykad", "ic no", "kad pengenalan", "malaysia"),
    "US_SSN": ("ssn", "social security"),
    "DATE_OF_BIRTH": ("born", "birth", "dob", "d.o.b", "birthday"),
}
_CONTEXT_WINDOW = 40
NHS_FIRST_DIGITS = "3467"  # Northern Ireland 320-399, England and Wales 400-499 and 600-799
# Context counts within the clause before a match ("no." and "nr." do not end one).
_CLAUSE = re.compile(r"[,;\n]|(?<!\bno)(?<!\bnr)\.\s")


# -- recognizers Presidio does not ship (or ships without the check) ---------------------------------
class MyKadRecognizer(PatternRecognizer):
    """Malaysian MyKad number YYMMDD-PB-###G: a real date and an issued place-of-birth code."""

    PATTERNS = (
        Pattern("MyKad (dashed)", r"(?<![0-9-])[0-9]{6}-[0-9]{2}-[0-9]{4}(?![0-9-])", 0.6),
        Pattern("MyKad (plain)", r"(?<![0-9])[0-9]{12}(?![0-9])", 0.3),
    )

    def __init__(self) -> None:
        super().__init__(
            supported_entity="MY_NRIC",
            patterns=list(self.PATTERNS),
            context=["mykad", "ic", "nric", "kad", "pengenalan"],
            supported_language=LANGUAGE,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Date of birth and place-of-birth code must be valid (MyKad has no check digit)."""
        return checksums.mykad_valid(pattern_text)


class EstonianPersonalCodeRecognizer(PatternRecognizer):
    """Estonian isikukood GYYMMDDSSSC with its two-stage mod-11 check digit."""

    def __init__(self) -> None:
        super().__init__(
            supported_entity="EE_PERSONAL_CODE",
            patterns=[Pattern("Isikukood", r"(?<![0-9])[1-6][0-9]{2}[01][0-9][0-3][0-9]{5}(?![0-9])", 0.4)],
            context=["isikukood", "personal code", "estonia", "estonian"],
            supported_language=LANGUAGE,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Date and check digit."""
        return checksums.ee_isikukood_valid(pattern_text)


class CheckedSgNricRecognizer(SgFinRecognizer):
    """Presidio's NRIC/FIN patterns, plus the check letter (Presidio ships the pattern only)."""

    def __init__(self) -> None:
        super().__init__(
            patterns=[Pattern("NRIC/FIN", r"(?i)\b[STFGM][0-9]{7}[A-Z]\b", 0.5)], supported_language=LANGUAGE
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Weighted sum of the digits (plus the series offset) mod 11 picks the check letter."""
        return checksums.sg_nric_valid(pattern_text)


class StrictNhsRecognizer(NhsRecognizer):
    """NHS numbers as the NHS writes them (3 3 4 with spaces, or 10 digits), with the mod-11 check.

    Presidio's pattern also takes 3-3-4 with dashes, which is how US phone numbers are written; one
    in eleven of those passes mod 11. Dashed forms are left to the phone recognizer, and a spaced or
    plain match that is also a phone number is resolved by context (see :func:`_resolve`).
    """

    def __init__(self) -> None:
        super().__init__(
            patterns=[Pattern("NHS", r"(?<![0-9(+\-])[0-9]{3} ?[0-9]{3} ?[0-9]{4}(?![0-9]|[\-.][0-9])", 0.5)],
            supported_language=LANGUAGE,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Mod 11 over ten digits (weights 10..2, check digit)."""
        return checksums.nhs_valid(pattern_text)


_TLD = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


class CaseInsensitiveIbanRecognizer(IbanRecognizer):
    """Presidio's IBAN recognizer (mod 97 and per-country format) also for IBANs written in lower case."""

    def __init__(self) -> None:
        super().__init__(supported_language=LANGUAGE, regex_flags=re.DOTALL | re.MULTILINE | re.IGNORECASE)

    def validate_result(self, pattern_text: str) -> bool | None:
        """Mod 97 and the country's format, on the upper-cased text."""
        result: bool | None = super().validate_result(pattern_text.upper())
        return result


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's email recognizer, with the public-suffix check on the snapshot shipped in tldextract."""

    def validate_result(self, pattern_text: str) -> bool:
        """The domain must end in a known public suffix."""
        return bool(_TLD(pattern_text).fqdn)


class OwnValuesRecognizer(EntityRecognizer):
    """The citizen's own profile values (names, address, ids, email, phone, date of birth) in a text.

    Built per scan from the decrypted values in memory and dropped after it; nothing is stored.
    Names match token by token (case-insensitive, whole words), identifiers and phone numbers match
    whatever separators the writer used.
    """

    def __init__(self, values: Iterable[tuple[str, str]]) -> None:
        self._patterns: list[tuple[str, re.Pattern[str], float]] = []
        for entity, value in values:
            for regex, score in _own_patterns(entity, value):
                self._patterns.append((entity, re.compile(regex, re.IGNORECASE), score))
        super().__init__(
            supported_entities=sorted({e for e, _, _ in self._patterns}) or ["PERSON"],
            name="own-profile",
            supported_language=LANGUAGE,
        )

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[Any]:
        """Every occurrence of every own value."""
        return [
            RecognizerResult(entity, m.start(), m.end(), score)
            for entity, pattern, score in self._patterns
            for m in pattern.finditer(text)
        ]


_SEP = r"[\s\-./()]?"
_MONTHS: tuple[str, ...] = ("January", "February", "March", "April", "May", "June", "July", "August")
_MONTHS += ("September", "October", "November", "December")


def _own_patterns(entity: str, value: str) -> list[tuple[str, float]]:
    value = value.strip()
    if not value:
        return []
    if entity in ("PERSON", "LOCATION"):
        out = []
        parts = [value, *re.split(r"[,\n;]+", value)] if entity == "LOCATION" else re.split(r"\s+", value)
        for part in dict.fromkeys(p.strip() for p in parts):
            if len(part) >= (2 if entity == "PERSON" else 6) and any(c.isalpha() for c in part):
                words = r"\s+".join(re.escape(w) for w in part.split())
                out.append((rf"(?<!\w){words}(?!\w)", 0.85))
        return out
    if entity == "DATE_OF_BIRTH" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        y, m, d = value.split("-")
        mi, di = int(m), int(d)
        forms = [value, f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{di} {_MONTHS[mi - 1]} {y}"]
        forms.append(f"{_MONTHS[mi - 1]} {di}, {y}")
        return [(rf"(?<!\w){re.escape(f)}(?!\w)", 0.9) for f in dict.fromkeys(forms)]
    if entity == "EMAIL_ADDRESS":
        return [(rf"(?<![\w.+-]){re.escape(value)}(?![\w-])", 1.0)]
    chars = [c for c in value if c.isalnum()]
    if len(chars) < 4:
        return []
    return [(r"(?<![0-9A-Za-z])" + _SEP.join(re.escape(c) for c in chars) + r"(?![0-9A-Za-z])", 1.0)]


# -- the NLP engine: spaCy without a download ---------------------------------------------------------
class OfflineSpacyNlpEngine(SpacyNlpEngine):
    """A blank English tokenizer, or an installed spaCy model; never downloads one."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__(
            models=[{"lang_code": LANGUAGE, "model_name": model or "blank:en"}],
            ner_model_configuration=NerModelConfiguration(),
        )
        self.model = model

    def load(self) -> None:
        """spacy.blank, or spacy.load of an installed package or a local path."""
        if self.model is None:
            pipeline = spacy.blank(LANGUAGE)
        elif spacy.util.is_package(self.model) or Path(self.model).exists():
            pipeline = spacy.load(self.model)
        else:
            raise ConfigurationError(
                f"spaCy model {self.model!r} is not installed (pii_spacy_model); it is never downloaded"
            )
        self.pipeline = pipeline
        self.nlp = {LANGUAGE: pipeline}  # type: ignore[assignment]  # Presidio annotates it as None

    @property
    def has_ner(self) -> bool:
        """Whether the loaded pipeline recognizes named entities."""
        return "ner" in self.pipeline.pipe_names

    def _doc_to_nlp_artifact(self, doc: Any, language: str) -> NlpArtifacts:
        artifacts = super()._doc_to_nlp_artifact(doc, language)
        if not any(artifacts.lemmas):  # a blank tokenizer has no lemmatizer: context words match lower-cased
            artifacts.lemmas = [t.lower_ for t in doc]
        # A set, not a list: the context enhancer tests membership once per token it walks.
        artifacts.keywords = frozenset(NlpArtifacts.set_keywords(self, artifacts.lemmas, language))  # type: ignore[assignment]
        return artifacts


class BoundedContextEnhancer(LemmaContextAwareEnhancer):
    """Presidio's context enhancer with linear cost: the stock one finds a match's token by a scan
    from the first token and walks the whole text looking for context words, per match, which is
    quadratic (a 20,000-character run of digits and punctuation took 24 s). Here the token is found
    by bisection and the walk stops after a few tokens."""

    MAX_WALK = 12

    @staticmethod
    def _find_index_of_match_token(word: str, start: int, tokens: Any, tokens_indices: list[int]) -> int:
        i = bisect.bisect_right(tokens_indices, start) - 1
        return max(i, 0)

    @staticmethod
    def _add_n_words(
        index: int, n_words: int, lemmas: list[str], lemmatized_filtered_keywords: Any, is_backward: bool
    ) -> list[str]:
        words: list[str] = []
        step = -1 if is_backward else 1
        i, remaining, walked = index, n_words + 1, 0
        while 0 <= i < len(lemmas) and remaining > 0 and walked < BoundedContextEnhancer.MAX_WALK:
            lemma = lemmas[i].lower()
            if lemma in lemmatized_filtered_keywords:
                words.append(lemma)
                remaining -= 1
            i += step
            walked += 1
        return words


# A phone number candidate: an optional + or (, digits with the usual separators, 7 to 15 digits.
_PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?:\+|\()?[0-9][0-9 ().\-]{5,22}[0-9](?!\w)")


class FastPhoneRecognizer(PhoneRecognizer):
    """Phone numbers valid (python-phonenumbers) in one of the supported regions, found fast.

    Presidio's recognizer runs phonenumbers' matcher over the whole text once per region (about
    0.7 ms per region for 200 characters). Here a cheap regex finds candidate digit runs and each is
    parsed once per region until one region finds it valid (international ``+`` numbers once).
    """

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[Any]:
        """Phone numbers valid in one of the supported regions (or internationally written)."""
        results: list[Any] = []
        for m in _PHONE_CANDIDATE.finditer(text):
            candidate = m.group()
            if not 7 <= sum(c.isdigit() for c in candidate) <= 15:
                continue
            regions = [None] if candidate.startswith("+") else self.supported_regions
            if any(_valid_phone(candidate, region) for region in regions):
                results.append(
                    RecognizerResult(
                        self.supported_entities[0],
                        m.start(),
                        m.end(),
                        self.SCORE,
                        analysis_explanation=AnalysisExplanation(type(self).__name__, self.SCORE),
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: getattr(self, "name", ""),
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        },
                    )
                )
        return results


def _valid_phone(candidate: str, region: str | None) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)))
    except phonenumbers.NumberParseException:
        return False


_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])(?:st|nd|rd|th)?"
# Presidio's date patterns are numeric only; dates of birth are often written with the month's name.
DATE_PATTERNS = [
    *DateRecognizer.PATTERNS,
    Pattern("Month d, yyyy", rf"\b{_MONTH}\.? {_DAY},? [12][0-9]{{3}}\b", 0.6),
    Pattern("d Month yyyy", rf"\b{_DAY} (?:of )?{_MONTH}\.?,? [12][0-9]{{3}}\b", 0.6),
]
# Presidio's card pattern misses Mastercard's 2-series (2221-2720); the Luhn check still decides.
CARD_PATTERNS = [
    Pattern(
        "All credit cards (weak)",
        r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(2[2-7]\d{2})|(6\d{3})|(1\d{3})|(3\d{3}))"
        r"[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b",
        0.3,
    )
]


def _recognizers() -> list[Any]:
    return [
        UsSsnRecognizer(supported_language=LANGUAGE),
        UkNinoRecognizer(supported_language=LANGUAGE),
        StrictNhsRecognizer(),
        CheckedSgNricRecognizer(),
        MyKadRecognizer(),
        InAadhaarRecognizer(supported_language=LANGUAGE),
        EstonianPersonalCodeRecognizer(),
        CaseInsensitiveIbanRecognizer(),
        CreditCardRecognizer(patterns=CARD_PATTERNS, supported_language=LANGUAGE),
        FastPhoneRecognizer(supported_language=LANGUAGE, supported_regions=("US", "GB", "SG", "MY", "IN", "EE")),
        OfflineEmailRecognizer(supported_language=LANGUAGE),
        DateRecognizer(patterns=DATE_PATTERNS, supported_language=LANGUAGE),
    ]


class Detector:
    """A built analyzer. Thread-safe for scans; build one per process (see :func:`shared_detector`)."""

    def __init__(self, spacy_model: str | None = None, threshold: float = DEFAULT_THRESHOLD) -> None:
        _pattern_recognizer.REGEX_TIMEOUT_SECONDS = REGEX_TIMEOUT_SECONDS
        # Some Presidio messages quote the matched text (the IBAN recognizer logs it at ERROR level):
        # scanned text must never reach a log, so Presidio's logger is kept silent.
        logging.getLogger("presidio-analyzer").setLevel(logging.CRITICAL + 1)
        self.threshold = threshold
        nlp = OfflineSpacyNlpEngine(spacy_model)
        nlp.load()
        self.uses_ner = nlp.has_ner
        registry = RecognizerRegistry(recognizers=_recognizers(), supported_languages=[LANGUAGE])
        if self.uses_ner:
            registry.add_recognizer(SpacyRecognizer(supported_language=LANGUAGE))
        self._analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=nlp,
            supported_languages=[LANGUAGE],
            default_score_threshold=threshold,
            context_aware_enhancer=BoundedContextEnhancer(),
        )
        self.scan(_WARM_UP)  # loads the suffix list and compiles every pattern now, not in the first request

    def scan(self, text: str, own: Sequence[tuple[str, str]] = ()) -> list[Entity]:
        """Entities in ``text``, by start offset; ``own`` are (entity type, value) pairs of the citizen's profile."""
        if not text.strip():
            return []
        if not self.uses_ner and _cannot_hold(text, own):
            return []  # nothing a pattern or the citizen's own values could match: skip Presidio
        safe = _LONG_RUN.sub(lambda m: " " * len(m.group()), text)
        ad_hoc: list[EntityRecognizer] | None = [OwnValuesRecognizer(own)] if own else None
        results = self._analyzer.analyze(text=safe, language=LANGUAGE, ad_hoc_recognizers=ad_hoc)
        found = [Entity(r.entity_type, r.start, r.end, round(float(r.score), 2)) for r in results]
        return _resolve(safe, [e for e in found if e.score >= self.threshold])


def _context_before(text: str, start: int, entity: str) -> bool:
    window = _CLAUSE.split(text[max(0, start - _CONTEXT_WINDOW) : start].lower())[-1]
    return any(word in window for word in CONTEXT.get(entity, ()))


def _resolve(text: str, found: list[Entity]) -> list[Entity]:
    """Settle same-span confusions between recognizers and name dates of birth.

    * Overlapping detections of different types: the one with its context word shortly before wins.
      Without context, an NHS number (mod 11 passed) and a phone number on the same digits: the
      NHS number wins only when the phone number has no formatting of its own (no +, parentheses,
      dashes or dots: NHS numbers are written 3 3 4 or plain) and the digits start in an issued
      NHS range (3, 4, 6, 7); otherwise the phone number wins (a US number can pass mod 11). And
      otherwise the higher score wins (a checksum-validated identifier or a date beats a phone
      number, which python-phonenumbers accepts for almost any digit run); at equal scores a span
      inside a longer one loses (twelve digits of a card or an IBAN that pass Verhoeff are not an
      Aadhaar number), and otherwise both stay.
    * A date with birth context before it is a DATE_OF_BIRTH.
    * Exact duplicates (same type and span) keep the best score.
    """
    out: list[Entity] = []
    for e in sorted(found, key=lambda e: (e.start, -e.end)):
        dob = e.type == "DATE_TIME" and _context_before(text, e.start, "DATE_OF_BIRTH")
        out.append(Entity("DATE_OF_BIRTH", e.start, e.end, e.score) if dob else e)
    drop: set[int] = set()
    for i, a in enumerate(out):
        for j in range(i + 1, len(out)):
            b = out[j]
            if b.start >= a.end:
                break
            if a.type == b.type:
                if (a.start, a.end) == (b.start, b.end):
                    drop.add(j if a.score >= b.score else i)
                continue
            ca, cb = _context_before(text, a.start, a.type), _context_before(text, b.start, b.type)
            if ca != cb:
                drop.add(j if ca else i)
            elif {a.type, b.type} == {"UK_NHS", "PHONE_NUMBER"}:
                nhs = a if a.type == "UK_NHS" else b
                nhs_wins = (a.start, a.end) == (b.start, b.end) and text[nhs.start] in NHS_FIRST_DIGITS
                drop.add((j if nhs is a else i) if nhs_wins else (i if nhs is a else j))
            elif a.score != b.score:
                drop.add(j if a.score > b.score else i)
            elif a.end - a.start != b.end - b.start and (a.end >= b.end or b.start <= a.start):
                drop.add(j if a.end - a.start > b.end - b.start else i)  # a number inside a longer one
    return [e for k, e in enumerate(out) if k not in drop]


_WARM_UP = "Born 1980-03-14, NHS 943 476 5919, call +44 20 7946 0958, mail a@example.org, IBAN GB82WEST12345698765432"
_shared: dict[str | None, Detector] = {}
_lock = threading.Lock()


class PlainPresidio:
    """Presidio's own predefined English recognizers, pattern-only (no NER), on the same offline
    tokenizer: the baseline the evaluation harness measures in the same run. Not used by the product.
    Only the email recognizer is swapped for the offline one (the default would fetch the suffix list).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        logging.getLogger("presidio-analyzer").setLevel(logging.CRITICAL + 1)
        nlp = OfflineSpacyNlpEngine(None)
        nlp.load()
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=nlp)
        for name in ("SpacyRecognizer", "EmailRecognizer"):
            registry.remove_recognizer(name)
        registry.add_recognizer(OfflineEmailRecognizer())
        self._analyzer = AnalyzerEngine(
            registry=registry, nlp_engine=nlp, supported_languages=[LANGUAGE], default_score_threshold=threshold
        )

    def scan(self, text: str, own: Sequence[tuple[str, str]] = ()) -> list[Entity]:
        """Entities as plain Presidio reports them (``own`` is ignored: it knows no citizen)."""
        results = self._analyzer.analyze(text=text, language=LANGUAGE)
        return [Entity(r.entity_type, r.start, r.end, round(float(r.score), 2)) for r in results]


def shared_detector(spacy_model: str | None = None) -> Detector:
    """The process-wide detector for this model setting, built on first use (never at import)."""
    with _lock:
        detector = _shared.get(spacy_model)
        if detector is None:
            detector = _shared[spacy_model] = Detector(spacy_model)
        return detector
