"""Which fields of an item hold the prefilter's hits, read from the item's own serialized bytes.

Reading one attribute through the protobuf API costs about a microsecond, so walking all of a span's attributes to
fix one of them costs tens. The scanner reports where in the item's bytes each hit lies; parsing only the item's
top-level wire format (tag, length, skip: no decoding) tells which field, and which element of a repeated field,
each hit falls in, and the walk visits just those.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["touched"]

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, position: int) -> tuple[int, int]:
    byte = data[position]
    if byte < 0x80:
        return byte, position + 1
    value, shift = byte & 0x7F, 7
    while True:
        position += 1
        byte = data[position]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position + 1
        shift += 7


def touched(data: bytes, ranges: Sequence[tuple[int, int]]) -> dict[int, set[int]] | None:
    """Field number → indexes (among that field's length-delimited occurrences, which are the elements of a
    repeated field as parsed) of the top-level text or message fields of the message ``data`` overlapping any of
    the ``[start, end)`` byte ranges. None if ``data`` does not parse (then walk everything)."""
    result: dict[int, set[int]] = {}
    seen: dict[int, int] = {}
    spans = _merged(ranges)  # disjoint and in order, so one pointer walks them along with the fields
    if not spans:
        return result
    current, count = 0, len(spans)
    first, last = spans[0]
    final = spans[-1][1]
    position, size = 0, len(data)
    try:
        while position < final:  # fields after the last hit do not matter
            start = position
            key = data[position]
            if key >= 0x80:
                key, position = _varint(data, position)
            else:
                position += 1
            wire = key & 7
            if wire != _LENGTH:
                if wire == _VARINT:
                    position = _varint(data, position)[1]
                elif wire == _FIXED64:
                    position += 8
                elif wire == _FIXED32:
                    position += 4
                else:
                    return None
                continue  # numbers and ids hold no text
            length = data[position]
            if length < 0x80:
                position += 1 + length
            else:
                length, position = _varint(data, position)
                position += length
            # An element of a repeated field is length-delimited: count those occurrences only.
            number = key >> 3
            index = seen.get(number, 0)
            seen[number] = index + 1
            if last <= start:  # this field starts after the current hit range: move on to the next ones
                while current < count and spans[current][1] <= start:
                    current += 1
                if current == count:
                    break
                first, last = spans[current]
            if first < position:
                result.setdefault(number, set()).add(index)
    except IndexError:
        return None
    return result if position <= size else None


def _merged(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, end in sorted(ranges):
        if out and first <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((first, end))
    return out
