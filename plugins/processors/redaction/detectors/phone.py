"""Telephone numbers: E.164 / international (``+`` country code) and common national formats.

Bare digit runs are never phone numbers here (order ids and Unix timestamps look the same). A national number
needs a grouping the way people write them: North American ``(415) 555-0132`` / ``415-555-0132`` /
``415.555.0132``, or a European trunk-prefix number ``020 7946 0958`` / ``06 12 34 56 78`` / ``030/12345678`` /
``0612345678`` whose groups share one separator, so ``01.02.2024 10:30`` (a date and a time) is not one.
"""

from __future__ import annotations

import re

from .base import LENGTH_AFTER, Anchored, Literal, RegexDetector, Search

__all__ = ["PHONE"]

_PATTERN = re.compile(
    r"(?<![\w+])(?:"
    r"(?P<intl>\+[1-9](?:[ .-]?\(?\d\)?){7,14})"
    r"|(?P<nanp>(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4})"
    r"|(?P<trunk>0[1-9]\d{0,4}(?:(?P<sep>[ .\-/])\d{2,8}(?:(?P=sep)\d{2,8}){0,4}|\d{7,10}))"
    r")(?!\w)",
    re.ASCII,
)
_DIGITS = re.compile(r"\d")
#: A national number written with separators needs one of these shapes (a date such as 2024-06-17 has neither);
#: they are what the prefilter looks for.
_SHAPES = re.compile(r"\d{3}[ .\-/]\d{4}|\d\d(?P<s>[ .\-/])\d\d(?P=s)\d\d(?P=s)\d\d", re.ASCII)
_BARE = re.compile(r"0[1-9]\d{7,10}", re.ASCII)


def _accept(match: re.Match[str]) -> bool:
    text = match.group()
    digits = len(_DIGITS.findall(text))
    if match.group("intl"):
        return 8 <= digits <= 15
    if _BARE.fullmatch(text) is None and _SHAPES.search(text) is None:
        return False
    return bool(match.group("nanp")) or 9 <= digits <= 12


def _normalize(secret: str) -> str:
    return ("+" if secret.startswith("+") else "") + "".join(_DIGITS.findall(secret))


# A bare trunk number follows a character that is neither a word character nor '+' (as the pattern demands), or
# starts its string: then the string's length byte, which can look like anything, sits after the tag of a string
# field (0x0A 0x12 0x1A 0x2A 0x3A 0x62) or after the first byte of a two-byte length (>= 0x80).
_BARE_TRIGGER = re.compile(
    rb"0[1-9][0-9]{7}(?:(?<![\w+]0[1-9][0-9]{7})|(?<=" + LENGTH_AFTER + rb".0[1-9][0-9]{7}))",
    re.DOTALL)
#: The same without look-behind, for Hyperscan: the byte before is consumed instead (a string never starts a
#: buffer, its tag and length come first).
_BARE_TRIGGER_RAW = rb"(?:[^\w+]|" + LENGTH_AFTER + rb"[\x00-\xff])0[1-9][0-9]{7}"

#: An international number: '+', a digit other than 0 and seven more digits, as the pattern demands (random
#: binary has a '+' before a digit often, eight digits after it almost never).
_INTL_TRIGGER = re.compile(rb"\+[1-9](?:[ .\-]?\(?[0-9]\)?){7}")
#: A trunk number in pairs (``06 12 34 56 78``, the second _SHAPES shape): four pairs with one separator means a
#: first group that starts 0[1-9] and at least three more groups, the third of two digits or more. A dotted IPv4
#: address (10.14.62.25) has the pairs but not the leading 0[1-9] and four groups after it.
_PAIRS_TRIGGER = re.compile(rb"0[1-9][0-9]{0,4}[ .\-/][0-9]{2,8}[ .\-/][0-9]{2,8}[ .\-/][0-9]{2}")

PHONE = RegexDetector(
    name="phone",
    pattern=_PATTERN,
    # '+' and eight digits; or the first _SHAPES shape (folded: digits are 0, separators other than '-' a
    # space); or a trunk number in pairs; or a bare trunk number.
    triggers=(Anchored("+", _INTL_TRIGGER),
              Literal("000 0000"), Literal("000-0000"), Search(_PAIRS_TRIGGER),
              Search(_BARE_TRIGGER, raw=_BARE_TRIGGER_RAW)),
    accept=_accept,
    normalizer=_normalize,
)
