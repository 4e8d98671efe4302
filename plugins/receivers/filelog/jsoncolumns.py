"""The JSON lane's batch encoder: lines whose objects have the same keys in the same order (what one logger writes
line after line) are encoded column by column.

A run of such lines becomes one tuple of values per key (``zip(*map(dict.values, objects))``), and every step
after that is one pass over a column in C: ``map`` of a str, bytes, dict or struct method, ``zip`` to put each
record's pieces together, ``b"".join`` per record. A line then costs no Python bytecode of its own. What the passes
cannot take (a second of time not seen yet, a level not seen yet) is computed value by value with the functions
the line-by-line path uses, and those fill the caches the passes read.

The bytes are exactly those of ``RecordBuffer.add_json_lines`` (the line-by-line lane), which are exactly those of
the general path: tests hold all three equal. A run with anything unusual (a line that is not a JSON object, a
missing or unparseable time or level, a key that clashes with the file's attributes) is handed to the
line-by-line lane whole, which sends the lines it cannot take through the general path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from itertools import chain, compress, groupby, repeat
from operator import add, and_, getitem, is_
from typing import Any

import orjson

from gateway import varint

from .emit import SMALL_VARINTS, RecordBuffer, lookup_pair, pair, severity_fields
from .jsonlane import JsonLane
from .operators.entry import Entry
from .operators.timeparse import SECONDS_CACHE

__all__ = ["add_json_batch"]

#: Runs shorter than this go line by line: the columns' fixed cost (a few passes per key) would not pay off.
_MIN_RUN = 16
_NS = 1_000_000_000
_INT64_MASK = (1 << 64) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
#: LogRecord.time_unix_nano (field 1, fixed64): packed as (9, nanoseconds).
_TIME_FIELD = struct.Struct("<Bq")
_FIXED64 = struct.Struct("<Q")
_SECONDS_PART = slice(0, 19)  # "YYYY-MM-DDTHH:MM:SS"
_FRACTION_PART = slice(19, None)  # ".123Z", "Z", "+02:00"...
#: Bounds of the caches, so that no input grows memory without end: entries of one table (heads by length,
#: fractions, seconds), and attribute keys with tables of their own (a few MB at most in all).
_CACHE_LIMIT = 4096
_KEYS_LIMIT = 256
_LENGTHS_LIMIT = 1024


class _Heads(dict):  # type: ignore[type-arg]
    """A length → the bytes that go before a piece of that length; computed once per length (up to ``limit``)."""

    def __init__(self, make: Callable[[int], bytes], limit: int = _LENGTHS_LIMIT) -> None:
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, n: int) -> bytes:
        head = self.make(n)
        if len(self) < self.limit:
            self[n] = head
        return head


def _record_head(n: int) -> bytes:  # ScopeLogs.log_records (field 2) of n bytes
    return b"\x12" + varint(n)


def _body_head(n: int) -> bytes:  # LogRecord.body (field 5): AnyValue{string_value (field 1) of n bytes}
    length = varint(n)
    return b"\x2a" + varint(n + len(length) + 1) + b"\x0a" + length


# (one table each for every line, so room for more lengths)
_RECORD_HEADS = _Heads(_record_head, 16 * _LENGTHS_LIMIT)
_BODY_HEADS = _Heads(_body_head, 16 * _LENGTHS_LIMIT)


def _key_field(key: str) -> bytes:  # KeyValue.key, as emit encodes it
    raw = key.encode("utf-8", "replace")
    return b"\x0a" + varint(len(raw)) + raw


def _string_head(key_field: bytes) -> Callable[[int], bytes]:
    def make(n: int) -> bytes:  # LogRecord.attributes (field 6): KeyValue{key, AnyValue{string_value of n bytes}}
        length = varint(n)
        value_len = 1 + len(length) + n
        kv_len = len(key_field) + 1 + len(varint(value_len)) + value_len
        return b"\x32" + varint(kv_len) + key_field + b"\x12" + varint(value_len) + b"\x0a" + length
    return make


def _int_head(key_field: bytes) -> Callable[[int], bytes]:
    def make(n: int) -> bytes:  # KeyValue{key, AnyValue{int_value (field 3) whose varint has n bytes}}
        kv_len = len(key_field) + 3 + n
        return b"\x32" + varint(kv_len) + key_field + b"\x12" + bytes((n + 1,)) + b"\x18"
    return make


#: Per attribute key: heads of string values and of int values, by length.
_STRING_HEADS: dict[str, _Heads] = {}
_INT_HEADS: dict[str, _Heads] = {}


def _heads(table: dict[str, _Heads], key: str, make: Callable[[bytes], Callable[[int], bytes]]) -> _Heads:
    heads = table.get(key)
    if heads is None:
        if len(table) >= _KEYS_LIMIT:
            table.clear()
        heads = table[key] = _Heads(make(_key_field(key)))
    return heads


def _varints(column: tuple[int, ...]) -> list[bytes]:
    """The varint of every int of a column (as int64: negative numbers take ten bytes).

    Big tables for larger numbers were slower here than a call per value: their lookups miss the CPU caches."""
    low, high = min(column), max(column)
    if low >= 0 and high < 0x4000:
        return list(map(SMALL_VARINTS.__getitem__, column))
    if low >= 0:
        return list(map(varint, column))
    return list(map(varint, map(and_, column, repeat(_INT64_MASK))))


def _fraction(rest: str) -> int | None:
    """Nanoseconds of what follows the seconds when ``parse_rfc3339``'s fast path takes it ("Z", ".250Z"), else
    None (an offset, lower-case z: such values are parsed one by one)."""
    if rest == "Z":
        return 0
    if rest[-1:] == "Z" and rest[:1] == "." and 1 < len(rest) <= 11 and rest[1:-1].isdigit():
        try:
            return int(rest[1:-1]) * 10 ** (11 - len(rest))
        except ValueError:  # digits int() does not read ("²")
            return None
    return None


class _Fractions(dict):  # type: ignore[type-arg]
    def __missing__(self, rest: str) -> int | None:
        nanos = _fraction(rest)
        if len(self) < _CACHE_LIMIT:
            self[rest] = nanos
        return nanos


_FRACTIONS = _Fractions()
#: "YYYY-MM-DDTHH:MM:SS" → Unix nanoseconds of that second, for those parse_rfc3339 has cached (as if UTC).
_SECOND_NANOS: dict[str, int] = {}


class _Repeats:
    """Whole encoded attributes of the values of keys whose values repeat (levels, logger names, paths, status
    codes): such a column is one dict lookup per value and one piece per record instead of two.

    Per key, a dict (value → encoded attribute) while its values repeat, or the number of columns to encode the
    usual way before looking again. One instance holds one type of value: a str never equals another type, but
    the int 1 equals True and 1.0, so ints are looked up only in columns of ints alone.
    """

    #: A key's values repeat while at most 1/SHARE of a column's values are distinct, and the key has had at most
    #: LIMIT values in all.
    SHARE = 4
    LIMIT = 256
    #: Columns encoded the usual way before a key whose values did not repeat is looked at again.
    PAUSE = 64

    def __init__(self) -> None:
        self.keys: dict[str, dict[Any, bytes] | int] = {}

    def find(self, key: str, column: tuple[Any, ...]) -> list[bytes] | None:
        """Every value's encoded attribute when all of them are known, else None."""
        known = self.keys.get(key)
        if type(known) is not dict:
            return None
        try:
            found: list[Any] = list(map(known.get, column))
        except TypeError:  # not hashable
            return None
        return None if None in found else found

    def keep(self, key: str, column: tuple[Any, ...], encoded: Iterable[bytes],
             values: list[bytes]) -> list[Iterable[bytes]]:
        """The column's pieces (``encoded`` before each of ``values``), remembered when its values repeat."""
        known = self.keys.get(key)
        if type(known) is int:
            if known:
                self.keys[key] = known - 1
            else:
                del self.keys[key]  # look again at the next column
            return [encoded, values]
        whole = list(map(add, encoded, values))
        if known is None:
            if len(self.keys) >= _KEYS_LIMIT:
                self.keys.clear()
            if len(set(column)) * self.SHARE > len(column):
                self.keys[key] = self.PAUSE
                return [whole]
            known = self.keys[key] = {}
        assert type(known) is dict
        known.update(zip(column, whole, strict=True))
        if len(known) > self.LIMIT:
            self.keys[key] = self.PAUSE
        return [whole]


