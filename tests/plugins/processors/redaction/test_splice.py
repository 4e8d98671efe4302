"""Redaction hands on the request's exact bytes after a change (items.splice, gateway.wirebytes.rewritten).

Each test runs a real redaction processor inside an attachment of the request's bytes, as the receiver does, with
the graph's ``ForgetWireBytes`` behind it, and checks what the next consumer is offered: bytes that parse to the
redacted batch, the received bytes themselves when nothing changed, or none when they cannot be had by splicing.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from gateway._host.telemetry import Telemetry
from gateway.component import Batch, Kind, Signal, consume, count_items
from gateway.configtypes import decode, validate_tree
from gateway.helpers import native
from gateway.testing import any_value, settings_for
from gateway.wirebytes import ForgetWireBytes, WireBatch, _registry, _unchanged, attached, wire_bytes
from plugins.processors.redaction import items
from plugins.processors.redaction.factory import factory
from plugins.processors.redaction.rules import RuleSet

from .generators import EMAIL, field, wire_requests

CONFIG = {"allow_all_keys": True, "detectors": ["email"], "blocked_key_patterns": ["(^|\\.)password$"]}


class Next:
    """What the processor hands on: the batch and the bytes ``wire_bytes`` offers for it then."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes | None, Batch]] = []

    async def _record(self, batch: Batch) -> None:
        self.seen.append((wire_bytes(batch), batch))

    consume_traces = consume_logs = _record


async def redact(batch: Batch, data: bytes, signal: Signal = Signal.TRACES,
                 config: dict[str, Any] | None = None) -> bytes | None:
    """Runs ``batch`` (parsed from ``data``) through redaction; the bytes offered after it."""
    cfg = decode(factory.create_default_config(), config or CONFIG)
    assert validate_tree(cfg) == []
    after = Next()
    settings = settings_for(Kind.PROCESSOR, "redaction", signal, Telemetry())
    processor = factory.create_fn(signal)(settings, cfg, ForgetWireBytes(after))  # type: ignore[misc]
    with attached(batch, data):
        await consume(processor, signal, batch)
    assert _registry == {} and _unchanged == {}, "the hand-over's exit leaves nothing behind"
    [(offered, handed)] = after.seen
    assert handed is batch
    return offered


def spans_request(shape: list[list[int]], pii: set[tuple[int, int, int]]) -> ExportTraceServiceRequest:
    """shape[i][j] spans in scope j of resource i; the spans at ``pii`` carry an e-mail address."""
    request = ExportTraceServiceRequest()
    for i, scopes in enumerate(shape):
        rs = request.resource_spans.add()
        rs.resource.attributes.add(key="service.name", value=any_value(f"svc-{i}"))
        for j, count in enumerate(scopes):
            ss = rs.scope_spans.add()
            ss.scope.name = f"scope-{i}-{j}"
            for k in range(count):
                span = ss.spans.add(name=f"span-{i}-{j}-{k}", trace_id=bytes([i + 1, j + 1, k + 1]) * 4 + bytes(4),
                                    span_id=bytes([k + 1]) * 8)
                span.attributes.add(key="session.id", value=any_value(f"{i}-{j}-{k}" * 5))
                if (i, j, k) in pii:
                    span.attributes.add(key="user.email", value=any_value(EMAIL))
                span.attributes.add(key="http.route", value=any_value("/api/orders/{id}"))
    return request


def redacted(offered: bytes | None, batch: ExportTraceServiceRequest) -> None:
    """The contract: the bytes offered parse to the batch as redaction left it, and no address is left."""
    assert offered is not None
    assert type(batch).FromString(offered) == batch
    assert type(batch).FromString(offered).SerializeToString() == batch.SerializeToString()
    assert EMAIL.encode() not in offered


