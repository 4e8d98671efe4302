"""tail_sampling takes requests held as bytes (``consume_wire``: the otlp receiver's valid requests, the batch
processor's batches) and decides exactly as it does on their parse, without parsing them."""

from __future__ import annotations

import random
from typing import Any

from gateway import spanscan
from gateway.component import Signal, count_items
from gateway.wirebytes import WireBatch

from .test_processor import Clock, make, workload
from .traces import request, span, tid


def kept(sink: Any) -> list[tuple[bytes, bytes]]:
    """Every kept span with its resource, serialized, in a stable order."""
    return sorted((rs.resource.SerializeToString(deterministic=True), s.SerializeToString(deterministic=True))
                  for b in sink.batches[Signal.TRACES] for rs in b.resource_spans for ss in rs.scope_spans
                  for s in ss.spans)


#: Requests a ``Counting`` batch was parsed for.
PARSED: list[WireBatch] = []


class Counting(WireBatch):
    def message(self) -> Any:
        PARSED.append(self)
        return super().message()


async def test_bytes_and_their_parse_give_the_same_decisions_and_the_same_kept_spans() -> None:
    outcomes = []
    for as_bytes in (False, True):
        clock = Clock()
        processor, sink = make(clock, decision_wait="10s")
        requests, *_ = workload(random.Random(5))
        PARSED.clear()
        for batch in requests:
            if as_bytes:
                await processor.consume_wire(Counting(Signal.TRACES, [batch.SerializeToString()],
                                                      [count_items(Signal.TRACES, batch)]))
            else:
                await processor.consume_traces(batch)
            clock.now += 0.1
        clock.now += 10
        await processor.decide_due()
        # Canonical encodings (trace id first) are split from the bytes alone; without C, the Python split
        # reads times and status codes from the parse.
        assert PARSED == [] or spanscan is None
        outcomes.append((kept(sink), processor.pending_traces, processor.buffered_spans))
    assert outcomes[0] == outcomes[1] and outcomes[0][0]


def _field(number: int, payload: bytes) -> bytes:
    size, length = b"", len(payload)
    while length >= 0x80:
        size += bytes([length & 0x7F | 0x80])
        length >>= 7
    return bytes([number << 3 | 2]) + size + bytes([length]) + payload


async def test_spans_not_encoded_trace_id_first_are_taken_from_the_parse() -> None:
    """A sender may put a span's fields in any order; a run then has no trace id up front, and the request is
    parsed and serialized once (canonically), as for a message."""
    clock = Clock()
    processor, sink = make(clock, decision_wait="1s")
    message = request(({"service.name": "a"}, [span(7, 0, root=True, status=2), span(7, 1)]))
    spans = [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]
    reordered = b""
    for s in spans:  # every field but the trace id, then the trace id
        rest = type(s)()
        rest.CopyFrom(s)
        rest.ClearField("trace_id")
        reordered += _field(2, rest.SerializeToString() + _field(1, s.trace_id))
    scope = message.resource_spans[0].scope_spans[0]
    data = _field(1, _field(1, message.resource_spans[0].resource.SerializeToString())
                  + _field(2, _field(1, scope.scope.SerializeToString()) + reordered))
    taken = WireBatch(Signal.TRACES, [data], [2])
    assert taken.message().resource_spans[0].scope_spans[0].spans[0].trace_id == tid(7)
    await processor.consume_wire(taken)
    clock.now += 2
    await processor.decide_due()
    assert sorted(s.span_id for s in sink.spans()) == sorted(s.span_id for s in spans)  # the error kept it whole