_STRING_REPEATS = _Repeats()
_INT_REPEATS = _Repeats()


def _attribute_parts(key: str, column: tuple[Any, ...]) -> list[Iterable[bytes]]:
    """The encoded attribute of every value of a column, as one or two sequences of pieces."""
    found = _STRING_REPEATS.find(key, column)
    if found is not None:
        return [found]
    try:
        raws = list(map(str.encode, column))
    except TypeError:  # not all strings
        pass
    except UnicodeEncodeError:  # a lone surrogate, which emit replaces
        return [list(map(lookup_pair, zip(repeat(key), column, strict=False)))]
    else:
        heads = map(_heads(_STRING_HEADS, key, _string_head).__getitem__, map(len, raws))
        return _STRING_REPEATS.keep(key, column, heads, raws)
    # (bool is not int here; ints beyond int64 are sent as doubles, as emit does)
    if set(map(type, column)) == {int} and min(column) >= _INT64_MIN and max(column) <= _INT64_MAX:
        found = _INT_REPEATS.find(key, column)
        if found is not None:
            return [found]
        numbers = _varints(column)
        heads = map(_heads(_INT_HEADS, key, _int_head).__getitem__, map(len, numbers))
        return _INT_REPEATS.keep(key, column, heads, numbers)
    try:
        return [list(map(lookup_pair, zip(repeat(key), column, strict=False)))]
    except TypeError:  # a map or a list: not hashable
        return [list(map(pair, repeat(key), column))]


