"""The serialized form spans wait in: split a request into per-trace runs of span bytes, and join runs back.

A request is serialized once (one C call) and walked in Python at the envelope level and once per span, reading
only the span's length and its trace id, which the canonical encoding puts first (``0a 10 <16 bytes>``). Spans
of one trace that follow each other in a scope become one *run*: a slice of the request bytes that is already a
sequence of framed ``ScopeSpans.spans`` entries, so it is stored as it is and needs no re-framing on the way out.
The resource and the scope a run came from are kept once per distinct (resource, scope) pair as an
:class:`Envelope` of raw header bytes, shared by every run that came with them.

Output goes the other way: runs are grouped by envelope and concatenated under freshly framed ``ResourceSpans``
and ``ScopeSpans`` headers into request bytes, which one ``FromString`` turns back into a message. Attributes
for kept spans are appended to each span's bytes (``stamp``), which is several times cheaper than adding them
to parsed messages.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.helpers.native import spanscan
from gateway.helpers.protowire import varint

__all__ = ["Envelope", "EnvelopeTable", "Run", "assemble", "split_request", "stamp", "varint"]

_U64 = struct.Struct("<Q").unpack_from
_SPAN = 0x12  # ScopeSpans.spans (field 2, length-delimited)
_SCOPE_SPANS = 0x12  # ResourceSpans.scope_spans
_RESOURCE_SPANS = 0x0A  # ExportTraceServiceRequest.resource_spans
#: Span length → its ``ScopeSpans.spans`` tag and length prefix; span sizes repeat, so this stays small.
_SPAN_FRAMES: dict[int, bytes] = {}


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _skip_field(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the payload, end of the field) of any field starting at ``pos``."""
    tag, pos = _read_varint(buf, pos)
    wire = tag & 7
    if wire == 0:
        return tag, pos, _read_varint(buf, pos)[1]
    if wire == 1:
        return tag, pos, pos + 8
    if wire == 5:
        return tag, pos, pos + 4
    if wire == 2:
        length, pos = _read_varint(buf, pos)
        return tag, pos, pos + length
    raise ValueError(f"unsupported wire type {wire}")


class Envelope:
    """The raw header fields of one ResourceSpans and one ScopeSpans (everything but their children)."""

    __slots__ = ("__weakref__", "_resource", "resource_header", "scope_header")

    def __init__(self, resource_header: bytes, scope_header: bytes) -> None:
        self.resource_header = resource_header
        self.scope_header = scope_header
        self._resource: Any = None

    def resource(self) -> Any:
        """The decoded Resource, for policies that read resource attributes; decoded once per envelope."""
        if self._resource is None:
            from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

            self._resource = ResourceSpans.FromString(self.resource_header).resource
        return self._resource


class EnvelopeTable:
    """Interns envelopes, so each distinct one is held once however many buffered runs point at it.

    Weak values: an envelope lives exactly as long as some buffered or cached run still refers to it.
    """

    def __init__(self) -> None:
        self._table: weakref.WeakValueDictionary[tuple[bytes, bytes], Envelope] = weakref.WeakValueDictionary()

    def get(self, resource_header: bytes, scope_header: bytes) -> Envelope:
        key = (resource_header, scope_header)
        envelope = self._table.get(key)
        if envelope is None:
            envelope = Envelope(resource_header, scope_header)
            self._table[key] = envelope
        return envelope

    def __len__(self) -> int:
        return len(self._table)


#: One run: trace id, framed span bytes, span count, earliest start, latest end (0 when not read), has a root span,
#: the status codes of its spans (bit c for code c = 0 UNSET, 1 OK, 2 ERROR, bit 3 for any other; -1 when not read).
Run = tuple[bytes, bytes, int, int, int, bool, int]
#: Status code -> its bit in a run's codes.
STATUS_BITS = {0: 1, 1: 2, 2: 4}
_OTHER_STATUS = 8


def _scope_runs(buf: bytes, start: int, end: int, spans: Any, want_times: bool,
                want_root: bool, want_status: bool, runs: list[Run]) -> bytes:
    """Append the runs of one ScopeSpans payload ``buf[start:end]``; return its header bytes.

    ``spans`` is the same scope's repeated field from the parsed request, read for start and end times only
    when ``want_times`` (and status codes when ``want_status``): two attribute reads cost less than walking a
    span's header fields in Python. The per-span path is kept to a handful of operations: one ``startswith``
    compares tag, length and trace id.
    """
    header = b""
    pos = start
    run_key = b"\xff"  # matches no span: a span never starts with a 0xff byte
    run_tid = b""
    run_start = -1
    count = first = last = 0
    root = False
    no_codes = 0 if want_status else -1
    codes = no_codes
    span_iter = iter(spans) if want_times or want_status else None
    while pos < end:
        if buf[pos] != _SPAN:
            _, _, field_end = _skip_field(buf, pos)
            header += buf[pos:field_end]
            pos = field_end
            continue
        byte = buf[pos + 1]
        if byte < 0x80:
            body = pos + 2
            span_end = body + byte
        elif buf[pos + 2] < 0x80:  # most spans are 128 B to 16 KiB: a two-byte length
            body = pos + 3
            span_end = body + ((byte & 0x7F) | (buf[pos + 2] << 7))
        else:
            length, body = _read_varint(buf, pos + 1)
            span_end = body + length
        if not buf.startswith(run_key, body) or body == span_end:
            if run_start >= 0:
                runs.append((run_tid, buf[run_start:pos], count, first, last, root, codes))
            if body < span_end and buf[body] == 0x0A:
                run_key = buf[body:body + 2 + buf[body + 1]]
                run_tid = run_key[2:]
            else:  # no trace id: invalid, but kept together rather than lost
                run_key = buf[body:body + 1] or b"\xff"
                run_tid = b""
            run_start, count, first, last, root, codes = pos, 0, 0, 0, False, no_codes
        count += 1
        if span_iter is not None:
            span = next(span_iter)
            if want_times:
                begin = span.start_time_unix_nano
                finish = span.end_time_unix_nano
                if count == 1 or begin < first:
                    first = begin
                if finish > last:
                    last = finish
            if want_status:  # HasField first: reading an absent status makes a message wrapper, which costs more
                codes |= STATUS_BITS.get(span.status.code, _OTHER_STATUS) if span.HasField("status") else 1
        if want_root and not root:
            root = _is_root(buf, body, span_end)
        pos = span_end
    if run_start >= 0:
        runs.append((run_tid, buf[run_start:pos], count, first, last, root, codes))
    return header


