"""gateway.wirebytes.WireBatch: batches kept as the bytes they came as, through a real gateway and OTLP sink.

What must hold: an unchanged batch leaves byte for byte as it was received (joined, never parsed and serialized
again); a change made by a mutating component is always what is sent; OTLP/JSON input (no bytes) still works;
a batch split at send_batch_max_size keeps every item; a fan-out to a wire exporter and a mutating one gives
each what it must see.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import Factory, Kind, Signal, hookimpl
from gateway._host.config import build_config
from gateway._host.fanout import FanOut
from gateway._host.plan import NodeKey
from gateway._host.registry import load_registry
from gateway._host.service import Service
from gateway.component import ComponentID, count_items
from gateway.helpers.batching import cut, join, measure
from gateway.helpers.protowire import field
from gateway.otlpjson import encode as json_encode
from gateway.testing import Sink, make_traces
from gateway.testing.otlp_sink import OtlpSink
from gateway.wirebytes import WireBatch, _registry, attached, hand_on, message_of, wire_bytes

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

# ---------------------------------------------------------------- a mutating exporter, for the fan-out


@dataclass(frozen=True)
class MutConfig:
    #: unused
    label: str = ""


#: What every ``mutsink`` exporter was handed, after it changed it.
MUTATED: list[ExportTraceServiceRequest] = []


class MutatingSink:
    """An exporter whose factory says ``mutates_data``: it renames every span of the batch it is handed."""

    def __init__(self, settings: Any, config: MutConfig) -> None:
        pass

    async def start(self, host: Any) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.name += "!"
        MUTATED.append(batch)


#: What every ``recsink`` exporter was handed: the batches themselves, kept (as a queue would keep them).
RECORDED: list[ExportTraceServiceRequest] = []


class RecordingSink(MutatingSink):
    """A read-only exporter that keeps the batches it is handed, to read them later."""

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        RECORDED.append(batch)


plugin = SimpleNamespace(otelgw_component_factories=hookimpl(lambda: [
    Factory("mutsink", Kind.EXPORTER, MutConfig, create_traces=MutatingSink, mutates_data=True),
    Factory("recsink", Kind.EXPORTER, MutConfig, create_traces=RecordingSink)]))


@pytest.fixture(autouse=True)
def _clean() -> Any:
    MUTATED.clear()
    RECORDED.clear()
    yield
    assert _registry == {}, "wire bytes left attached"


@pytest.fixture
async def gateway_for(sink: OtlpSink) -> AsyncIterator[Any]:
    """Start a gateway: OTLP in (gRPC and HTTP) → ``processors`` → ``exporters``; stopped at the end."""
    services: list[Service] = []

    async def start(processors: dict[str, Any], exporters: list[str], *, grpc_exporter: dict[str, Any] | None = None,
                    storage: str = "", pipelines: dict[str, Any] | None = None,
                    chain: list[str] | None = None) -> Service:
        raw: dict[str, Any] = {
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"},
                                                 "http": {"endpoint": "127.0.0.1:0"}}}},
            "processors": processors,
            "exporters": {
                "otlp_grpc": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}, **(grpc_exporter or {})},
                "otlp_http": {"endpoint": sink.http_endpoint},
                "mutsink": None,
                "recsink": None,
            },
            "connectors": {"forward": None},
            "service": {"telemetry": {"metrics": {"address": ""}},
                        "pipelines": {"traces": {"receivers": ["otlp"],
                                                 "processors": list(processors) if chain is None else chain,
                                                 "exporters": exporters}, **(pipelines or {})}},
        }
        if storage:
            raw["extensions"] = {"file_storage": {"directory": storage}}
            raw["service"]["extensions"] = ["file_storage"]
        registry = load_registry([plugin])
        service = Service(build_config(raw, registry), registry)
        await service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        await service.shutdown()  # a no-op for one the test stopped itself


def receiver(service: Service) -> Any:
    return service.graph.find(Kind.RECEIVER, "otlp")


async def send_grpc(service: Service, *bodies: bytes) -> None:
    """Send every body at once (so the batch processor can gather them) over gRPC, as raw bytes."""
    async with grpc.aio.insecure_channel(receiver(service).grpc_address) as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        await asyncio.gather(*(call(body, timeout=10) for body in bodies))


async def send_http(service: Service, body: bytes, content_type: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"http://{receiver(service).http_address}/v1/traces", data=body,
            headers={"Content-Type": content_type}) as response:
        assert response.status == 200, await response.text()


async def arrived(sink: OtlpSink, items: int) -> None:
    """Wait until the sink holds ``items`` spans (the exporter answers once queued, then sends)."""
    for _ in range(500):
        if sink.item_count(Signal.TRACES) >= items:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{sink.item_count(Signal.TRACES)} of {items} spans arrived")


def noncanonical(batch: ExportTraceServiceRequest) -> bytes:
    """``batch`` serialized with each ResourceSpans' schema_url (field 3) written before its other fields: valid
    protobuf that a parse and serialize would reorder, so only bytes passed on untouched come out equal."""
    return b"".join(field(b"\x0a", field(b"\x1a", b"https://schemas.example/1") + rs.SerializeToString())
                    for rs in batch.resource_spans)


def requests(count: int, spans: int = 10) -> list[bytes]:
    bodies = [noncanonical(make_traces(spans, service=f"svc-{i}")) for i in range(count)]
    for body in bodies:
        assert ExportTraceServiceRequest.FromString(body).SerializeToString() != body
    return bodies


def span_ids(batches: list[Any]) -> list[bytes]:
    return [span.span_id for batch in batches for rs in batch.resource_spans for ss in rs.scope_spans
            for span in ss.spans]


def is_a_join_of(body: bytes, parts: list[bytes]) -> bool:
    return any(b"".join(order) == body for order in itertools.permutations(parts))


BATCH = {"send_batch_size": 30, "timeout": "10s"}

# ---------------------------------------------------------------- through a real gateway


@pytest.mark.parametrize("exporter", ["otlp_grpc", "otlp_http"])
async def test_an_unchanged_batch_leaves_byte_for_byte_as_the_requests_it_joined(
        gateway_for: Any, sink: OtlpSink, exporter: str) -> None:
    service = await gateway_for({"memory_limiter": {"check_interval": "1s", "limit_mib": 100_000},
                                 "batch": BATCH}, [exporter])
    bodies = requests(3)
    await send_grpc(service, *bodies)
    await arrived(sink, 30)
    [received] = sink.received(Signal.TRACES)
    assert received.body and is_a_join_of(received.body, bodies)


@pytest.mark.parametrize("processors", [["batch", "resource"], ["resource", "batch"]])
async def test_a_mutating_processors_change_is_what_is_sent(gateway_for: Any, sink: OtlpSink,
                                                           processors: list[str]) -> None:
    known = {"batch": BATCH, "resource": {"attributes": [{"key": "env", "value": "prod", "action": "upsert"}]}}
    service = await gateway_for({name: known[name] for name in processors}, ["otlp_grpc"])
    bodies = requests(3)
    await send_grpc(service, *bodies)
    await arrived(sink, 30)
    batches = sink.batches(Signal.TRACES)
    assert sum(count_items(Signal.TRACES, b) for b in batches) == 30
    for batch in batches:
        for rs in batch.resource_spans:
            assert {"key": "env", "value": "prod"} in [
                {"key": kv.key, "value": kv.value.string_value} for kv in rs.resource.attributes]
    assert not any(is_a_join_of(r.body, bodies) for r in sink.received(Signal.TRACES))


async def test_json_input_has_no_bytes_and_still_arrives_whole(gateway_for: Any, sink: OtlpSink) -> None:
    service = await gateway_for({"batch": {"send_batch_size": 20, "timeout": "10s"}}, ["otlp_grpc"])
    json_batch, proto_batch = make_traces(10, service="json"), make_traces(10, service="proto")
    await asyncio.gather(send_http(service, json_encode(json_batch), "application/json"),
                         send_http(service, proto_batch.SerializeToString(), "application/x-protobuf"))
    await arrived(sink, 20)
    [received] = sink.received(Signal.TRACES)
    assert sorted(span_ids([received.batch])) == sorted(span_ids([json_batch, proto_batch]))
    by_service = {rs.resource.attributes[0].value.string_value: rs for rs in received.batch.resource_spans}
    assert by_service["json"] == json_batch.resource_spans[0]
    assert by_service["proto"] == proto_batch.resource_spans[0]


async def test_a_batch_split_at_send_batch_max_size_keeps_every_item(gateway_for: Any, sink: OtlpSink) -> None:
    service = await gateway_for({"batch": {"send_batch_size": 12, "send_batch_max_size": 12, "timeout": "200ms"}},
                                ["otlp_grpc"])
    bodies = requests(3)
    await send_grpc(service, *bodies)
    await arrived(sink, 30)
    sent = [ExportTraceServiceRequest.FromString(body) for body in bodies]
    batches = sink.batches(Signal.TRACES)
    assert sorted(span_ids(batches)) == sorted(span_ids(sent))  # every span, once
    assert [count_items(Signal.TRACES, b) for b in batches] == [12, 12, 6]


async def test_fan_out_to_a_wire_exporter_and_a_mutating_one(gateway_for: Any, sink: OtlpSink) -> None:
    service = await gateway_for({"batch": BATCH}, ["otlp_grpc", "mutsink"])
    bodies = requests(3)
    await send_grpc(service, *bodies)
    await arrived(sink, 30)
    [received] = sink.received(Signal.TRACES)
    assert is_a_join_of(received.body, bodies)  # the mutating exporter's rename never reached these bytes
    assert not any(span.name.endswith("!") for span in sink.spans())
    [mutated] = MUTATED
    names = [span.name for rs in mutated.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert len(names) == 30 and all(name.endswith("!") for name in names)


@pytest.mark.parametrize("persistent", [False, True], ids=["memory", "disk"])
async def test_the_exporter_queue_joins_requests_as_bytes(gateway_for: Any, sink: OtlpSink, tmp_path: Path,
                                                          persistent: bool) -> None:
    queue: dict[str, Any] = {"num_consumers": 1, "batch": {"min_size": 30, "flush_timeout": "10s"}}
    if persistent:
        queue["storage"] = "file_storage"
    service = await gateway_for({}, ["otlp_grpc"], grpc_exporter={"sending_queue": queue},
                                storage=str(tmp_path) if persistent else "")
    bodies = requests(3)
    await send_grpc(service, *bodies)
    await arrived(sink, 30)
    [received] = sink.received(Signal.TRACES)
    assert is_a_join_of(received.body, bodies)


async def test_bytes_read_back_from_the_persistent_queue_are_sent_as_they_were(
        gateway_for: Any, sink: OtlpSink, tmp_path: Path) -> None:
    queue = {"num_consumers": 1, "storage": "file_storage"}
    first = await gateway_for({}, ["otlp_grpc"], grpc_exporter={"sending_queue": queue, "timeout": "1s"},
                              storage=str(tmp_path))
    sink.fail_next(1000)  # the backend is down: the request stays on disk
    [body] = requests(1)
    await send_grpc(first, body)
    await first.shutdown()
    sink.clear()
    await gateway_for({}, ["otlp_grpc"], grpc_exporter={"sending_queue": queue}, storage=str(tmp_path))
    await arrived(sink, 10)
    assert [r.body for r in sink.received(Signal.TRACES)] == [body]


@pytest.mark.parametrize("mutating", [False, True], ids=["readonly-downstream", "mutating-downstream"])
async def test_forward_shares_its_batch_unless_a_pipeline_it_feeds_changes_batches(
        gateway_for: Any, sink: OtlpSink, mutating: bool) -> None:
    resource = {"attributes": [{"key": "env", "value": "prod", "action": "upsert"}]}
    service = await gateway_for({"batch": {"send_batch_size": 10}, "resource": resource}, ["recsink", "forward"],
                                pipelines={
        "traces/out": {"receivers": ["forward"], "processors": ["resource" if mutating else "batch"],
                       "exporters": ["otlp_grpc"]}}, chain=[])
    assert service.graph.plan.get(NodeKey(Kind.CONNECTOR, ComponentID("forward"), Signal.TRACES,
                                          out_signal=Signal.TRACES)).mutates_data is mutating
    await send_grpc(service, *requests(1))
    await arrived(sink, 10)
    for rs in sink.batches(Signal.TRACES)[0].resource_spans:
        assert any(kv.key == "env" for kv in rs.resource.attributes) is mutating
    [kept] = RECORDED  # what the read-only exporter beside forward holds was never changed behind its back
    assert not any(kv.key == "env" for rs in kept.resource_spans for kv in rs.resource.attributes)


# ---------------------------------------------------------------- the pieces


def wire_of(*batches: ExportTraceServiceRequest) -> WireBatch:
    return WireBatch(Signal.TRACES, [b.SerializeToString() for b in batches],
                     [count_items(Signal.TRACES, b) for b in batches])


def test_joined_bytes_parse_to_the_merged_message_and_parse_once() -> None:
    a, b = make_traces(3, service="a"), make_traces(4, service="b")
    wire = WireBatch.join(Signal.TRACES, [wire_of(a), wire_of(b)])
    merged = ExportTraceServiceRequest()
    merged.MergeFrom(a)
    merged.MergeFrom(b)
    assert wire.data == a.SerializeToString() + b.SerializeToString()
    assert wire.message() == merged
    assert wire.message() is wire.message()  # parsed once
    assert wire.fresh() == merged and wire.fresh() is not wire.message()
    assert count_items(Signal.TRACES, wire) == 7 and measure(Signal.TRACES, wire, "items") == 7
    assert measure(Signal.TRACES, wire, "bytes") == merged.ByteSize()
    assert message_of(wire) is wire.message() and message_of(a) is a


def test_of_takes_only_batches_that_still_have_their_bytes() -> None:
    batch = make_traces(2)
    assert WireBatch.of(Signal.TRACES, batch) is None
    data = batch.SerializeToString()
    with attached(batch, data):
        wire = WireBatch.of(Signal.TRACES, batch)
    assert wire is not None and wire.data == data and wire.items == 2 and wire.message() == batch


def test_join_and_cut_of_the_exporter_queue() -> None:
    a, b = make_traces(5), make_traces(5)
    joined = join(Signal.TRACES, [wire_of(a), wire_of(b)])
    assert isinstance(joined, WireBatch) and joined.data == a.SerializeToString() + b.SerializeToString()
    mixed = join(Signal.TRACES, [wire_of(a), b])  # a message among them: merged as messages
    assert not isinstance(mixed, WireBatch) and count_items(Signal.TRACES, mixed) == 10
    pieces = cut(Signal.TRACES, joined, "items", 4)
    assert [count_items(Signal.TRACES, p) for p in pieces] == [4, 4, 2]
    assert span_ids(pieces) == span_ids([a, b])
    assert cut(Signal.TRACES, joined, "items", 10) == [joined]


async def test_hand_on_gives_a_message_with_its_bytes_to_a_consumer_without_consume_wire() -> None:
    wire = wire_of(make_traces(3))
    seen: list[tuple[Any, bytes | None]] = []

    class Reader:
        async def consume_traces(self, batch: Any) -> None:
            seen.append((batch, wire_bytes(batch)))

    await hand_on(Reader(), wire)
    [(batch, data)] = seen
    # A parse of its own: the consumer may change it, and the batch's own parse may be someone else's to read.
    assert batch == wire.message() and batch is not wire.message() and data == wire.data
    assert wire_bytes(batch) is None  # only while the call lasts
    await hand_on(Reader(), wire, shared=True)  # a fan-out's read-only consumers share the batch's own parse
    assert seen[1][0] is wire.message() and seen[1][1] == wire.data


async def test_fan_out_shares_one_parse_among_readers_and_gives_each_mutating_consumer_its_own() -> None:
    wire = wire_of(make_traces(3), make_traces(2))
    taken: list[WireBatch] = []

    class WireTaker:
        async def consume_wire(self, batch: WireBatch) -> None:
            taken.append(batch)

        async def consume_traces(self, batch: Any) -> None:
            raise AssertionError("a consumer that takes wire batches is handed the batch as it is")

    reader_a, reader_b, writer = Sink(), Sink(), MutatingSink(None, MutConfig())
    fan = FanOut(Signal.TRACES, [(WireTaker(), False), (reader_a, False), (reader_b, False), (writer, True)])
    await fan.consume_wire(wire)
    assert taken == [wire]
    [a], [b] = reader_a.batches[Signal.TRACES], reader_b.batches[Signal.TRACES]
    assert a is b is wire.message()  # one parse for both readers
    [mutated] = MUTATED
    assert mutated is not wire.message()
    assert not any(s.name.endswith("!") for s in reader_a.spans())
    assert ExportTraceServiceRequest.FromString(wire.data) == wire.message()  # bytes and parse still agree


async def test_fan_out_still_calls_every_consumer_when_one_fails() -> None:
    wire = wire_of(make_traces(2))
    after = Sink()

    class Failing:
        async def consume_traces(self, batch: Any) -> None:
            raise RuntimeError("down")

    fan = FanOut(Signal.TRACES, [(Failing(), False), (after, False)])
    with pytest.raises(RuntimeError, match="down"):
        await fan.consume_wire(wire)
    assert after.item_count(Signal.TRACES) == 2