def _time_fields(column: tuple[Any, ...], lane: JsonLane) -> list[bytes]:
    """LogRecord.time_unix_nano of every value; raises what the time parser raises."""
    parse = lane.parse_time
    assert parse is not None
    if lane.rfc3339 and set(map(type, column)) == {str}:
        # parse_rfc3339's fast path in passes: the seconds as its cache has them, the fraction from ours
        prefixes: list[str] = list(map(getitem, column, repeat(_SECONDS_PART)))
        seconds = list(map(_SECOND_NANOS.get, prefixes))
        if None in seconds:  # seconds not seen yet: parse one value of each, which puts it in parse_rfc3339's cache
            unseen = list(map(is_, seconds, repeat(None)))
            for prefix, value in dict(zip(compress(prefixes, unseen), compress(column, unseen), strict=True)).items():
                parse(value)
                wall = SECONDS_CACHE.get(prefix)
                if wall is not None:
                    if len(_SECOND_NANOS) >= _CACHE_LIMIT:
                        _SECOND_NANOS.clear()
                    _SECOND_NANOS[prefix] = wall * _NS
            seconds = list(map(_SECOND_NANOS.get, prefixes))
        rests: Iterable[str] = map(getitem, column, repeat(_FRACTION_PART))
        fractions = list(map(_FRACTIONS.__getitem__, rests))
        if None not in seconds and None not in fractions:
            nanos: Iterable[int] = map(add, seconds, fractions)
        else:  # offsets, other spellings: value by value
            nanos = [parse(v) if s is None or f is None else s + f
                     for v, s, f in zip(column, seconds, fractions, strict=True)]
    else:
        nanos = list(map(parse, column))
    # (a signed pack is the two's complement that emit's mask gives; past 2**63 it raises, and the lines go one by
    # one)
    return list(map(_TIME_FIELD.pack, repeat(9), nanos))


