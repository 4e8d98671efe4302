"""Which items of a request the prefilter's hits fall in, read from the request's own wire format.

The scanner runs over the bytes of a whole export request (the receiver's bytes when they are still exact, else
one serialization). Its hits are offsets into those bytes; this module walks the request's wire format (tag,
length, skip: nothing is decoded) down the path of repeated fields that leads to the items (``resource_spans`` →
``scope_spans`` → ``spans``; ``resource_logs`` → ``scope_logs`` → ``log_records``) and names each hit's item by
its indexes along that path, with the hit's ranges relative to the item's own bytes. Containers with no hit are
skipped whole, and a container's items are walked only up to its last hit.

Only length-delimited occurrences of a path's field numbers are elements of the repeated field (an occurrence with
another wire type is an unknown field to the parser), so the indexes are those of the parsed message, whatever
order or encoding the sender used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .prefilter import RawHit

__all__ = ["ItemHit", "Located", "locate_items"]

_LENGTH = 2


class MalformedError(ValueError):
    """The bytes do not follow the wire format (they did parse, so this is a bug or a stale byte view)."""


@dataclass
class ItemHit:
    """Rule bits that may match in one item, where (ranges relative to the item's bytes), and those bytes."""

    mask: int
    ranges: list[tuple[int, int]]
    data: bytes


@dataclass
class Located:
    #: Item indexes along the path (e.g. resource_spans, scope_spans, spans) → its hits.
    items: dict[tuple[int, ...], ItemHit] = field(default_factory=dict)
    #: Some hit lies outside every item (resource, scope, unknown fields): the caller must look there too.
    outside: bool = False


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise MalformedError("varint longer than 10 bytes")


def _skip(data: bytes, position: int, wire: int) -> int:
    if wire == 0:
        return _varint(data, position)[1]
    if wire == 1:
        return position + 8
    if wire == _LENGTH:
        length, position = _varint(data, position)
        return position + length
    if wire == 5:
        return position + 4
    raise MalformedError(f"wire type {wire}")


def locate_items(data: bytes, hits: Sequence[RawHit], path: tuple[int, ...]) -> Located:
    """Map hits (first, last, rule bits) on a request's bytes ``data`` to the items at the end of ``path``."""
    located = Located()
    if not hits:
        return located
    try:
        _walk(data, 0, len(data), path, (), sorted(hits), located)
    except (IndexError, MalformedError):
        # Unreachable for bytes that parsed; should it happen, name no item and let the caller walk everything.
        located.items.clear()
        located.outside = True
    return located


def _walk(data: bytes, start: int, end: int, path: tuple[int, ...], indexes: tuple[int, ...],
          hits: list[RawHit], located: Located) -> None:
    """Walk the message ``data[start:end]``, which ``hits`` (sorted) overlap; descend along ``path`` into the
    elements they overlap. An element's bytes here include its tag and length."""
    wanted, rest = (path[0] << 3) | _LENGTH, path[1:]
    last = max(hit[1] for hit in hits)
    pending: list[RawHit] = []  # hits that started before the current element's end and may overlap it
    count, index, position = len(hits), 0, start
    next_hit = 0
    while position < end and position <= last:
        if not pending:
            # Skip whole elements up to the next hit: one tag byte, a one- or two-byte length (elements under
            # 16 KiB). This loop is where a clean request spends its time here.
            upto = hits[next_hit][0] if next_hit < count else end
            while position < end and data[position] == wanted:
                length = data[position + 1]
                if length < 0x80:
                    following = position + 2 + length
                elif data[position + 2] < 0x80:
                    following = position + 3 + ((length & 0x7F) | (data[position + 2] << 7))
                else:
                    break
                if following > upto:
                    break
                position = following
                index += 1
            if position >= end or position > last:
                break
        field_start = position
        key = data[position]
        position += 1
        if key >= 0x80:
            key, position = _varint(data, field_start)
        if key == wanted:
            length, position = _varint(data, position)
            element_start, position = position, position + length
            if position > end:
                raise MalformedError("field runs past its message")
        else:
            position = _skip(data, position, key & 7)
        while next_hit < count and hits[next_hit][0] < position:
            pending.append(hits[next_hit])
            next_hit += 1
        if pending:
            if key != wanted:
                located.outside = True  # another field (resource, scope, unknown): the caller looks there
            elif rest:
                _walk(data, element_start, position, rest, (*indexes, index), pending, located)
            else:
                _item(data, element_start, position, (*indexes, index), pending, located)
            pending = [hit for hit in pending if hit[1] >= position]
        if key == wanted:
            index += 1
        if position > end:
            raise MalformedError("field runs past its message")


def _item(data: bytes, start: int, end: int, indexes: tuple[int, ...], hits: list[RawHit],
          located: Located) -> None:
    mask = 0
    ranges = []
    for first, last, bits in hits:
        mask |= bits
        ranges.append((max(first, start) - start, min(last + 1, end) - start))
    located.items[indexes] = ItemHit(mask, ranges, data[start:end])
