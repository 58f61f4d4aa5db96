"""Check digits and validity rules of national identifiers, as pure functions (no Presidio here).

The recognizers in :mod:`vault.pii.engine` call these from ``validate_result``; the benchmark corpus
uses the ``make_*`` helpers to generate valid identifiers. Each function takes the matched text
(separators allowed) and returns whether the identifier is well-formed *and* its checksum holds.
"""

from __future__ import annotations

import datetime as dt

# -- Verhoeff (Indian Aadhaar) -------------------------------------------------------------------
_VD = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VP = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_VINV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def digits(text: str) -> str:
    """The ASCII digits of ``text``, in order."""
    return "".join(c for c in text if "0" <= c <= "9")


def verhoeff_valid(number: str) -> bool:
    """True when the digit string carries a correct Verhoeff check digit (last digit)."""
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _VD[c][_VP[i % 8][int(ch)]]
    return c == 0


def verhoeff_digit(number: str) -> str:
    """The Verhoeff check digit to append to ``number``."""
    c = 0
    for i, ch in enumerate(reversed(number)):
        c = _VD[c][_VP[(i + 1) % 8][int(ch)]]
    return str(_VINV[c])


def aadhaar_valid(text: str) -> bool:
    """Indian Aadhaar: 12 digits, first digit 2-9, Verhoeff check digit."""
    d = digits(text)
    return len(d) == 12 and d[0] not in "01" and verhoeff_valid(d)


# -- Luhn (payment cards) -------------------------------------------------------------------------
def luhn_valid(text: str) -> bool:
    """Payment card numbers: the Luhn mod-10 check."""
    d = digits(text)
    if not 12 <= len(d) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def luhn_digit(number: str) -> str:
    """The Luhn check digit to append to ``number``."""
    for check in "0123456789":
        if luhn_valid(number + check):
            return check
    raise AssertionError("unreachable")


# -- UK NHS number (mod 11) ----------------------------------------------------------------------
def nhs_valid(text: str) -> bool:
    """UK NHS number: 10 digits; weights 10..2 over the first nine, check = 11 - sum mod 11 (11 -> 0, 10 invalid)."""
    d = digits(text)
    if len(d) != 10 or len(set(d)) == 1:
        return False
    check = 11 - sum(int(c) * w for c, w in zip(d[:9], range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(d[9])


# -- Singapore NRIC / FIN (check letter) ---------------------------------------------------------
_SG_WEIGHTS = (2, 7, 6, 5, 4, 3, 2)
_SG_LETTERS = {"S": "JZIHGFEDCBA", "T": "JZIHGFEDCBA", "F": "XWUTRQPNMLK", "G": "XWUTRQPNMLK", "M": "XWUTRQPNJLK"}
_SG_OFFSET = {"S": 0, "T": 4, "F": 0, "G": 4, "M": 3}


def sg_check_letter(prefix: str, seven: str) -> str:
    """The check letter of a Singapore NRIC/FIN with this prefix letter and seven digits."""
    total = sum(int(c) * w for c, w in zip(seven, _SG_WEIGHTS, strict=True)) + _SG_OFFSET[prefix]
    return _SG_LETTERS[prefix][total % 11]


def sg_nric_valid(text: str) -> bool:
    """Singapore NRIC/FIN: prefix S/T/F/G/M, seven digits, the check letter for them."""
    t = text.strip().upper()
    if len(t) != 9 or t[0] not in _SG_LETTERS or not t[1:8].isdigit() or not t[1:8].isascii():
        return False
    return t[8] == sg_check_letter(t[0], t[1:8])


# -- Malaysian MyKad (date + place-of-birth code) ------------------------------------------------
def _valid_pb(code: int) -> bool:
    """Place-of-birth codes issued by JPN: states 01-16 and 21-59; foreign 60-68, 71-72, 74-79, 82-93, 98-99."""
    return 1 <= code <= 16 or 21 <= code <= 68 or code in (71, 72) or 74 <= code <= 79 or 82 <= code <= 93 or code >= 98


def _yymmdd_valid(yymmdd: str) -> bool:
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    for century in (1900, 2000):
        try:
            dt.date(century + yy, mm, dd)
            return True
        except ValueError:
            continue
    return False


def mykad_valid(text: str) -> bool:
    """Malaysian MyKad: YYMMDD-PB-###G, a real date of birth and an issued place-of-birth code (no check digit)."""
    d = digits(text)
    return len(d) == 12 and _yymmdd_valid(d[:6]) and _valid_pb(int(d[6:8]))


# -- Estonian isikukood (mod 11, two stages) -----------------------------------------------------
_EE_W1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 1)
_EE_W2 = (3, 4, 5, 6, 7, 8, 9, 1, 2, 3)
_EE_CENTURY = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}


def ee_check_digit(ten: str) -> str:
    """Check digit of an Estonian personal code: weights 1..9,1 mod 11; if 10, weights 3..9,1,2,3; if 10 again, 0."""
    r = sum(int(c) * w for c, w in zip(ten, _EE_W1, strict=True)) % 11
    if r == 10:
        r = sum(int(c) * w for c, w in zip(ten, _EE_W2, strict=True)) % 11
        r = 0 if r == 10 else r
    return str(r)


def ee_isikukood_valid(text: str) -> bool:
    """Estonian isikukood: GYYMMDDSSSC, G 1-6 (century and sex), a real date, the two-stage mod-11 check digit."""
    d = digits(text)
    if len(d) != 11 or d[0] not in _EE_CENTURY:
        return False
    try:
        dt.date(_EE_CENTURY[d[0]] + int(d[1:3]), int(d[3:5]), int(d[5:7]))
    except ValueError:
        return False
    return d[10] == ee_check_digit(d[:10])


# -- IBAN (ISO 13616, mod 97) ----------------------------------------------------------------------
def iban_valid(text: str) -> bool:
    """IBAN: country letters, two check digits, BBAN; the rearranged number mod 97 is 1."""
    t = "".join(text.split()).replace("-", "").upper()
    if not 15 <= len(t) <= 34 or not t.isascii() or not t.isalnum():
        return False
    moved = t[4:] + t[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def iban_check_digits(country: str, bban: str) -> str:
    """The two check digits for ``country`` + ``bban``."""
    moved = bban + country + "00"
    return f"{98 - int(''.join(str(int(c, 36)) for c in moved)) % 97:02d}"