@pytest.mark.parametrize(("shape", "pii"), [
    ([[5]], {(0, 0, 2)}),
    ([[5]], {(0, 0, 0), (0, 0, 4)}),  # the first and the last item
    ([[3, 0, 4], [2], [1, 6]], {(0, 0, 0), (0, 2, 3), (1, 0, 1), (2, 1, 5)}),
    ([[1]], {(0, 0, 0)}),
])
async def test_changed_spans_are_spliced_into_the_received_bytes(
        shape: list[list[int]], pii: set[tuple[int, int, int]]) -> None:
    batch = spans_request(shape, pii)
    data = batch.SerializeToString()
    offered = await redact(batch, data)
    redacted(offered, batch)
    assert offered != data
    for i, j, k in pii:  # the redacted spans are the ones that changed, each in place
        span = batch.resource_spans[i].scope_spans[j].spans[k]
        assert span.attributes[1].key == "user.email" and span.attributes[1].value.string_value != EMAIL


async def test_a_request_without_a_change_keeps_the_received_bytes_themselves() -> None:
    batch = spans_request([[4, 2]], set())
    data = batch.SerializeToString()
    assert await redact(batch, data) is data


async def test_events_and_links_changed() -> None:
    batch = spans_request([[3]], set())
    spans = batch.resource_spans[0].scope_spans[0].spans
    spans[0].events.add(name="login", time_unix_nano=5).attributes.add(key="who", value=any_value(EMAIL))
    spans[2].links.add(trace_id=b"\x07" * 16, span_id=b"\x07" * 8).attributes.add(
        key="contact", value=any_value(f"mail {EMAIL} now"))
    offered = await redact(batch, batch.SerializeToString())
    redacted(offered, batch)
    assert spans[0].events[0].attributes[0].value.string_value != EMAIL


async def test_a_request_in_another_field_order_with_unknown_fields() -> None:
    """Scopes after their spans, resources after their scopes, unknown fields between everything, a key
    blocked by name (no address at all) and a flagged span's own unknown field (dropped): still exact."""
    reference = spans_request([[2, 1]], {(0, 0, 1)})
    rs = reference.resource_spans[0]
    spans = [[span.SerializeToString() for span in ss.spans] for ss in rs.scope_spans]
    flagged = spans[0][1] + field(30, f"unknown {EMAIL}".encode())
    secret = spans[1][0] + field(9, field(1, b"db.password") + field(2, field(1, b"hunter2")))
    scope_spans = [
        field(2, spans[0][0]) + field(7, b"unknown scope text") + field(2, flagged)
        + field(1, rs.scope_spans[0].scope.SerializeToString()) + field(3, b"https://schema/1"),
        field(2, secret) + field(1, rs.scope_spans[1].scope.SerializeToString()),
    ]
    data = field(1, field(2, scope_spans[0]) + field(6, b"unknown resource text") + field(2, scope_spans[1])
                 + field(1, rs.resource.SerializeToString())) + field(9, b"unknown request text")
    batch = ExportTraceServiceRequest.FromString(data)
    offered = await redact(batch, data)
    redacted(offered, batch)
    assert offered is not None and b"hunter2" not in offered and b"unknown scope text" in offered
    assert b"unknown " + EMAIL.encode() not in offered


#: Envelopes the item view cannot vouch for (it re-serializes them); the C splice copies them byte for byte.
VIEW_ONLY = ("duplicate resource", "empty resource", "non-canonical scope")


@pytest.mark.parametrize("native_twin", [
    pytest.param(True, id="c", marks=pytest.mark.skipif(native.spanscan is None, reason="not built")),
    pytest.param(False, id="python")])
@pytest.mark.parametrize("case", ["resource attribute", "scope attribute", "resource key", "scope key",
                                  *VIEW_ONLY, "unknown field of an envelope"])
