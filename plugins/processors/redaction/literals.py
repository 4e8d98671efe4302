"""The prefilter alphabet, and the literals every match of a configured regular expression must contain.

The prefilter never decodes protobuf: it searches the serialized bytes of each item after *folding* them with one
``bytes.translate`` (C speed): ASCII letters become lower case, digits become ``0`` and the separators found
inside phone, card and account numbers (`` .()/``) a space. Every string field of an item appears verbatim in
its bytes, so a literal that every match of a rule contains appears, folded, in the folded bytes of any item
holding a match. Folding only merges bytes: the search may find too much (the walk then checks), never too little.

``required_literals`` derives such literals from a regular expression by reading its parse tree: ``.*token.*``
needs ``token``, ``4[0-9]{12}`` needs thirteen ``0``, ``(?i)pass(word|wd)`` needs ``password`` or ``passwd``.
A pattern with no usable literal (``.+``, ``\\w{8}``) returns ``None`` and makes the processor walk every item.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

try:  # the parser is private; if it ever moves, every pattern simply gets no literal (walk everything)
    import re._constants as _sre
    import re._parser as _parser
except ImportError:  # pragma: no cover
    _parser = None  # type: ignore[assignment]

__all__ = ["FOLD", "SEPARATORS", "fold", "rarity", "required_literals"]

#: Bytes folded to a space: what separates the groups of a phone, card or account number. Not ``-``, so that
#: dates (2024-06-17 10:22) stay unlike phone numbers (06 12 34 56 78); dashed numbers have their own literals.
SEPARATORS = b" .()/"


def _fold_table() -> bytes:
    table = bytearray(range(256))
    for byte in range(ord("A"), ord("Z") + 1):
        table[byte] = byte + 32
    for byte in b"0123456789":
        table[byte] = ord("0")
    for byte in SEPARATORS:
        table[byte] = ord(" ")
    return bytes(table)


FOLD = _fold_table()


def fold(data: bytes) -> bytes:
    return data.translate(FOLD)


def _frequencies() -> list[float]:
    """Rough share of each folded byte in OTLP payloads; only the order matters (rarest byte = best anchor)."""
    freq = [0.3 / 256] * 256  # ids, timestamps and lengths look random
    english = "etaoinshrdlcumwfgypbvkxjqz"
    for rank, letter in enumerate(english):
        freq[ord(letter)] += 0.4 * 0.12 * (0.8 ** rank)
    freq[ord("0")] += 0.15
    freq[ord(" ")] += 0.06
    for byte in (0x0A, 0x12, 0x1A, 0x22, 0x08, 0x10, 0x18, 0x2A, 0x09, 0x11):  # common tags
        freq[byte] += 0.02
    freq[ord("j")] += 0.02  # 0x4A: the tag of span attributes, folded
    freq[ord("a")] += 0.005  # 0x41: the tag of a span's end time, folded
    freq[ord("z")] += 0.003  # 0x7A: span status
    for byte in range(0x21, 0x3D):  # string lengths 33..60 land here
        freq[byte] += 0.004
    freq[ord("_")] += 0.004
    freq[ord(":")] += 0.004
    freq[ord("=")] += 0.002
    return freq


_FREQUENCY = _frequencies()


def rarity(byte: int) -> float:
    """Bits of surprise of one folded byte; a literal's selectivity is the sum over its bytes."""
    return -math.log2(_FREQUENCY[byte])


def _score(literals: Iterable[bytes]) -> float:
    items = list(literals)
    if not items or b"" in items:
        return -1.0
    return min(sum(rarity(b) for b in lit) for lit in items) - math.log2(len(items))


@dataclass(frozen=True)
class _Info:
    #: The node matches exactly one of these folded strings (small sets only), or None when unknown.
    exact: frozenset[bytes] | None
    #: Every match contains one of these folded strings, or None when nothing is known.
    required: frozenset[bytes] | None = None


_MAX_SET = 64
_MAX_LENGTH = 48
_MAX_CLASS = 8
_NOTHING = _Info(None, None)
_EMPTY = _Info(frozenset({b""}))


def _better(a: frozenset[bytes] | None, b: frozenset[bytes] | None) -> frozenset[bytes] | None:
    if b is None or _score(b) < 0:
        return a
    if a is None or _score(b) > _score(a):
        return b
    return a


