"""The detector contract, and the prefilter vocabulary detectors use to say what their matches look like in bytes.

A detector finds secrets in one string (``find``). Its ``triggers`` promise the prefilter what every secret it
finds looks like inside the serialized protobuf bytes, after the bytes are folded into the prefilter alphabet
(see ``literals.fold``): ASCII letters lower-cased, digits become ``0`` and the separators `` .()/`` a space.
A detector has several triggers when its secrets come in several shapes; each secret must satisfy one. The
promise must hold for every string ``find`` reports, or an item holding it is never walked and the secret leaks;
``accept`` functions therefore re-check anything the pattern alone does not guarantee, and the property tests
check each promise against generated secrets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeAlias

__all__ = ["LENGTH_AFTER", "Anchored", "Detector", "Literal", "RegexDetector", "Search", "Trigger"]

#: The byte before a string's length byte: the tag of an OTLP string field (AnyValue.string_value, a name, a
#: message, a trace state, an event_name: fields 1, 2, 3, 5, 7 and 12, wire type 2) or the first byte of a
#: longer length (>= 0x80). A string's first character follows its length byte, which can look like anything
#: (a digit, a letter), so a trigger that wants "no digit before" must also allow "a length byte before".
LENGTH_AFTER = rb"[\x0a\x12\x1a\x2a\x3a\x62\x80-\xff]"


@dataclass(frozen=True)
class Literal:
    """Every secret contains ``text`` (compared after folding, so case does not matter)."""

    text: str


@dataclass(frozen=True)
class Anchored:
    """Every secret contains the (rare) byte ``anchor``; ``confirm`` matches the raw bytes from ``offset`` bytes
    before it whenever a secret is there."""

    anchor: str
    confirm: re.Pattern[bytes]
    offset: int = 0


@dataclass(frozen=True)
class Search:
    """Every secret's bytes contain a match of ``pattern``, searched in the raw bytes (``folded=False``) or in the
    folded ones. The pattern must start with a literal byte, which ``re`` scans for at C speed. In the folded
    bytes the scanner also turns the anchor letters of literals into ``\\x01``, so a class of letters must admit
    ``\\x01`` too. ``confirm``, if set, must match the raw bytes ``offset`` bytes before each match that stands
    for a secret."""

    pattern: re.Pattern[bytes]
    folded: bool = False
    confirm: re.Pattern[bytes] | None = None
    offset: int = 0
    #: The same condition (pattern and confirm together) as one expression over the raw bytes without look-around,
    #: for the Hyperscan engine; empty = ``pattern`` itself, which must then be raw and free of look-around.
    raw: bytes = b""


Trigger: TypeAlias = Literal | Anchored | Search


class Detector(Protocol):
    """A built-in detector, switched on by ``name`` under ``detectors:``."""

    @property
    def name(self) -> str: ...

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        """Shapes every secret found here has in serialized bytes; each secret satisfies at least one."""
        ...

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        """Start and end of every secret in ``text``, in order, not overlapping."""
        ...

    def normalize(self, secret: str) -> str:
        """The hash input for ``secret``: formatting variants of one value give one pseudonym."""
        ...


def _always(match: re.Match[str]) -> bool:
    return True


def _identity(secret: str) -> str:
    return secret


@dataclass(frozen=True)
class RegexDetector:
    """A detector made of one pattern, an optional check of each match, and the group that holds the secret."""

    name: str
    pattern: re.Pattern[str]
    triggers: tuple[Trigger, ...]
    accept: Callable[[re.Match[str]], bool] = _always
    normalizer: Callable[[str], str] = _identity
    #: The groups replaced, first one that took part wins; () = the whole match. A group keeps e.g. the
    #: ``Bearer`` prefix readable.
    group: tuple[int | str, ...] = ()

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            if not self.accept(match):
                continue
            start, end = match.span()
            for group in self.group:
                start, end = match.span(group)
                if start >= 0:
                    break
            if start < end:
                yield start, end

    def normalize(self, secret: str) -> str:
        return self.normalizer(secret)
