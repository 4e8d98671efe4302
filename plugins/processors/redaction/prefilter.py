"""Find the places in serialized bytes that can need redaction, without decoding anything: the ``re`` engine.

``find`` takes the bytes of a request (or of items joined, see ``locate``), folds them with one
``bytes.translate`` (see ``literals``) and runs a few C-level searches of Python's ``re``, each reporting the
byte ranges its hits cover with a bit mask of the rules that may match there. ``hyperscan_scanner`` does the same
in one pass of Hyperscan where that library is installed; this engine is the fallback and the reference:

- **rare bytes** (``@`` for e-mail, ``+`` for international numbers): ``bytes.find`` (memchr), then a confirming
  pattern on the raw bytes at each occurrence;
- **searches**: detector patterns that start with a literal byte (``re`` scans for it at C speed), such as the
  digits of a compact IBAN after a letter, or ``.d.d.`` inside an IPv4 address;
- **literals**: each literal is anchored on a byte chosen so that all anchors together are rare (weighted set
  cover over the byte counts of the first sizeable batch), and all anchor bytes are folded to ``\x01``. One
  regular expression that starts with that single byte then checks the surroundings of every literal at once.
  Its alternatives start with a literal character (rejected by ``re`` in one comparison) and end with a look-
  behind for the bytes before the anchor. Because every anchor looks the same to it, a hit is confirmed against
  the literals of the byte actually there. A literal whose only anchors are frequent bytes (and literals of
  digits only, like the thirteen ``0`` of a card number) is searched with ``bytes.find`` instead.

Only items holding a hit are walked in Python, and only with the rules their masks name. Nothing here may miss a secret:
the triggers of ``detectors`` and the literals of ``literals`` must hold for every match.
"""

from __future__ import annotations

import abc
import bisect
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .detectors.base import Anchored, Literal, Search, Trigger
from .literals import FOLD, fold, rarity

__all__ = ["Hit", "Probe", "RawHit", "ScanEngine", "Scanner", "bucket", "hit_limit", "value_gate"]

MARKER = 0x01
_FILLER = 0x02
_TUNE_BYTES = 64 * 1024


def value_gate(triggers: Sequence[Trigger]) -> Callable[[bytes, bytes], bool]:
    """The triggers checked on one value (its raw and folded bytes): False = the rule cannot match it, so the
    walk skips the rule's precise pattern, which costs far more on a typical value. One C call per byte view."""
    folded_parts = [re.escape(fold(t.text.encode("utf-8", "surrogatepass")))
                    for t in triggers if isinstance(t, Literal)]
    folded_parts += [t.pattern.pattern for t in triggers if isinstance(t, Search) and t.folded]
    raw_parts = [t.confirm.pattern for t in triggers if isinstance(t, Anchored)]
    raw_parts += [t.pattern.pattern for t in triggers if isinstance(t, Search) and not t.folded]
    on_folded = re.compile(b"|".join(b"(?:" + part + b")" for part in folded_parts)).search if folded_parts else None
    on_raw = re.compile(b"|".join(b"(?:" + part + b")" for part in raw_parts)).search if raw_parts else None
    if on_raw is None and on_folded is not None:
        return lambda raw, folded: on_folded(folded) is not None
    if on_folded is None and on_raw is not None:
        return lambda raw, folded: on_raw(raw) is not None
    if on_folded is None or on_raw is None:
        return lambda raw, folded: False
    return lambda raw, folded: on_folded(folded) is not None or on_raw(raw) is not None


@dataclass
class Hit:
    """Rule bits that may match in one item, and where: byte ranges [start, end) of the item's serialization."""

    mask: int
    ranges: list[tuple[int, int]]


#: (first byte, last byte, rule bits) of one place in a buffer that can hold a match.
RawHit = tuple[int, int, int]


class _TooMany(Exception):
    pass


def hit_limit(data: bytes) -> int:
    """How many hits a scan of ``data`` reports before it gives up and flags all of ``data``.

    Traffic full of personal data has about one hit per 80 bytes; a long run of digits has one per byte (every
    position ends a 13-digit card candidate), and a hit costs about a microsecond to report and place. Past this
    limit the whole buffer is walked: a few seconds of hits for a large value become a bounded scan."""
    return 4096 + len(data) // 64