async def test_envelopes_the_splice_cannot_vouch_for_forget_the_bytes(
        case: str, native_twin: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed envelope always forgets the bytes. The view's splice also forgets them for envelopes it would
    re-serialize differently; the C splice copies envelopes as they came, so its bytes parse to the batch."""
    if not native_twin:
        monkeypatch.setattr(items, "spanscan", None)
    batch = spans_request([[2]], {(0, 0, 1)})
    rs = batch.resource_spans[0]
    data = batch.SerializeToString()
    if case == "resource attribute":
        rs.resource.attributes.add(key="owner", value=any_value(EMAIL))
        data = batch.SerializeToString()
    elif case == "scope attribute":
        rs.scope_spans[0].scope.attributes.add(key="owner", value=any_value(EMAIL))
        data = batch.SerializeToString()
    elif case in ("resource key", "scope key"):  # replaced because of its key: nothing for the scanner to find
        envelope = rs.resource if case == "resource key" else rs.scope_spans[0].scope
        envelope.attributes.add(key="db.password", value=any_value("hunter2"))
        data = batch.SerializeToString()
    elif case == "duplicate resource":  # the parser merges both occurrences; the view would keep the last
        extra = Resource()
        extra.attributes.add(key="host.name", value=any_value("h1"))
        data = field(1, field(1, extra.SerializeToString()) + rs.SerializeToString())
    elif case == "empty resource":  # present but empty: the view has no presence for bytes
        data = field(1, field(1, b"") + field(2, rs.scope_spans[0].SerializeToString()))
    elif case == "non-canonical scope":  # the scope's version before its name
        scope = InstrumentationScope(name="lib", version="1.0")
        encoded = field(2, b"1.0") + field(1, b"lib")
        assert encoded != scope.SerializeToString()
        data = field(1, field(1, rs.resource.SerializeToString()) + field(
            2, field(1, encoded) + b"".join(field(2, s.SerializeToString()) for s in rs.scope_spans[0].spans)))
    else:  # an address in a field of the request no schema knows: the whole batch drops such fields
        data = data + field(5, EMAIL.encode())
    batch = ExportTraceServiceRequest.FromString(data)
    offered = await redact(batch, data)
    if native_twin and case in VIEW_ONLY:
        redacted(offered, batch)
    else:
        assert offered is None
    assert EMAIL.encode() not in batch.SerializeToString() and b"hunter2" not in batch.SerializeToString()


async def test_modes_that_walk_every_item_forget_the_bytes() -> None:
    for config in ({**CONFIG, "allow_all_keys": False, "allowed_keys": ["session.id", "http.route"]},
                   {**CONFIG, "redact_all_types": True}):
        batch = spans_request([[3]], {(0, 0, 1)})
        assert await redact(batch, batch.SerializeToString(), config=config) is None


def logs_request() -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for i in range(2):
        rl = request.resource_logs.add()
        rl.resource.attributes.add(key="service.name", value=any_value(f"svc-{i}"))
        records = rl.scope_logs.add().log_records
        for k in range(3):
            record = records.add(time_unix_nano=k + 1)
            record.body.string_value = f"order {k} shipped" if (i, k) != (1, 2) else f"mail to {EMAIL}"
            record.attributes.add(key="user", value=any_value(EMAIL if (i, k) == (0, 1) else "anonymous"))
    return request


async def test_log_records_are_spliced_and_a_body_action_forgets_the_bytes() -> None:
    batch = logs_request()
    offered = await redact(batch, batch.SerializeToString(), Signal.LOGS)
    assert offered is not None and EMAIL.encode() not in offered
    assert ExportLogsServiceRequest.FromString(offered) == batch

    batch = logs_request()  # every body changes: not a splice of a few records
    assert await redact(batch, batch.SerializeToString(), Signal.LOGS,
                        {**CONFIG, "body_action": "length"}) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
async def test_both_twins_redact_alike_and_the_c_splice_offers_bytes_wherever_the_view_does(
        data: Any, logs: bool) -> None:
    """On requests as a sender may write them (envelopes with an address, unknown fields, repeated and empty
    envelopes, empty items, any order): the C split and splice and the item view leave the same batch, and
    every bytes offered parse to it; the C splice offers bytes whenever the view's does, and also where only
    the view's re-serialized envelopes stood in the way."""
    request = data.draw(wire_requests(logs))
    signal = Signal.LOGS if logs else Signal.TRACES
    parse = (ExportLogsServiceRequest if logs else ExportTraceServiceRequest).FromString
    outcomes = []
    with pytest.MonkeyPatch.context() as patch:
        for twin in (items.spanscan, None):
            patch.setattr(items, "spanscan", twin)
            batch = parse(request)
            offered = await redact(batch, request, signal)
            if offered is not None:
                assert parse(offered) == batch
                assert EMAIL.encode() not in offered
            outcomes.append((offered, batch))
    (c_offered, c_batch), (view_offered, view_batch) = outcomes
    assert c_batch == view_batch
    if view_offered is not None:
        assert c_offered is not None
    if native.spanscan is not None:  # the C splice forgets the bytes only for a hit in the envelopes
        scanner = RuleSet(decode(factory.create_default_config(), CONFIG)).scanner
        assert scanner is not None
        _, in_envelope = items.split(request, signal, parse(request)).locate(scanner.find(request))
        assert (c_offered is None) is in_envelope


class WireNext(Next):
    """Also takes wire batches, as the graph's ``ForgetWireBytes`` does: records them parsed, with their bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.wire: list[WireBatch] = []

    async def consume_wire(self, batch: WireBatch) -> None:
        self.wire.append(batch)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([CONFIG, {**CONFIG, "summary": "debug"}, {"detectors": ["email"]}]))
async def test_a_request_held_as_bytes_is_redacted_as_its_parse_would_be(data: Any, config: dict[str, Any]) -> None:
    """The otlp receiver hands valid requests on as bytes (``consume_wire``): redaction parses only the flagged
    spans and splices them back. What comes out parses to what ``process_traces`` makes of the whole parse, on
    every request the generators write, and the received batch itself never changes."""
    request = data.draw(wire_requests(False))
    expected = ExportTraceServiceRequest.FromString(request)
    await redact(expected, request, Signal.TRACES, config)
    cfg = decode(factory.create_default_config(), config)
    after = WireNext()
    settings_ = settings_for(Kind.PROCESSOR, "redaction", Signal.TRACES, Telemetry())
    processor = factory.create_fn(Signal.TRACES)(settings_, cfg, ForgetWireBytes(after))  # type: ignore[misc]
    received = WireBatch(Signal.TRACES, [request], [count_items(Signal.TRACES, ExportTraceServiceRequest.FromString(
        request))])
    await processor.consume_wire(received)
    assert received.data == request  # never changed: a change is new bytes
    if after.wire:  # done on the bytes
        [out] = after.wire
        assert ExportTraceServiceRequest.FromString(out.data) == expected
        assert out.items == received.items
        assert native.spanscan is not None, "without the C walk the request is parsed"
    else:  # parsed (a hit in the envelopes, or no C walk): the message path, with the bytes while it lasts
        [(_, batch)] = after.seen
        assert batch == expected
    assert _registry == {} and _unchanged == {}


@pytest.mark.skipif(native.spanscan is None, reason="the byte path needs the C walk")
async def test_bytes_go_on_unchanged_when_clean_and_as_new_bytes_when_a_span_changed() -> None:
    clean = spans_request([[3, 2]], set()).SerializeToString()
    dirty = spans_request([[3, 2]], {(0, 1, 0)}).SerializeToString()
    cfg = decode(factory.create_default_config(), CONFIG)
    after = WireNext()
    settings_ = settings_for(Kind.PROCESSOR, "redaction", Signal.TRACES, Telemetry())
    processor = factory.create_fn(Signal.TRACES)(settings_, cfg, ForgetWireBytes(after))  # type: ignore[misc]
    unchanged_batch = WireBatch(Signal.TRACES, [clean], [5])
    await processor.consume_wire(unchanged_batch)
    changed_batch = WireBatch(Signal.TRACES, [dirty], [5])
    await processor.consume_wire(changed_batch)
    first, second = after.wire
    assert first is unchanged_batch  # nothing flagged changed: the received bytes go on, never copied
    assert second is not changed_batch and changed_batch.data == dirty
    assert EMAIL.encode() in dirty and EMAIL.encode() not in second.data
    expected = ExportTraceServiceRequest.FromString(dirty)
    await redact(expected, dirty)
    assert ExportTraceServiceRequest.FromString(second.data) == expected and second.items == 5
    assert after.seen == []  # neither was parsed whole
