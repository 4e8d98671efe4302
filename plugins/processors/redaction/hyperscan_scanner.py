"""The prefilter on Hyperscan: every trigger of every rule compiled into one automaton, one pass over the bytes.

``prefilter.Scanner`` runs several C-level searches of Python's ``re`` over each batch; this engine hands all
triggers to Hyperscan (Intel's multi-pattern matcher, a C library) and scans a batch once, at a gigabyte or more
per second, whatever the number of rules. It keeps the promise of ``prefilter``: every secret a rule can find
lies in or around a reported range, so an item not reported needs no walk.

How each trigger becomes an expression over the raw (unfolded) bytes:

- ``Literal``: each folded byte becomes the class of raw bytes that fold to it (``0`` → ``[0-9]``, ``a`` →
  ``[aA]``, a space → `` .()/``), so the expression matches exactly where the folded literal would.
- ``Anchored``: its ``confirm`` pattern, which already holds the anchor byte.
- ``Search``: its ``raw`` form when it has one (the same condition without look-around, which Hyperscan lacks),
  else its pattern.

Hyperscan reports where each match ends; expressions other than literals are compiled with leftmost
start-of-match so a hit covers the whole match. Matches are rare in clean traffic, so the Python callback per match
costs little. Hyperscan is an optional dependency (wheels for x86-64 Linux and macOS); without it the processor
uses ``prefilter.Scanner``, which finds the same items.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .detectors.base import Anchored, Literal, Search, Trigger
from .literals import FOLD, fold
from .prefilter import Hit, Probe, RawHit, bucket

try:
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "HyperscanScanner"]

AVAILABLE = hyperscan is not None

#: Raw bytes that fold to each folded byte.
_UNFOLD: dict[int, list[int]] = {}
for _raw in range(256):
    _UNFOLD.setdefault(FOLD[_raw], []).append(_raw)


def _byte_class(folded: int) -> bytes:
    members = _UNFOLD.get(folded, [])
    if len(members) == 1:
        return b"\\x%02x" % members[0]
    return b"[" + b"".join(b"\\x%02x" % raw for raw in members) + b"]"


def literal_expression(folded: bytes) -> bytes:
    """A Hyperscan expression matching exactly the raw byte strings that fold to ``folded``."""
    return b"".join(_byte_class(byte) for byte in folded)


def _expression(trigger: Trigger) -> tuple[bytes, int]:
    """(expression, length of every match or 0 when it varies) of one trigger, over raw bytes."""
    if isinstance(trigger, Literal):
        folded = fold(trigger.text.encode("utf-8", "surrogatepass"))
        return literal_expression(folded), len(folded)
    if isinstance(trigger, Anchored):
        return trigger.confirm.pattern, 0
    if isinstance(trigger, Search):
        if trigger.raw:
            return trigger.raw, 0
        if trigger.folded or trigger.confirm is not None:
            raise ValueError(f"a folded or confirmed Search needs a raw form for Hyperscan: {trigger.pattern!r}")
        return trigger.pattern.pattern, 0
    raise TypeError(f"unknown trigger {trigger!r}")


class HyperscanScanner:
    """Same contract as ``prefilter.Scanner.find``: the ranges of a buffer that may hold a secret, with rule bits."""

    def __init__(self, probes: Iterable[Probe]) -> None:
        if hyperscan is None:
            raise RuntimeError("hyperscan is not installed")
        masks: dict[tuple[bytes, int], int] = {}
        for probe in probes:
            key = _expression(probe.trigger)
            masks[key] = masks.get(key, 0) | probe.mask
        self._masks = [mask for _, mask in masks.items()]
        #: Length of each expression's matches (literals), or 0: then Hyperscan reports the start too.
        self._lengths = [length for _, length in masks]
        expressions = [expression for expression, _ in masks]
        self.empty = not expressions
        self._database = None
        if expressions:
            flags = [hyperscan.HS_FLAG_DOTALL | (0 if length else hyperscan.HS_FLAG_SOM_LEFTMOST)
                     for length in self._lengths]
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            try:
                database.compile(expressions=expressions, ids=list(range(len(expressions))),
                                 elements=len(expressions), flags=flags)
            except hyperscan.error as exc:  # a trigger Hyperscan cannot take is a bug in a detector: say which
                raise ValueError(f"Hyperscan rejects a trigger of {expressions}: {exc}") from None
            self._database = database

    def locate(self, parts: Sequence[bytes]) -> dict[int, Hit]:
        """The hits in each item (by index into ``parts``) that can hold a match; absent = nothing to do."""
        return bucket(parts, self.find(b"".join(parts)))

    def scan(self, parts: Sequence[bytes]) -> dict[int, int]:
        return {index: hit.mask for index, hit in self.locate(parts).items()}

    def find(self, data: bytes) -> list[RawHit]:
        """(first byte, last byte, rule bits) of every match in ``data``, in no particular order."""
        if self._database is None or not data:
            return []
        found: list[tuple[int, int, int]] = []
        append = found.append

        def on_match(expression: int, start: int, end: int, flags: int, context: object) -> None:
            append((expression, start, end))

        self._database.scan(data, match_event_handler=on_match)
        masks, lengths = self._masks, self._lengths
        hits: list[RawHit] = []
        for expression, start, end in found:
            length = lengths[expression]
            hits.append((end - length if length else start, end - 1, masks[expression]))
        return hits