def _is_root(buf: bytes, pos: int, end: int) -> bool:
    """True when the span at ``buf[pos:end]`` has no parent_span_id (field 4), reading fields 1-3 only."""
    while pos < end:
        tag = buf[pos]
        if tag == 0x22:
            return buf[pos + 1] == 0
        if tag > 0x22 or tag & 7 != 2:
            return True
        length, body = _read_varint(buf, pos + 1)
        pos = body + length
    return True


def split_request(buf: bytes, request: Any, want_times: bool = False, want_root: bool = False,
                  want_status: bool = False) -> list[tuple[bytes, bytes, list[Run]]]:
    """``(resource header, scope header, runs)`` per ScopeSpans of the serialized ``request`` ``buf``.

    ``request`` is ``buf`` parsed (the Python twin reads span times and status codes from it; None unless
    ``want_times`` or ``want_status``). With the C twin (``gateway.helpers.native``) the whole walk reads ``buf``
    only, and reading a span's times and status code costs about as much as reading one of them.
    """
    if spanscan is not None:
        return spanscan.split_request(buf, want_times, want_root, want_status)
    return split_request_python(buf, request, want_times, want_root, want_status)


def split_request_python(buf: bytes, request: Any, want_times: bool = False, want_root: bool = False,
                         want_status: bool = False) -> list[tuple[bytes, bytes, list[Run]]]:
    """The Python twin of ``_spanscan.split_request``: the reference, and what runs without the C module."""
    out: list[tuple[bytes, bytes, list[Run]]] = []
    pos, end = 0, len(buf)
    resource_index = 0
    while pos < end:
        tag, body, field_end = _skip_field(buf, pos)
        if tag != _RESOURCE_SPANS:
            pos = field_end
            continue
        resource_header = b""
        scopes: list[tuple[bytes, list[Run]]] = []
        scope_index = 0
        resource_spans = request.resource_spans[resource_index] if want_times or want_status else None
        inner = body
        while inner < field_end:
            inner_tag, inner_body, inner_end = _skip_field(buf, inner)
            if inner_tag == _SCOPE_SPANS:
                runs: list[Run] = []
                spans = resource_spans.scope_spans[scope_index].spans if resource_spans is not None else None
                scope_header = _scope_runs(buf, inner_body, inner_end, spans, want_times, want_root, want_status,
                                           runs)
                scopes.append((scope_header, runs))
                scope_index += 1
            else:
                resource_header += buf[inner:inner_end]
            inner = inner_end
        out.extend((resource_header, scope_header, runs) for scope_header, runs in scopes)
        resource_index += 1
        pos = field_end
    return out


def _framed(tag: int, parts: Sequence[bytes]) -> list[bytes]:
    return [bytes((tag,)) + varint(sum(map(len, parts))), *parts]


def stamp(run: bytes, suffix: bytes) -> bytes:
    """``run`` with ``suffix`` (serialized Span fields, e.g. attributes) appended to every span in it.

    Protobuf merges repeated fields wherever they appear in a message, so appending ``4a <len> <KeyValue>``
    to a span's bytes adds an attribute; only each span's length prefix has to be rewritten.
    """
    if spanscan is not None:
        return spanscan.stamp(run, suffix)
    return stamp_python(run, suffix)


def stamp_python(run: bytes, suffix: bytes) -> bytes:
    """The Python twin of ``_spanscan.stamp``."""
    parts: list[bytes] = []
    append = parts.append
    frames = _SPAN_FRAMES
    pos, end, extra = 0, len(run), len(suffix)
    while pos < end:
        byte = run[pos + 1]
        if byte < 0x80:
            length, body = byte, pos + 2
        elif run[pos + 2] < 0x80:
            length, body = (byte & 0x7F) | (run[pos + 2] << 7), pos + 3
        else:
            length, body = _read_varint(run, pos + 1)
        span_end = body + length
        frame = frames.get(length + extra)
        if frame is None:
            frame = b"\x12" + varint(length + extra)
            if length < 1 << 14:
                frames[length + extra] = frame
        append(frame)
        append(run[body:span_end])
        append(suffix)
        pos = span_end
    return b"".join(parts)


def assemble(items: Iterable[tuple[Envelope, bytes]]) -> bytes:
    """Request bytes holding every ``(envelope, run bytes)``, runs of one envelope sharing one ScopeSpans."""
    by_resource: dict[bytes, dict[bytes, list[bytes]]] = {}
    for envelope, run in items:
        scopes = by_resource.setdefault(envelope.resource_header, {})
        scopes.setdefault(envelope.scope_header, []).append(run)
    parts: list[bytes] = []
    for resource_header, scopes in by_resource.items():
        resource_parts = [resource_header]
        for scope_header, runs in scopes.items():
            resource_parts.extend(_framed(_SCOPE_SPANS, [scope_header, *runs]))
        parts.extend(_framed(_RESOURCE_SPANS, resource_parts))
    return b"".join(parts)