@dataclass(frozen=True)
class Probe:
    """One trigger and the rule bits it stands for."""

    trigger: Trigger
    mask: int


def _alternation(branches: dict[bytes, list[bytes]]) -> bytes:
    """``(?:a(?:...)|b(?:...))``: one branch per first character, so ``re`` rejects most with one comparison.
    Branches and their tails keep the order given (the empty groups inside are numbered in that order)."""
    parts = []
    for first, tails in branches.items():
        inner = b"|".join(tails)
        parts.append(first + (b"(?:" + inner + b")" if len(tails) > 1 else inner))
    return b"(?:" + b"|".join(parts) + b")"


#: Relative cost of one regex attempt at an anchor, and of scanning one byte with ``bytes.find`` for a literal of
#: length n (about 0.3 + 1.8 / n times the cost of one byte of the anchored scan); measured on CPython 3.11.
_ATTEMPT_COST = 100.0
_FIND_BYTE_COST = 0.3
_FIND_SHORT_PENALTY = 1.8


def _find_cost(literal: bytes) -> float:
    return _FIND_BYTE_COST + _FIND_SHORT_PENALTY / len(literal)


def _anchor_positions(literal: bytes) -> list[int]:
    """Where a literal may be anchored: not on ``0`` (digits belong to the runs) and, if possible, not on its last
    byte, since an alternative that starts with a literal character is rejected by ``re`` in one comparison and
    one that is only a look-behind is not."""
    found = [i for i, byte in enumerate(literal) if byte != ord("0")]
    return [i for i in found if i < len(literal) - 1] or found


class ScanEngine(abc.ABC):
    """What both engines (this module's ``Scanner``, ``hyperscan_scanner.HyperscanScanner``) offer: ``find`` on
    one buffer, and the same on separately serialized items."""

    #: Every rule bit a probe stands for.
    all_bits: int

    @property
    @abc.abstractmethod
    def empty(self) -> bool:
        """True when there is nothing to search for."""

    @abc.abstractmethod
    def find(self, data: bytes) -> list[RawHit]:
        """(first byte, last byte, rule bits) of every place in ``data`` that can hold a match; past
        ``hit_limit`` of them, one hit over all of ``data`` with every rule bit."""

    def locate(self, parts: Sequence[bytes]) -> dict[int, Hit]:
        """The hits in each item (by index into ``parts``) that can hold a match; absent = nothing to do."""
        return bucket(parts, self.find(b"".join(parts)))

    def scan(self, parts: Sequence[bytes]) -> dict[int, int]:
        """Rule masks of the items (by index into ``parts``) that can hold a match; absent = nothing to do."""
        return {index: hit.mask for index, hit in self.locate(parts).items()}


