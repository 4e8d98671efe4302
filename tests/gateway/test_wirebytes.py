"""gateway.wirebytes: the receiver's request bytes reach processors exactly while they still describe the batch."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import grpc
import pytest

from gateway import Factory, Kind, Signal, hookimpl, spanscan
from gateway._host.config import PipelineID, build_config
from gateway._host.registry import load_registry
from gateway._host.service import Service
from gateway.component import Batch, ComponentID, consume, count_items
from gateway.otlpjson import encode as json_encode
from gateway.testing import Sink, make_logs, make_metrics, make_traces
from gateway.wirebytes import (
    ForgetWireBytes,
    WireBatch,
    _Entry,
    _registry,
    _unchanged,
    attached,
    forget,
    hand_on,
    rewritten,
    unchanged,
    wire_bytes,
)

# ---------------------------------------------------------------- test-only components


@dataclass(frozen=True)
class ProbeConfig:
    #: unused; probes take no settings
    label: str = ""


#: probe id → what ``wire_bytes`` returned for each batch it was handed, with the batch.
SEEN: dict[str, list[tuple[bytes | None, Batch]]] = {}


class Probe:
    """Records ``wire_bytes(batch)`` for every batch, then hands the batch on unchanged."""

    def __init__(self, settings: Any, config: ProbeConfig, next_consumer: Any) -> None:
        self.name = str(settings.id)
        self.signal: Signal = settings.signal
        self.next = next_consumer
        setattr(self, f"consume_{self.signal.value}", self._consume)

    async def start(self, host: Any) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def _consume(self, batch: Batch) -> None:
        SEEN.setdefault(self.name, []).append((wire_bytes(batch), batch))
        await consume(self.next, self.signal, batch)


#: wireprobe id → every batch it was handed: a ``WireBatch`` through ``consume_wire``, else the message.
TAKEN: dict[str, list[Any]] = {}


class WireProbe(Probe):
    """A ``Probe`` that also takes requests as bytes (``consume_wire``), recording and handing them on as they are."""

    async def _consume(self, batch: Batch) -> None:
        TAKEN.setdefault(self.name, []).append(batch)
        await super()._consume(batch)

    async def consume_wire(self, batch: WireBatch) -> None:
        TAKEN.setdefault(self.name, []).append(batch)
        await hand_on(self.next, batch)


class Forward:
    """traces → traces connector that renames spans in place and hands the same object on."""

    def __init__(self, settings: Any, config: ProbeConfig, next_consumer: Any) -> None:
        self.next = next_consumer

    async def start(self, host: Any) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def consume_traces(self, batch: Any) -> None:
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.name += "!"
        await self.next.consume_traces(batch)


SINKS: list[Sink] = []


def create_sink(settings: Any, config: Any) -> Sink:
    sink = Sink()
    SINKS.append(sink)
    return sink


def _all(fn: Any) -> dict[str, Any]:
    return {"create_traces": fn, "create_metrics": fn, "create_logs": fn}


FACTORIES = [
    Factory("probe", Kind.PROCESSOR, ProbeConfig, **_all(Probe)),
    Factory("wireprobe", Kind.PROCESSOR, ProbeConfig, **_all(WireProbe)),
    Factory("wiresink", Kind.EXPORTER, ProbeConfig, **_all(create_sink)),
    Factory("mutfwd", Kind.CONNECTOR, ProbeConfig, connectors={(Signal.TRACES, Signal.TRACES): Forward},
            mutates_data=True),
    Factory("fwd", Kind.CONNECTOR, ProbeConfig, connectors={(Signal.TRACES, Signal.TRACES): Forward}),
]
probe_plugin = SimpleNamespace(otelgw_component_factories=hookimpl(lambda: FACTORIES))

RESOURCE = {"attributes": [{"key": "k", "value": "v", "action": "upsert"}]}
MEMORY_LIMITER = {"check_interval": "1s", "limit_mib": 100_000}
BUILDERS: dict[Signal, Callable[..., Batch]] = {
    Signal.TRACES: make_traces, Signal.METRICS: make_metrics, Signal.LOGS: make_logs}
GRPC_METHODS = {
    Signal.TRACES: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    Signal.METRICS: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    Signal.LOGS: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}


def config(pipelines: dict[str, dict[str, Any]], connectors: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"},
                                             "http": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"resource": RESOURCE, "memory_limiter": MEMORY_LIMITER, "probe": None, "probe/a": None,
                       "probe/b": None, "probe/c": None, "wireprobe": None},
        "exporters": {"wiresink": None},
        "connectors": connectors or {},
        "service": {"telemetry": {"metrics": {"address": ""}},
                    "pipelines": {name: {"receivers": ["otlp"], "exporters": ["wiresink"], **p}
                                  for name, p in pipelines.items()}},
    }


@pytest.fixture(autouse=True)
def _clean() -> Any:
    SEEN.clear()
    SINKS.clear()
    TAKEN.clear()
    yield
    assert _registry == {}, "wire bytes left attached"


@pytest.fixture
def registry() -> Any:
    return load_registry([probe_plugin])


class Gateway:
    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def receiver(self) -> Any:
        return self.service.graph.find(Kind.RECEIVER, "otlp")

    async def grpc(self, signal: Signal, body: bytes, compression: grpc.Compression | None = None) -> None:
        async with grpc.aio.insecure_channel(self.receiver.grpc_address) as channel:
            call = channel.unary_unary(GRPC_METHODS[signal], request_serializer=None, response_deserializer=None)
            await call(body, timeout=10, compression=compression)
        assert _registry == {}

    async def http(self, signal: Signal, body: bytes, content_type: str = "application/x-protobuf",
                   encoding: str | None = None) -> None:
        headers = {"Content-Type": content_type, **({"Content-Encoding": encoding} if encoding else {})}
        async with aiohttp.ClientSession() as session, session.post(
                f"http://{self.receiver.http_address}/v1/{signal.value}", data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
        assert _registry == {}


async def started(raw: dict[str, Any], registry: Any) -> Gateway:
    service = Service(build_config(raw, registry), registry)
    await service.start()
    return Gateway(service)


def seen(name: str) -> list[bytes | None]:
    return [data for data, _ in SEEN.get(name, [])]


# ---------------------------------------------------------------- the registry


def test_attached_bytes_are_visible_inside_and_gone_after() -> None:
    batch, data = make_traces(2), b"wire"
    assert wire_bytes(batch) is None
    with attached(batch, data):
        assert wire_bytes(batch) is data
        assert wire_bytes(make_traces(2)) is None  # an equal batch is not the same batch
    assert wire_bytes(batch) is None
    assert _registry == {}


def test_attached_is_removed_when_the_body_raises() -> None:
    batch = make_traces(1)
    with pytest.raises(RuntimeError), attached(batch, b"x"):
        raise RuntimeError("downstream failed")
    assert wire_bytes(batch) is None


def test_nested_attach_keeps_the_first_and_the_inner_exit_does_not_break_the_outer() -> None:
    batch = make_traces(1)
    with attached(batch, b"outer"):
        with attached(batch, b"inner"):
            assert wire_bytes(batch) == b"outer"
        assert wire_bytes(batch) == b"outer"
    assert wire_bytes(batch) is None


def test_forget_drops_the_bytes_and_a_later_attach_of_new_bytes_works() -> None:
    batch, other = make_traces(1), make_traces(1)
    with attached(batch, b"parsed"), attached(other, b"other"):
        forget(batch)
        assert wire_bytes(batch) is None
        assert wire_bytes(other) == b"other"  # only that batch
        with attached(batch, b"reserialized"):
            assert wire_bytes(batch) == b"reserialized"
        assert wire_bytes(batch) is None
    forget(batch)  # nothing attached: a no-op
    assert _registry == {}


def test_lookup_checks_identity_not_just_the_id() -> None:
    batch = make_traces(1)
    stale = make_traces(1)
    _registry[id(batch)] = _Entry(stale, b"stale")  # as if an id had been reused by a new object
    try:
        assert wire_bytes(batch) is None
        forget(batch)
        assert id(batch) in _registry  # not ours to remove
    finally:
        _registry.clear()


@pytest.mark.parametrize("signal", list(Signal))
async def test_forget_wrapper_forgets_then_forwards_every_signal(signal: Signal) -> None:
    sink = Sink()
    seen_downstream: list[bytes | None] = []

    class Recorder:
        async def _record(self, batch: Batch) -> None:
            seen_downstream.append(wire_bytes(batch))
            await consume(sink, signal, batch)

        consume_traces = consume_metrics = consume_logs = _record

    batch = BUILDERS[signal](2)
    with attached(batch, b"x"):
        await consume(ForgetWireBytes(Recorder()), signal, batch)
        assert wire_bytes(batch) is None
    assert seen_downstream == [None]
    assert sink.batches[signal] == [batch]


@pytest.mark.parametrize("signal", list(Signal))
async def test_rewritten_bytes_replace_the_old_ones_behind_forget_wire_bytes_and_leave_with_the_hand_over(
        signal: Signal) -> None:
    seen_downstream: list[bytes | None] = []

    class Recorder:
        async def _record(self, batch: Batch) -> None:
            seen_downstream.append(wire_bytes(batch))

        consume_traces = consume_metrics = consume_logs = _record

    batch = BUILDERS[signal](2)
    with attached(batch, b"received"):
        rewritten(batch, b"after the change")
        assert wire_bytes(batch) == b"received"  # only the ForgetWireBytes behind the component swaps them
        await consume(ForgetWireBytes(Recorder()), signal, batch)
        assert wire_bytes(batch) == b"after the change"
        assert _unchanged == {}
        await consume(ForgetWireBytes(Recorder()), signal, batch)  # a later mutating component said nothing
    assert seen_downstream == [b"after the change", None]
    assert _registry == {} and _unchanged == {}


def test_rewritten_and_unchanged_are_cleaned_up_at_the_exit_even_without_a_forget_wire_bytes() -> None:
    batch, other = make_traces(1), make_traces(1)
    with attached(batch, b"received"), attached(other, b"other"):
        rewritten(batch, b"new")
        unchanged(other)
        assert len(_unchanged) == 2
    assert _registry == {} and _unchanged == {}
    rewritten(batch, b"new")  # no bytes attached: nothing to replace, nothing remembered
    unchanged(batch)
    assert _unchanged == {}


async def test_rewritten_bytes_of_a_nested_attachment_belong_to_the_outer_one() -> None:
    batch, sink = make_traces(1), Sink()
    with attached(batch, b"outer"):
        with attached(batch, b"inner"):  # nested: the outer entry is the one that takes the new bytes
            rewritten(batch, b"new")
            await consume(ForgetWireBytes(sink), Signal.TRACES, batch)
        assert wire_bytes(batch) == b"new"
    assert _registry == {} and _unchanged == {}


# ---------------------------------------------------------------- through a real Service


@pytest.mark.parametrize("signal", list(Signal))
async def test_grpc_protobuf_reaches_the_processor_as_the_bytes_sent(registry: Any, signal: Signal) -> None:
    gw = await started(config({signal.value: {"processors": ["probe"]}}), registry)
    try:
        body = BUILDERS[signal](5).SerializeToString()
        await gw.grpc(signal, body)
        await gw.grpc(signal, body, compression=grpc.Compression.Gzip)  # grpc inflates before we see it
        assert seen("probe") == [body, body]
        for data, batch in SEEN["probe"]:
            assert type(batch).FromString(data) == batch
    finally:
        await gw.service.shutdown()


async def test_http_protobuf_plain_and_gzip_reach_the_processor_uncompressed_and_json_has_none(
        registry: Any) -> None:
    gw = await started(config({"traces": {"processors": ["probe"]}}), registry)
    try:
        batch = make_traces(4)
        body = batch.SerializeToString()
        await gw.http(Signal.TRACES, body)
        await gw.http(Signal.TRACES, gzip.compress(body), encoding="gzip")
        await gw.http(Signal.TRACES, json_encode(batch), content_type="application/json")
        assert seen("probe") == [body, body, None]
        assert SEEN["probe"][2][1] == batch  # the JSON batch did arrive
    finally:
        await gw.service.shutdown()


@pytest.mark.parametrize(("processors", "expected"), [
    (["resource", "probe"], None),
    (["probe", "resource"], "bytes"),  # read before the change
    (["memory_limiter", "probe"], "bytes"),
    (["memory_limiter", "resource", "probe"], None),
])
async def test_only_a_mutating_processor_upstream_takes_the_bytes_away(
        registry: Any, processors: list[str], expected: str | None) -> None:
    gw = await started(config({"traces": {"processors": processors}}), registry)
    try:
        body = make_traces(3).SerializeToString()
        await gw.grpc(Signal.TRACES, body)
        await gw.http(Signal.TRACES, body)
        assert seen("probe") == [body if expected else None] * 2
        nexts = {cid.type: nxt for (_, cid), (_, nxt, _) in gw.service.graph._processors.items()}
        assert isinstance(nexts.get("resource", ForgetWireBytes(None)), ForgetWireBytes)
        for name in ("memory_limiter", "probe"):  # read-only processors get no wrapper
            assert name not in nexts or not isinstance(nexts[name], ForgetWireBytes)
    finally:
        await gw.service.shutdown()


async def test_pipelines_sharing_the_receiver_each_see_bytes_only_where_exact(registry: Any) -> None:
    gw = await started(config({
        "traces/mutating": {"processors": ["resource", "probe/a"]},
        "traces/readonly": {"processors": ["probe/b"]},
        "traces/late": {"processors": ["probe/c", "resource"]},  # a mutating pipeline: it is handed a copy
    }), registry)
    try:
        body = make_traces(3).SerializeToString()
        await gw.grpc(Signal.TRACES, body)
        assert seen("probe/a") == [None]
        assert seen("probe/b") == [body]
        # The request goes on as bytes (checked in C), and a mutating pipeline is handed a parse of its own of
        # them, with them attached until it changes it. Without C the receiver parses: the copy has no bytes.
        assert seen("probe/c") == [body if spanscan is not None else None]
    finally:
        await gw.service.shutdown()


async def test_the_last_mutating_pipeline_gets_the_original_with_bytes_until_it_changes_it(registry: Any) -> None:
    gw = await started(config({
        "traces/one": {"processors": ["resource", "probe/a"]},
        "traces/two": {"processors": ["probe/b", "resource", "probe/c"]},
    }), registry)
    try:
        body = make_traces(3).SerializeToString()
        await gw.http(Signal.TRACES, body)
        # Both pipelines mutate: "one" is handed a copy, "two" (the last) the original the bytes belong to.
        assert seen("probe/a") == [None]
        assert seen("probe/b") == [body]
        assert seen("probe/c") == [None]
    finally:
        await gw.service.shutdown()


@pytest.mark.parametrize(("connector", "expected"), [("mutfwd", None), ("fwd", "bytes")])
async def test_a_mutating_connector_takes_the_bytes_away(registry: Any, connector: str,
                                                         expected: str | None) -> None:
    raw = config({"traces/in": {"exporters": [connector]}}, connectors={connector: None})
    raw["service"]["pipelines"]["traces/out"] = {"receivers": [connector], "processors": ["probe"],
                                                 "exporters": ["wiresink"]}
    gw = await started(raw, registry)
    try:
        body = make_traces(2).SerializeToString()
        await gw.grpc(Signal.TRACES, body)
        assert seen("probe") == [body if expected else None]
        assert SEEN["probe"][0][1].resource_spans[0].scope_spans[0].spans[0].name.endswith("!")
    finally:
        await gw.service.shutdown()


# ---------------------------------------------------------------- hot reload


def write(path: Path, raw: dict[str, Any]) -> None:
    path.write_text(json.dumps(raw))  # JSON is YAML


async def test_reload_inserting_a_mutating_processor_before_a_reused_probe_takes_the_bytes_away(
        tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    write(path, config({"traces": {"processors": ["memory_limiter", "probe"]}}))
    service = Service.from_files([str(path)], extra_plugins=[probe_plugin])
    await service.start()
    gw = Gateway(service)
    try:
        body = make_traces(2).SerializeToString()
        probe = service.graph.find(Kind.PROCESSOR, "probe")
        await gw.grpc(Signal.TRACES, body)
        assert seen("probe") == [body]

        write(path, config({"traces": {"processors": ["memory_limiter", "resource", "probe"]}}))
        result = await service.reload()
        assert result.ok, result.errors
        assert service.graph.find(Kind.PROCESSOR, "probe") is probe  # what it feeds is unchanged: reused
        await gw.grpc(Signal.TRACES, body)
        await gw.http(Signal.TRACES, body)
        assert seen("probe") == [body, None, None]

        # A reload that leaves the pipeline alone keeps the mutating processor and its wrapper.
        pid = PipelineID(Signal.TRACES)
        resource, wrapper, outlet = service.graph._processors[(pid, ComponentID("resource"))]
        assert isinstance(wrapper, ForgetWireBytes)
        raw = config({"traces": {"processors": ["memory_limiter", "resource", "probe"]},
                      "logs": {"processors": []}})
        write(path, raw)
        result = await service.reload()
        assert result.ok, result.errors
        assert service.graph.find(Kind.PROCESSOR, "resource") is resource
        assert service.graph._processors[(pid, ComponentID("resource"))] == (resource, wrapper, outlet)
        assert service.graph.find(Kind.PROCESSOR, "probe") is probe
        await gw.grpc(Signal.TRACES, body)
        assert seen("probe")[-1] is None

        write(path, config({"traces": {"processors": ["memory_limiter", "probe"]}}))  # and back again
        result = await service.reload()
        assert result.ok, result.errors
        assert service.graph.find(Kind.PROCESSOR, "probe") is probe
        await gw.grpc(Signal.TRACES, body)
        assert seen("probe")[-1] == body
    finally:
        await service.shutdown()


# ---------------------------------------------------------------- requests handed on as bytes


@pytest.mark.skipif(spanscan is None, reason="checking a request without a parse needs the C extension")
@pytest.mark.parametrize("signal", list(Signal))
async def test_a_valid_protobuf_request_goes_on_as_the_bytes_received_and_is_parsed_only_where_needed(
        registry: Any, signal: Signal) -> None:
    """The otlp receiver checks a protobuf request in C (``gateway.check_request``) and hands it on as a
    ``WireBatch`` of the very bytes received: memory_limiter passes it as it is, a component that takes bytes
    gets them, and one that needs the message (the exporter here) gets a parse with the bytes attached."""
    gw = await started(config({signal.value: {"processors": ["memory_limiter", "wireprobe", "probe"]}}), registry)
    try:
        body = BUILDERS[signal](3).SerializeToString()
        await gw.grpc(signal, body)
        await gw.http(signal, body)
        taken = TAKEN["wireprobe"]
        assert [type(batch) for batch in taken] == [WireBatch, WireBatch]
        assert all(batch.data == body and batch.items == 3 for batch in taken)
        assert seen("probe") == [body, body]  # the parse the plain processor got still has its bytes
        assert [count_items(signal, b) for b in SINKS[0].batches[signal]] == [3, 3]
    finally:
        await gw.service.shutdown()


@pytest.mark.skipif(spanscan is None, reason="checking a request without a parse needs the C extension")
async def test_a_request_with_an_invalid_id_or_in_json_is_parsed_and_its_valid_spans_go_on(registry: Any) -> None:
    gw = await started(config({"traces": {"processors": ["wireprobe"]}}), registry)
    try:
        bad = make_traces(3)
        bad.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01\x02"
        await gw.grpc(Signal.TRACES, bad.SerializeToString())
        await gw.http(Signal.TRACES, json_encode(make_traces(2)), "application/json")
        first, second = TAKEN["wireprobe"]
        assert not isinstance(first, WireBatch) and count_items(Signal.TRACES, first) == 2  # the bad span left
        assert not isinstance(second, WireBatch) and count_items(Signal.TRACES, second) == 2
    finally:
        await gw.service.shutdown()
