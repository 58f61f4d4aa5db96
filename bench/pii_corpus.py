"""A labelled corpus for PII detection (issue #6): health-note-like texts of about 200 characters,
generated from templates with Faker under a fixed seed, with valid national identifiers (correct
check digits) and their character spans. Some texts hold no PII but plenty of numbers (doses,
readings, room numbers), to count false positives.

Everything here is generated: no real person, number or account.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from faker import Faker

from vault.pii import checksums

SEED = 6


@dataclass
class Sample:
    """One text and its gold entities (type, start, end)."""

    text: str
    gold: list[tuple[str, int, int]] = field(default_factory=list)


class Generator:
    """Valid identifiers and the other entities, from one seeded random source."""

    def __init__(self, seed: int = SEED) -> None:
        self.rnd = random.Random(seed)
        Faker.seed(seed)
        self.fake = Faker(["en_US", "en_GB"])
        self.fake.seed_instance(seed)

    def digits(self, n: int) -> str:
        return "".join(self.rnd.choice("0123456789") for _ in range(n))

    def us_ssn(self) -> str:
        area = self.rnd.choice([n for n in range(1, 900) if n != 666])
        return f"{area:03d}-{self.rnd.randint(1, 99):02d}-{self.rnd.randint(1, 9999):04d}"

    def uk_nino(self) -> str:
        first = self.rnd.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = self.rnd.choice("ABCEGHJKLMNPRSTWXYZ")
        while first + second in {"BG", "GB", "NK", "KN", "NT", "TN", "ZZ"}:
            second = self.rnd.choice("ABCEGHJKLMNPRSTWXYZ")
        d = self.digits(6)
        sep = self.rnd.choice(["", " "])
        return sep.join([first + second, d[:2], d[2:4], d[4:]]) + sep + self.rnd.choice("ABCD")

    def uk_nhs(self) -> str:
        while True:
            nine = self.rnd.choice("467") + self.digits(8)  # issued ranges: 4xx, 6xx, 7xx (England, Wales)
            check = 11 - sum(int(c) * w for c, w in zip(nine, range(10, 1, -1), strict=True)) % 11
            check = 0 if check == 11 else check
            if check != 10:
                n = nine + str(check)
                return self.rnd.choice([f"{n[:3]} {n[3:6]} {n[6:]}", n])

    def sg_nric(self) -> str:
        prefix = self.rnd.choice("STFGM")
        seven = self.digits(7)
        return prefix + seven + checksums.sg_check_letter(prefix, seven)

    def my_nric(self) -> str:
        born = self.fake.date_of_birth(minimum_age=1, maximum_age=90)
        pb = self.rnd.choice([1, 5, 8, 10, 14, 21, 30, 45, 59, 60, 71, 82, 98])
        return f"{born:%y%m%d}-{pb:02d}-{self.digits(4)}"

    def in_aadhaar(self) -> str:
        eleven = self.rnd.choice("23456789") + self.digits(10)
        d = eleven + checksums.verhoeff_digit(eleven)
        return self.rnd.choice([f"{d[:4]} {d[4:8]} {d[8:]}", d])

    def ee_code(self) -> str:
        born = self.fake.date_of_birth(minimum_age=1, maximum_age=90)
        century = "3" if born.year < 2000 else "5"
        g = str(int(century) + self.rnd.randint(0, 1))
        ten = f"{g}{born:%y%m%d}{self.digits(3)}"
        return ten + checksums.ee_check_digit(ten)

    def iban(self) -> str:
        country, bban = self.rnd.choice(
            [("GB", "WEST" + self.digits(14)), ("DE", self.digits(18)), ("FR", self.digits(23))]
        )
        raw = country + checksums.iban_check_digits(country, bban) + bban
        return self.rnd.choice([raw, " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))])

    def credit_card(self) -> str:
        number: str = self.fake.credit_card_number(card_type=self.rnd.choice(["visa16", "mastercard", "amex"]))
        if len(number) == 16 and self.rnd.random() < 0.5:
            return " ".join(number[i : i + 4] for i in range(0, 16, 4))
        return number

    def phone(self) -> str:
        kind = self.rnd.randrange(4)
        if kind == 0:
            area = self.rnd.choice([212, 312, 415, 617, 202, 713])
            return f"({area}) {self.rnd.randint(201, 989)}-{self.digits(4)}"
        if kind == 1:
            return f"+1 {self.rnd.choice([212, 415, 646])} {self.rnd.randint(201, 989)} {self.digits(4)}"
        if kind == 2:
            return f"+44 20 7946 {self.digits(4)}"
        return f"07700 900{self.digits(3)}"

    def uk_nhs_dashed(self) -> str:
        n = "".join(c for c in self.uk_nhs() if c.isdigit())
        return f"{n[:3]}-{n[3:6]}-{n[6:]}"

    def my_nric_plain(self) -> str:
        return self.my_nric().replace("-", "")

    def iban_lower(self) -> str:
        return self.iban().lower()

    def credit_card_dashed(self) -> str:
        number: str = self.fake.credit_card_number(card_type="visa16")
        return "-".join(number[i : i + 4] for i in range(0, 16, 4))

    def phone_plain(self) -> str:
        return f"{self.rnd.choice([212, 415, 646])}{self.rnd.randint(201, 989)}{self.digits(4)}"

    def email(self) -> str:
        return str(self.fake.email())

    def dob(self) -> str:
        born = self.fake.date_of_birth(minimum_age=1, maximum_age=95)
        return born.strftime(self.rnd.choice(["%Y-%m-%d", "%d/%m/%Y", "%B %d, %Y", "%d %B %Y"]))

    def date(self) -> str:
        when = self.fake.date_between(start_date="-2y", end_date="today")
        return when.strftime(self.rnd.choice(["%Y-%m-%d", "%d/%m/%Y"]))


# Each template: text with {slots}; a slot's name picks the generator and the gold type.
SLOTS = {
    "ssn": ("US_SSN", "us_ssn"),
    "nino": ("UK_NINO", "uk_nino"),
    "nhs": ("UK_NHS", "uk_nhs"),
    "nric": ("SG_NRIC_FIN", "sg_nric"),
    "mykad": ("MY_NRIC", "my_nric"),
    "aadhaar": ("IN_AADHAAR", "in_aadhaar"),
    "ee": ("EE_PERSONAL_CODE", "ee_code"),
    "iban": ("IBAN_CODE", "iban"),
    "card": ("CREDIT_CARD", "credit_card"),
    "phone": ("PHONE_NUMBER", "phone"),
    "email": ("EMAIL_ADDRESS", "email"),
    "dob": ("DATE_OF_BIRTH", "dob"),
    "date": ("DATE_TIME", "date"),
    "nhs_dashed": ("UK_NHS", "uk_nhs_dashed"),
    "mykad_plain": ("MY_NRIC", "my_nric_plain"),
    "iban_lower": ("IBAN_CODE", "iban_lower"),
    "card_dashed": ("CREDIT_CARD", "credit_card_dashed"),
    "phone_plain": ("PHONE_NUMBER", "phone_plain"),
}
TEMPLATES = [
    "Patient seen in clinic. SSN {ssn} confirmed at the desk. Reports mild headaches for two weeks.",
    "Social security number {ssn} was given by the patient's daughter; follow up by phone {phone}.",
    "National insurance number {nino} noted for the benefit claim. Patient walks with a cane.",
    "NI {nino}; pension query. Contact email {email} preferred over post.",
    "NHS number {nhs}. Referred to physiotherapy after a fall on {date}.",
    "Transferred from St Elsewhere, NHS no. {nhs}, born {dob}. Allergic to penicillin.",
    "Visitor from Singapore, NRIC {nric}, treated for dehydration and released.",
    "FIN {nric} presented at registration; interpreter requested for the next visit.",
    "Malaysian visitor, MyKad {mykad}, seen for a sprained ankle on {date}.",
    "IC no {mykad} recorded by triage. Blood pressure 135/85, pulse 78.",
    "Aadhaar {aadhaar} provided for the insurance claim. Diabetes type 2, on metformin 500 mg.",
    "Patient from Pune, Aadhaar number {aadhaar}, phone {phone}.",
    "Estonian isikukood {ee} on the EHIC card. Fever of 38.4 C since Monday.",
    "Personal code {ee}; prescription renewed for 90 days.",
    "Refund the co-payment to IBAN {iban} once the claim is approved.",
    "Paid by card {card}; receipt emailed to {email}.",
    "Card number {card} charged for the missed appointment fee.",
    "Call the patient on {phone} with the lab results; mobile preferred.",
    "Next of kin can be reached at {phone} or {email}.",
    "Date of birth {dob}. Asthma, uses an inhaler twice daily.",
    "Patient born on {dob}, vaccinated on {date}; no adverse reaction.",
    "DOB {dob}; weight 72 kg, height 168 cm, BMI 25.5.",
]
# The same identifiers with no context word and in looser formats: what a hurried writer types.
HARD_TEMPLATES = [
    "Form received, ref {ssn}, filed under claims.",
    "Details {nino} checked against the register.",
    "Reference {nhs} on the referral letter.",
    "Reference {nhs_dashed} on the referral letter.",
    "Card shown: {nric}. Seen by the duty nurse.",
    "Number {mykad_plain} on the visitor form.",
    "ID {aadhaar} copied from the form.",
    "Code {ee} on the letter from Tallinn.",
    "Account {iban_lower} for the refund.",
    "Paid with {card_dashed} at reception.",
    "Reached on {phone_plain} after two tries.",
    "Was {dob} per the old file.",
]
NEGATIVES = [
    "Blood pressure 120/80, pulse 72, temperature 36.8 C. Dosage 500 mg twice daily for 10 days.",
    "Room 12B, bed 4. Glucose 5.6 mmol/L at 08:30, 7.1 mmol/L at 12:00. Review in 2 weeks.",
    "Follow-up in 3 to 4 weeks. Paracetamol 1 g up to 4 times a day, no more than 4 g in 24 hours.",
    "Lab ref 2024-117-889 pending. Hb 13.2 g/dL, WBC 6.1, platelets 250.",
    "Knee flexion improved from 90 to 115 degrees over 6 sessions. Continue exercises 3 x 15 reps.",
]
FILLER = [
    "No known drug allergies.",
    "Patient is cooperative and well oriented.",
    "Advised rest and plenty of fluids.",
    "Family history of hypertension.",
    "Sleeps poorly; discussed sleep hygiene.",
    "Non-smoker, drinks socially.",
]


def generate(n: int, seed: int = SEED, negative_share: float = 0.1, hard: bool = False) -> list[Sample]:
    """``n`` samples of about 200 characters, a share of them without PII; ``hard``: no context words,
    looser formats (HARD_TEMPLATES) instead of the usual ones."""
    templates = HARD_TEMPLATES if hard else TEMPLATES
    gen = Generator(seed)
    out: list[Sample] = []
    for i in range(n):
        if gen.rnd.random() < negative_share:
            out.append(Sample(_pad(gen, gen.rnd.choice(NEGATIVES))))
            continue
        template = templates[i % len(templates)]
        text, gold = "", []
        pos = 0
        for literal, slot in _parse(template):
            text += literal
            pos += len(literal)
            if slot:
                entity, method = SLOTS[slot]
                value = getattr(gen, method)()
                gold.append((entity, pos, pos + len(value)))
                text += value
                pos += len(value)
        out.append(Sample(_pad(gen, text), gold))
    return out


def _pad(gen: Generator, text: str) -> str:
    while len(text) < 180:
        text += " " + gen.rnd.choice(FILLER)
    return text


def _parse(template: str) -> list[tuple[str, str | None]]:
    parts: list[tuple[str, str | None]] = []
    rest = template
    while "{" in rest:
        literal, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        parts.append((literal, slot))
    parts.append((rest, None))
    return parts