class Scanner(ScanEngine):
    def __init__(self, probes: Iterable[Probe]) -> None:
        self._bytes: list[tuple[bytes, re.Pattern[bytes], int, int]] = []  # anchor, confirm, offset, mask
        #: pattern, on folded bytes, confirm, offset, mask
        self._searches: list[tuple[re.Pattern[bytes], bool, re.Pattern[bytes] | None, int, int]] = []
        self._literal_masks: dict[bytes, int] = {}
        probes = list(probes)
        #: Every rule bit a probe stands for.
        self.all_bits = 0
        for probe in probes:
            self.all_bits |= probe.mask
        for probe in probes:
            trigger = probe.trigger
            if isinstance(trigger, Anchored):
                self._bytes.append((trigger.anchor.encode(), trigger.confirm, trigger.offset, probe.mask))
            elif isinstance(trigger, Search):
                self._searches.append((trigger.pattern, trigger.folded, trigger.confirm, trigger.offset, probe.mask))
            elif isinstance(trigger, Literal):
                folded = fold(trigger.text.encode("utf-8", "surrogatepass"))
                self._literal_masks[folded] = self._literal_masks.get(folded, 0) | probe.mask
        # A literal that contains another is found wherever that one is: keep the shorter, with both masks.
        for literal in sorted(self._literal_masks, key=len):
            for other in [o for o in self._literal_masks if o != literal and literal in o]:
                self._literal_masks[literal] |= self._literal_masks.pop(other)
        self._tuned = False
        self._build({byte: 2.0 ** -rarity(byte) for byte in range(256)})

    def _build(self, cost: dict[int, float]) -> None:
        """Anchor the literals on bytes that are, together, as rare as possible (greedy weighted set cover over
        ``cost``, the share of each folded byte); a literal whose anchor would cost more than a ``bytes.find`` of
        the literal itself is searched with ``find``."""
        literals = list(self._literal_masks)
        options = {lit: _anchor_positions(lit) for lit in literals}
        # Literals of digits only (thirteen 0 for a card number) have no anchor: bytes.find does them.
        uncovered, anchors = {lit for lit in literals if options[lit]}, set()
        while uncovered:
            candidates = {lit[i] for lit in uncovered for i in options[lit]}
            best = min(candidates, key=lambda b: (cost[b] / sum(1 for lit in uncovered
                                                                   if any(lit[i] == b for i in options[lit])), b))
            anchors.add(best)
            uncovered = {lit for lit in uncovered if not any(lit[i] == best for i in options[lit])}
        groups: dict[int, list[tuple[bytes, int]]] = {-1: [(lit, -1) for lit in literals if not options[lit]]}
        for literal in literals:
            if not options[literal]:
                continue
            position = min((i for i in options[literal] if literal[i] in anchors), key=lambda i: cost[literal[i]])
            groups.setdefault(literal[position], []).append((literal, position))
        chosen: list[tuple[bytes, int]] = []
        self._finds: list[tuple[bytes, int]] = []
        for anchor, group in groups.items():
            if anchor < 0 or cost[anchor] * _ATTEMPT_COST > sum(_find_cost(literal) for literal, _ in group):
                self._finds.extend((literal, self._literal_masks[literal]) for literal, _ in group)
            else:
                chosen.extend(group)
        anchors = {literal[i] for literal, i in chosen}
        self.anchors = frozenset(anchors)
        table = bytearray(FOLD)
        for byte in range(256):
            if table[byte] in anchors:
                table[byte] = MARKER
            elif table[byte] == MARKER:
                table[byte] = _FILLER
        self._table = bytes(table)
        # One alternative per distinct scanned context; its empty group tells which literal(s) it stands for. As
        # every anchor is \x01 to the expression, a match is confirmed on the folded raw bytes.
        contexts: dict[tuple[bytes, bytes], list[tuple[bytes, int, int]]] = {}
        catch_all: list[tuple[bytes, int, int]] = []
        for folded, i in chosen:
            entry = (folded, i, self._literal_masks[folded])
            scanned = folded.translate(self._table)
            after = scanned[i + 1:]
            if not after and i == 0:
                catch_all.append(entry)  # a one-byte literal: every occurrence of its anchor is a hit
                continue
            contexts.setdefault((after, scanned if i else b""), []).append(entry)
        self._groups: list[list[tuple[bytes, int, int]]] = [[]]  # group number -> literals (group 0 unused)
        by_first: dict[bytes, list[tuple[bytes, bytes, list[tuple[bytes, int, int]]]]] = {}
        for (after, behind), entries in sorted(contexts.items()):
            by_first.setdefault(after[:1], []).append((after[1:], behind, entries))
        branches: dict[bytes, list[bytes]] = {}
        for first, tails in by_first.items():  # groups are numbered in pattern order: walk it the same way
            for rest, behind, entries in tails:
                self._groups.append(entries)
                look = b"(?<=" + re.escape(behind) + b")" if behind else b""
                branches.setdefault(re.escape(first), []).append(re.escape(rest) + look + b"()")
        self._literals: re.Pattern[bytes] | None = None
        if catch_all:
            self._groups = [[], catch_all + [e for group in self._groups for e in group]]
            self._literals = re.compile(b"\x01()")
        elif branches:
            self._literals = re.compile(b"\x01" + _alternation(branches), re.DOTALL)

    def _tune(self, data: bytes) -> None:
        """Re-choose the anchors from the byte counts of real traffic (once, on the first sizeable batch)."""
        self._tuned = True
        folded = data.translate(FOLD)
        candidates = {byte for literal in self._literal_masks for byte in literal}
        counts = {byte: folded.count(byte) for byte in candidates}
        total = max(len(folded), 1)
        cost = {byte: (counts.get(byte, 0) + 1) / total + 2.0 ** -rarity(byte) / 1000 for byte in range(256)}
        self._build(cost)

    @property
    def empty(self) -> bool:
        return self._literals is None and not self._bytes and not self._finds and not self._searches

    def find(self, data: bytes) -> list[RawHit]:
        """(first byte, last byte, rule bits) of every place in ``data`` that can hold a match; past
        ``hit_limit`` of them, one hit over all of ``data`` with every rule bit (see ``hit_limit``)."""
        hits: list[RawHit] = []
        limit = hit_limit(data)

        def flag(first: int, last: int, mask: int) -> None:
            hits.append((first, last, mask))
            if len(hits) > limit:
                raise _TooMany

        try:
            return self._find(data, hits, flag)
        except _TooMany:
            return [(0, len(data) - 1, self.all_bits)]

    def _find(self, data: bytes, hits: list[RawHit], flag: Callable[[int, int, int], None]) -> list[RawHit]:

        for anchor, anchor_confirm, anchor_offset, anchor_mask in self._bytes:
            position = data.find(anchor)
            while position >= 0:
                if anchor_confirm.match(data, max(0, position - anchor_offset)):
                    flag(position, position, anchor_mask)
                position = data.find(anchor, position + 1)
        for pattern, on_folded, confirm, offset, mask in self._searches:
            if not on_folded:
                self._search(pattern, data, data, confirm, offset, mask, flag)
        if self._literals is None and not self._finds and not any(search[1] for search in self._searches):
            return hits
        if not self._tuned and self._literal_masks and len(data) >= _TUNE_BYTES:
            self._tune(data)
        folded = data.translate(self._table)
        for pattern, on_folded, confirm, offset, mask in self._searches:
            if on_folded:
                self._search(pattern, folded, data, confirm, offset, mask, flag)
        for literal, mask in self._finds:
            needle = literal.translate(self._table)
            position = folded.find(needle)
            while position >= 0:
                if data[position:position + len(literal)].translate(FOLD) == literal:
                    flag(position, position, mask)
                position = folded.find(needle, position + 1)
        if self._literals is not None:
            search, groups = self._literals.search, self._groups
            match = search(folded)
            while match is not None:
                position = match.start()
                mask = 0
                for literal, offset, literal_mask in groups[match.lastindex or 0]:
                    start = position - offset
                    if start >= 0 and data[start:start + len(literal)].translate(FOLD) == literal:
                        mask |= literal_mask
                if mask:
                    flag(position, position, mask)
                match = search(folded, position + 1)
        return hits

    @staticmethod
    def _search(pattern: re.Pattern[bytes], haystack: bytes, data: bytes, confirm: re.Pattern[bytes] | None,
                offset: int, mask: int, flag: Callable[[int, int, int], None]) -> None:
        for match in pattern.finditer(haystack):
            start = match.start()
            if confirm is None or (start >= offset and confirm.match(data, start - offset)):
                flag(start, match.end() - 1, mask)


def bucket(parts: Sequence[bytes], hits: Iterable[RawHit]) -> dict[int, Hit]:
    """Group hits on the joined ``parts`` by part: index → rule bits and ranges relative to that part. A hit
    that straddles parts flags each of them."""
    ends = list(itertools.accumulate(map(len, parts)))
    located: dict[int, Hit] = {}
    find = bisect.bisect_right
    for first, last, mask in hits:
        index = find(ends, first)
        end = ends[index]
        if last < end:  # the common case: within one part
            base = end - len(parts[index])
            hit = located.get(index)
            if hit is None:
                located[index] = Hit(mask, [(first - base, last + 1 - base)])
            else:
                hit.mask |= mask
                hit.ranges.append((first - base, last + 1 - base))
            continue
        for each in range(index, min(find(ends, last), len(ends) - 1) + 1):
            base = ends[each] - len(parts[each])
            span = (max(first, base) - base, min(last + 1, ends[each]) - base)
            hit = located.get(each)
            if hit is None:
                located[each] = Hit(mask, [span])
            else:
                hit.mask |= mask
                hit.ranges.append(span)
    return located