def _product(a: frozenset[bytes], b: frozenset[bytes]) -> frozenset[bytes] | None:
    if len(a) * len(b) > _MAX_SET:
        return None
    joined = frozenset(x + y for x in a for y in b)
    return joined if all(len(x) <= _MAX_LENGTH for x in joined) else None


def _char(code: int) -> bytes:
    return chr(code).encode("utf-8", "surrogatepass").translate(FOLD)


def _class(items: Any, ascii_only: bool) -> _Info:
    out: set[bytes] = set()
    for op, av in items:
        if op is _sre.LITERAL:
            out.add(_char(av))
        elif op is _sre.RANGE and av[1] - av[0] <= 300:
            out.update(_char(code) for code in range(av[0], av[1] + 1))
        elif op is _sre.CATEGORY and av is _sre.CATEGORY_DIGIT and ascii_only:
            out.add(b"0")
        else:  # NEGATE, wide ranges, \w, \s ...
            return _NOTHING
    return _Info(frozenset(out)) if 0 < len(out) <= _MAX_CLASS else _NOTHING


def _repeat(low: int, high: int, sub: _Info) -> tuple[_Info, bool]:
    """(info, closes): ``closes`` when the repeat can run longer than its minimum, ending a literal chain."""
    if low == 0:
        if high == 1 and sub.exact is not None:
            return _Info(sub.exact | {b""}), False
        return _NOTHING, True
    if sub.exact is None:
        return _Info(None, sub.required), True
    total: frozenset[bytes] | None = frozenset({b""})
    for _ in range(low):
        total = _product(total, sub.exact) if total is not None else None
    if total is None:
        return _Info(None, sub.exact), True
    return _Info(total), low != high


def _node(op: Any, av: Any, ascii_only: bool) -> tuple[_Info, bool]:
    if op is _sre.LITERAL:
        return _Info(frozenset({_char(av)})), False
    if op is _sre.IN:
        return _class(av, ascii_only), False
    if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
        return _EMPTY, False  # zero-width: consumes nothing
    if op is _sre.SUBPATTERN:
        return _sequence(av[-1], ascii_only), False
    if op is _sre.ATOMIC_GROUP:
        return _sequence(av, ascii_only), False
    if op is _sre.BRANCH:
        return _branch(av[1], ascii_only), False
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
        low, high, sub = av
        return _repeat(low, high, _sequence(sub, ascii_only))
    return _NOTHING, False  # ANY, NOT_LITERAL, back references, conditionals


def _branch(alternatives: Any, ascii_only: bool) -> _Info:
    infos = [_sequence(alt, ascii_only) for alt in alternatives]
    if all(info.exact is not None for info in infos):
        union = frozenset().union(*(info.exact for info in infos if info.exact is not None))
        if len(union) <= _MAX_SET:
            return _Info(union)
    required: set[bytes] = set()
    for info in infos:
        best = info.exact if info.exact is not None else info.required
        if best is None or b"" in best:
            return _NOTHING
        required |= best
    return _Info(None, frozenset(required))


def _sequence(items: Any, ascii_only: bool) -> _Info:
    chunk: frozenset[bytes] = frozenset({b""})
    best: frozenset[bytes] | None = None
    broken = False
    for op, av in items:
        info, closes = _node(op, av, ascii_only)
        if info.exact is not None:
            joined = _product(chunk, info.exact)
            if joined is None:
                best, broken, chunk = _better(best, chunk), True, info.exact
            else:
                chunk = joined
            if closes:
                best, broken, chunk = _better(best, chunk), True, frozenset({b""})
            continue
        best = _better(_better(best, chunk), info.required)
        broken, chunk = True, frozenset({b""})
    if not broken:
        return _Info(chunk)
    return _Info(None, _better(best, chunk))


def required_literals(pattern: re.Pattern[str]) -> frozenset[bytes] | None:
    """Folded literals of which every match of ``pattern`` contains at least one, or None if none are known."""
    if _parser is None:  # pragma: no cover
        return None
    try:
        tree = _parser.parse(pattern.pattern, pattern.flags)
        info = _sequence(tree, bool(pattern.flags & re.ASCII))
    except Exception:
        return None
    result = info.exact if info.exact is not None else info.required
    if not result or b"" in result:
        return None
    return result