def _severity_fields(column: tuple[Any, ...], lane: JsonLane) -> list[bytes]:
    """LogRecord.severity_number and severity_text of every value; raises on a null level."""
    fields: list[Any] = list(map(lane.severities.get, column))  # (only string levels are kept there)
    if None in fields:
        for at, value in enumerate(column):
            if fields[at] is None:
                if value is None:
                    raise ValueError("null level")
                fields[at] = severity_fields(lane, value)
    return fields


def _encode_run(lines: list[Any], objects: list[dict[str, Any]], shape: tuple[str, ...], lane: JsonLane,
                file_attributes: bytes, observed_field: bytes) -> tuple[list[bytes], list[bytes]] | None:
    """(record heads, records) of a run of objects of one shape, or None when a line needs the line-by-line lane."""
    parts: list[Iterable[bytes]] = []
    attributes: list[Iterable[bytes]] = []
    try:
        raws = lines if type(lines[0]) is bytes else list(map(str.encode, lines))
        columns = list(zip(*map(dict.values, objects), strict=True)) if shape else []
        for key, column in zip(shape, columns, strict=True):
            if key == lane.time_key:
                parts.insert(0, _time_fields(column, lane))
            if key == lane.severity_key:
                parts.append(_severity_fields(column, lane))
            attributes.extend(_attribute_parts(key, column))
    except Exception:  # whatever it is, the line-by-line lane meets it on its line and decides
        return None
    parts.append(map(_BODY_HEADS.__getitem__, map(len, raws)))
    parts.append(raws)
    parts.append(repeat(file_attributes))
    parts.extend(attributes)
    parts.append(repeat(observed_field))
    records = list(map(b"".join, zip(*parts, strict=False)))  # (the constants repeat without end)
    return list(map(_RECORD_HEADS.__getitem__, map(len, records))), records


def _loads(line: Any) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def add_json_batch(buffer: RecordBuffer, lines: list[Any], lane: JsonLane, file_attributes: bytes,
                   file_keys: frozenset[str], observed: int, resource: Mapping[str, Any] | None,
                   fallback: Callable[[str], list[Entry]]) -> None:
    """``RecordBuffer.add_json_lines`` for a batch of lines (valid UTF-8 ``bytes``, or ``str``), in column
    passes where lines share a shape, and line by line where they do not."""
    n = len(lines)
    if n < _MIN_RUN:
        buffer.add_json_lines(lines, lane, file_attributes, file_keys, observed, resource, fallback)
        return
    try:
        objects = list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        objects = list(map(_loads, lines))
    kinds = list(map(type, objects))
    shapes: list[tuple[str, ...] | None] = list(map(tuple, objects)) if kinds.count(dict) == n else \
        [tuple(o) if k is dict else None for o, k in zip(objects, kinds, strict=True)]
    runs: list[tuple[int, int, tuple[str, ...] | None]] = []
    if shapes.count(shapes[0]) == n:  # one logger, one shape: the common case
        runs.append((0, n, shapes[0]))
    else:
        start = 0
        for shape, same in groupby(shapes):
            end = start + sum(1 for _ in same)
            runs.append((start, end, shape))
            start = end
    required = tuple(k for k in (lane.time_key, lane.severity_key) if k is not None)
    observed_field = b"\x59" + _FIXED64.pack(observed)  # LogRecord.observed_time_unix_nano (field 11)
    slow_from = 0  # lines from here up to the current run go line by line, together
    for start, end, shape in runs:
        encoded = None
        if end - start >= _MIN_RUN and shape is not None and file_keys.isdisjoint(shape) \
                and all(k in shape for k in required):
            encoded = _encode_run(lines[start:end], objects[start:end], shape, lane, file_attributes,
                                  observed_field)
        if encoded is None:
            continue
        if slow_from < start:
            buffer.add_json_lines(lines[slow_from:start], lane, file_attributes, file_keys, observed, resource,
                                  fallback)
        heads, records = encoded
        buffer.add_encoded(chain.from_iterable(zip(heads, records, strict=True)), len(records), sum(map(len, records)),
                           resource)
        slow_from = end
    if slow_from < n:
        buffer.add_json_lines(lines[slow_from:], lane, file_attributes, file_keys, observed, resource, fallback)
