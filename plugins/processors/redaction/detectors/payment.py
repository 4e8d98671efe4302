"""Payment data: card numbers (issuer prefix and Luhn check) and IBANs (country length and mod-97 check).

The checks are what keep order numbers and other long digit strings readable: a random 16-digit number passes
Luhn one time in ten, and only if it also starts like a card.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .base import LENGTH_AFTER, Literal, RegexDetector, Search, Trigger

__all__ = ["CREDIT_CARD", "IBAN", "IbanDetector", "iban_valid", "luhn_valid"]

_CARD = re.compile(
    r"(?<!\d)(?:"
    r"\d{4}(?P<s1>[ -])\d{4}(?P=s1)\d{4}(?P=s1)\d{1,4}(?:(?P=s1)\d{1,3})?"  # 4-4-4-4(-3)
    r"|\d{4}(?P<s2>[ -])\d{6}(?P=s2)\d{4,5}"  # 4-6-5 (Amex), 4-6-4 (Diners)
    r"|\d{13,19}"
    r")(?!\d)",
    re.ASCII,
)
_NOT_DIGIT = re.compile(r"\D", re.ASCII)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _issuer_known(digits: str) -> bool:
    """Visa 4, Mastercard 51-55 and 2221-2720, Amex/Diners/JCB 3, Discover/Maestro/UnionPay 5 and 6."""
    first = digits[0]
    return first in "3456" or (first == "2" and 222100 <= int(digits[:6]) <= 272099)


def _card_accept(match: re.Match[str]) -> bool:
    digits = _NOT_DIGIT.sub("", match.group())
    return 13 <= len(digits) <= 19 and _issuer_known(digits) and luhn_valid(digits)


# A run of 13+ digits that _card_accept takes starts with an issuer digit (2 to 6) after a character that is no
# digit, or at the start of its string, where the byte before may be the string's length byte (a digit, say) after
# a tag. The hex of ids (session ids, trace ids in text) often holds 13 digits in a row, mostly not so.
_RUN_TRIGGER = re.compile(
    rb"[2-6][0-9]{12}(?:(?<![0-9][2-6][0-9]{12})|(?<=" + LENGTH_AFTER + rb"[0-9][2-6][0-9]{12}))")
_RUN_TRIGGER_RAW = rb"(?:[^0-9]|" + LENGTH_AFTER + rb"[0-9])[2-6][0-9]{12}"

CREDIT_CARD = RegexDetector(
    name="credit_card",
    pattern=_CARD,
    # 13+ digits in a row (see _RUN_TRIGGER), or groups of 4-6 digits separated by spaces or dashes (4111 1111...,
    # 3782-822463-...).
    triggers=(Search(_RUN_TRIGGER, raw=_RUN_TRIGGER_RAW), Literal("000 0000"), Literal("000-0000")),
    accept=_card_accept,
    normalizer=lambda secret: _NOT_DIGIT.sub("", secret),
)

#: IBAN length per country (ISO 13616 registry); other country codes may have any length from 15 to 34.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
# Country code, check digits, then the account part, compact or in groups separated by single spaces.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}", re.ASCII)
#: Printed IBANs are compact or in groups of four; the prefilter relies on it (see the triggers).
_GROUPED = re.compile(r"[A-Z0-9]+|[A-Z0-9]{4}(?: [A-Z0-9]{4})*(?: [A-Z0-9]{1,4})?", re.ASCII)
_TEN_DIGITS = re.compile(r"\d{10}", re.ASCII)


def iban_valid(compact: str) -> bool:
    """Mod-97 check of an IBAN without spaces (ISO 7064), plus the digit run the prefilter relies on."""
    if not 15 <= len(compact) <= 34 or not compact.isascii() or not compact.isalnum():
        return False
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    # Every registered format has 10 digits in a row (NL has the fewest); requiring it keeps the detector inside
    # its trigger.
    if _TEN_DIGITS.search(compact) is None:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


@dataclass(frozen=True)
class IbanDetector:
    name: str = "iban"
    # Compact, the run of 10+ digits that iban_valid requires follows a letter (country code, bank code or a
    # letter of the account number). In groups of four, those 10 digits always hold "ddd dddd".
    triggers: tuple[Trigger, ...] = (
        Search(re.compile(rb"0000000000(?<=[a-z\x01]0000000000)"), folded=True,
               confirm=re.compile(rb"[A-Z]"), offset=1, raw=rb"[A-Z][0-9]{10}"),
        Literal("000 0000"))

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        for match in _IBAN.finditer(text):
            # The pattern may run on into a following word; take the longest valid prefix.
            start, chunk = match.start(), match.group()
            ends = [i + 1 for i, char in enumerate(chunk) if char != " "]
            compact = chunk.replace(" ", "")
            expected = IBAN_LENGTHS.get(compact[:2])
            lengths = [expected] if expected else range(min(34, len(compact)), 14, -1)
            for length in lengths:
                if length <= len(compact) and iban_valid(compact[:length]):
                    end = start + ends[length - 1]
                    if (end == len(text) or not text[end].isalnum()) and _GROUPED.fullmatch(text[start:end]):
                        yield start, end
                    break

    def normalize(self, secret: str) -> str:
        return secret.replace(" ", "").upper()


IBAN = IbanDetector()
