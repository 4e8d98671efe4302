"""End to end: the PII corpus, in every place of every signal, through a real gateway (OTLP/gRPC and OTLP/HTTP in
→ redaction → OTLP/gRPC to a sink and a file exporter). Not one corpus secret may appear anywhere in what is
exported; every clean value must arrive unchanged.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import grpc
import pytest
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from gateway import Factory, hookimpl, otlpjson, wire_bytes, wirebytes
from gateway._host.config import build_config
from gateway._host.registry import load_registry
from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.helpers.processor import Processor
from gateway.testing import Sink, any_value, make_traces
from gateway.testing.otlp_sink import OtlpSink
from plugins.processors.redaction import hyperscan_scanner, rules

CORPUS_FILE = Path(__file__).parent / "plugins/processors/redaction/testdata/pii_corpus.yaml"
ROOT = Path(__file__).resolve().parent.parent
KEY = "an end-to-end test key of 32+ bytes"
GRPC = {Signal.TRACES: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal.METRICS: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"}


def load_corpus() -> tuple[list[tuple[str, str, str]], list[str]]:
    data = yaml.safe_load(CORPUS_FILE.read_text(encoding="utf-8"))
    pii = []
    for detector, entries in data["pii"].items():
        for entry in entries:
            text, secret = (entry["text"], entry["secret"]) if isinstance(entry, dict) else (str(entry),) * 2
            pii.append((detector, text, secret))
    return pii, [str(value) for value in data["clean"]]


PII, CLEAN = load_corpus()
TEXTS = [text for _, text, _ in PII]


def attrs(prefix: str, values: list[str]) -> list[KeyValue]:
    return [KeyValue(key=f"{prefix}.{i}", value=any_value(v)) for i, v in enumerate(values)]


def traces() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(attrs("pii", TEXTS) + attrs("clean", CLEAN))
    ss = rs.scope_spans.add()
    ss.scope.name = "e2e"
    ss.scope.attributes.extend(attrs("pii", TEXTS) + attrs("clean", CLEAN))
    for i, text in enumerate(TEXTS + CLEAN):
        span = ss.spans.add(trace_id=bytes([1 + i % 200]) * 16, span_id=bytes([1 + i % 200]) * 8, name=text,
                            kind=2, start_time_unix_nano=1_700_000_000_000_000_000 + i)
        span.status.message = text
        event = span.events.add(name=text, time_unix_nano=1)
        event.attributes.extend(attrs("event", [text]))
        link = span.links.add(trace_id=b"\x09" * 16, span_id=b"\x09" * 8)
        link.attributes.extend(attrs("link", [text]))
        span.attributes.extend(attrs("pii", TEXTS) if i == 0 else [])
        span.attributes.extend(attrs("clean", CLEAN))
        span.attributes.add(key="nested").value.CopyFrom(any_value({"text": text, "list": [text, 7]}))
    return request


def logs() -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(attrs("pii", TEXTS))
    sl = rl.scope_logs.add()
    sl.scope.attributes.extend(attrs("pii", TEXTS))
    for i, text in enumerate(TEXTS + CLEAN):
        for body in (text, {"message": text, "meta": {"list": [text]}}, [text, {"t": text}]):
            record = sl.log_records.add(time_unix_nano=1_700_000_000_000_000_000 + i, severity_number=9)
            record.body.CopyFrom(any_value(body))
            record.event_name = text
            record.attributes.extend(attrs("attr", [text]) + attrs("clean", CLEAN))
    return request


def metrics() -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(attrs("pii", TEXTS))
    sm = rm.scope_metrics.add()
    for kind in ("gauge", "sum", "histogram", "exponential_histogram", "summary"):
        metric = sm.metrics.add(name=f"calls.{kind}")
        metric.metadata.extend(attrs("pii", TEXTS[:3]))
        for i, text in enumerate(TEXTS + CLEAN):
            point = getattr(metric, kind).data_points.add(time_unix_nano=1_700_000_000_000_000_000 + i)
            point.attributes.extend(attrs("label", [text]) + attrs("clean", CLEAN))
            if kind == "histogram":
                point.exemplars.add(as_int=1).filtered_attributes.extend(attrs("user", [text]))
    return request


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


async def wait_for(sink: OtlpSink, expected: dict[Signal, int], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while any(sink.item_count(signal) < count for signal, count in expected.items()):
        if time.monotonic() > deadline:
            raise AssertionError({s: sink.item_count(s) for s in expected})
        await asyncio.sleep(0.05)


async def send(grpc_address: str, http_address: str) -> dict[Signal, int]:
    requests = {Signal.TRACES: traces(), Signal.METRICS: metrics(), Signal.LOGS: logs()}
    async with grpc.aio.insecure_channel(grpc_address) as channel:
        for signal in (Signal.TRACES, Signal.METRICS):
            call = channel.unary_unary(GRPC[signal], request_serializer=None, response_deserializer=None)
            await call(requests[signal].SerializeToString(), timeout=10)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://{http_address}/v1/logs", data=requests[Signal.LOGS].SerializeToString(),
                                headers={"Content-Type": "application/x-protobuf"}) as response:
            assert response.status == 200, await response.text()
        # Once more as OTLP/JSON, the other HTTP encoding.
        body = otlpjson.encode(requests[Signal.TRACES])
        async with session.post(f"http://{http_address}/v1/traces", data=body,
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 200, await response.text()
    spans = sum(len(ss.spans) for rs in requests[Signal.TRACES].resource_spans for ss in rs.scope_spans)
    records = sum(len(sl.log_records) for rl in requests[Signal.LOGS].resource_logs for sl in rl.scope_logs)
    return {Signal.TRACES: 2 * spans, Signal.LOGS: records, Signal.METRICS: 5 * len(TEXTS + CLEAN)}


@pytest.fixture(params=["re", "hyperscan"])
async def gateway(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The gateway on each prefilter engine: both must find every secret."""
    if request.param == "hyperscan" and not hyperscan_scanner.AVAILABLE:
        pytest.skip("hyperscan is not installed: it has no wheel for this platform")
    monkeypatch.setattr(rules, "ENGINE", request.param)
    monkeypatch.setenv("REDACTION_TEST_KEY", KEY)
    sink = OtlpSink()
    await sink.start()
    out = tmp_path / "exported.jsonl"
    service = Service.from_files([write(tmp_path, "gateway.yaml", f"""
        receivers:
          otlp:
            protocols:
              grpc: {{endpoint: "127.0.0.1:0"}}
              http: {{endpoint: "127.0.0.1:0"}}
        processors:
          redaction:
            allow_all_keys: true
            hmac_key: ${{env:REDACTION_TEST_KEY}}
            hash_length: 16
            detectors: {{email: hash, phone: hash, credit_card: mask, iban: mask, us_ssn: mask, ipv4: mask,
                         ipv6: mask, jwt: mask, bearer_token: mask, api_key: mask, password: mask}}
            blocked_key_patterns: ["(?i)(token|secret|passw(or)?d|authorization)"]
            summary: debug
        exporters:
          otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
          file: {{path: "{out}", flush_interval: 0}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [redaction], exporters: [otlp_grpc, file]}}
            metrics: {{receivers: [otlp], processors: [redaction], exporters: [otlp_grpc, file]}}
            logs: {{receivers: [otlp], processors: [redaction], exporters: [otlp_grpc, file]}}
    """)])
    await service.start()
    receiver = service.graph.find(Kind.RECEIVER, "otlp")
    yield receiver.grpc_address, receiver.http_address, sink, out
    assert await service.shutdown() == []
    await sink.stop()


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


async def test_no_corpus_secret_is_exported_and_clean_values_are_untouched(gateway: Any) -> None:
    grpc_address, http_address, sink, out = gateway
    expected = await send(grpc_address, http_address)
    await wait_for(sink, expected)
    exported = b"".join(r.batch.SerializeToString() for s in Signal for r in sink.received(s))
    file_text = out.read_text(encoding="utf-8")
    file_strings = "\n".join(s for line in file_text.splitlines() for s in strings(json.loads(line)))
    leaks = [(detector, secret) for detector, _, secret in PII
             if secret.encode() in exported or secret in file_text or secret in file_strings]
    assert leaks == []

    clean_found = {}
    spans = [s for r in sink.received(Signal.TRACES) for rs in r.batch.resource_spans for ss in rs.scope_spans
             for s in ss.spans]
    for span in spans:
        clean_found.update({kv.key: kv.value.string_value for kv in span.attributes if kv.key.startswith("clean.")})
    assert clean_found == {f"clean.{i}": value for i, value in enumerate(CLEAN)}
    names = {span.name for span in spans}
    assert set(CLEAN) <= names  # clean span names pass as they are
    records = [rec for r in sink.received(Signal.LOGS) for rl in r.batch.resource_logs for sl in rl.scope_logs
               for rec in sl.log_records]
    assert set(CLEAN) <= {rec.body.string_value for rec in records}
    points = [p for r in sink.received(Signal.METRICS) for rm in r.batch.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics for p in getattr(m, m.WhichOneof("data")).data_points]
    assert all({kv.key: kv.value.string_value for kv in p.attributes if kv.key.startswith("clean.")}
               == {f"clean.{i}": value for i, value in enumerate(CLEAN)} for p in points)
    # Pseudonyms: one address gives one 16-hex pseudonym wherever it was, and the summary says what changed.
    email = TEXTS.index("alice.smith@example.com")
    first = {kv.key: kv.value for kv in spans[0].attributes}
    pseudonym = first[f"pii.{email}"].string_value
    assert len(pseudonym) == 16 and int(pseudonym, 16) >= 0
    assert {span.name for span in spans if pseudonym in span.name} == {pseudonym}
    masked = first["redaction.masked.keys"].string_value.split(",")
    assert set(masked) == {f"pii.{i}" for i in range(len(PII))} | {
        "nested.text", "nested.list.[0]", "span.name", "status.message"}
    assert first["redaction.masked.count"].int_value == len(masked)


async def test_the_shipped_customer_service_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDACTION_KEY", KEY)
    for name in ("OTELGW_GRPC_ENDPOINT", "OTELGW_HTTP_ENDPOINT", "OTELGW_HEALTH_ENDPOINT", "OTELGW_METRICS_ADDRESS"):
        monkeypatch.setenv(name, "127.0.0.1:0")
    sink = OtlpSink()
    await sink.start()
    override = write(tmp_path, "to-sink.yaml", f"""
        exporters:
          otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
        processors:
          batch: {{timeout: 20ms}}
        service:
          pipelines:
            traces: {{exporters: [otlp_grpc]}}
            logs: {{exporters: [otlp_grpc]}}
    """)
    service = Service.from_files([str(ROOT / "configs" / "redaction.yaml"), override])
    await service.start()
    try:
        receiver = service.graph.find(Kind.RECEIVER, "otlp")
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add(name="POST /api/tickets", kind=2,
                                                                         trace_id=b"\x01" * 16, span_id=b"\x01" * 8)
        span.attributes.extend([
            KeyValue(key="customer.email", value=any_value("Jane.Doe@example.com")),
            KeyValue(key="customer.phone", value=any_value("+44 20 7946 0958")),
            KeyValue(key="chat.message", value=any_value("my card is 4111 1111 1111 1111")),
            KeyValue(key="auth.token", value=any_value("opaque-value")),
            KeyValue(key="http.route", value=any_value("/api/tickets/{id}"))])
        async with grpc.aio.insecure_channel(receiver.grpc_address) as channel:
            call = channel.unary_unary(GRPC[Signal.TRACES], request_serializer=None, response_deserializer=None)
            await call(request.SerializeToString(), timeout=10)
        async with aiohttp.ClientSession() as session:
            body = ExportLogsServiceRequest()
            body.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "call me at 415-555-0176"
            async with session.post(f"http://{receiver.http_address}/v1/logs", data=body.SerializeToString(),
                                    headers={"Content-Type": "application/x-protobuf"}) as response:
                assert response.status == 200
        await wait_for(sink, {Signal.TRACES: 1, Signal.LOGS: 1})
        [got] = sink.spans()
        out = {kv.key: kv.value for kv in got.attributes}
        assert len(out["customer.email"].string_value) == 16 and len(out["customer.phone"].string_value) == 16
        assert out["chat.message"].string_value == "<30 chars>"
        assert out["auth.token"].string_value == "****"
        assert out["http.route"].string_value == "/api/tickets/{id}"
        assert "redaction.masked.count" not in out  # summary: silent
        [record] = [rec for r in sink.received(Signal.LOGS) for rl in r.batch.resource_logs for sl in rl.scope_logs
                    for rec in sl.log_records]
        assert record.body.string_value == "<23 chars>"
    finally:
        assert await service.shutdown() == []
        await sink.stop()


# ------------------------------------------------------- the receiver's bytes are used only while they are exact


@dataclass(frozen=True)
class _NoConfig:
    pass


class _WriteAddressIntoNames(Processor):
    """A processor in front of redaction that changes spans in place (and says so with mutates_data)."""

    def process_traces(self, batch: Any) -> Any:
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.name = "mail alice@example.com"
        return batch


_KEPT: list[Sink] = []


def _keep(settings: Any, config: Any) -> Sink:
    _KEPT.append(Sink())
    return _KEPT[-1]


_plugin = SimpleNamespace(otelgw_component_factories=hookimpl(lambda: [
    Factory("write_address", Kind.PROCESSOR, _NoConfig, create_traces=_WriteAddressIntoNames, mutates_data=True),
    Factory("keep", Kind.EXPORTER, _NoConfig, create_traces=_keep)]))


@pytest.mark.parametrize("front", [[], ["write_address"], ["memory_limiter", "write_address"]])
async def test_a_change_upstream_is_redacted_not_hidden_by_stale_request_bytes(front: list[str]) -> None:
    """The otlp receiver hands redaction the request bytes; a processor that changed the spans since must make
    redaction look at the spans as they are now (here: an address it wrote into every name)."""
    registry = load_registry([_plugin])
    _KEPT.clear()
    raw = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"write_address": None, "memory_limiter": {"check_interval": "1s", "limit_mib": 100_000},
                       "redaction": {"allow_all_keys": True, "detectors": ["email"]}},
        "exporters": {"keep": None},
        "service": {"telemetry": {"metrics": {"address": ""}},
                    "pipelines": {"traces": {"receivers": ["otlp"], "processors": [*front, "redaction"],
                                             "exporters": ["keep"]}}},
    }
    service = Service(build_config(raw, registry), registry)
    await service.start()
    try:
        receiver = service.graph.find(Kind.RECEIVER, "otlp")
        async with grpc.aio.insecure_channel(receiver.grpc_address) as channel:
            call = channel.unary_unary(GRPC[Signal.TRACES], request_serializer=None, response_deserializer=None)
            await call(make_traces(spans=20).SerializeToString(), timeout=10)
    finally:
        assert await service.shutdown() == []
    [sink] = _KEPT
    names = {span.name for span in sink.spans()}
    assert len(sink.spans()) == 20
    assert names == ({"mail ****"} if front else {span.name for span in make_traces(spans=20).resource_spans[0]
                                                  .scope_spans[0].spans})


_OFFERED: list[tuple[bytes | None, Any]] = []


class _OfferedBytes(Processor):
    """Read-only, right after redaction: records the bytes ``gateway.wirebytes`` offers for each batch then,
    and checks the contract (they parse to the batch as it is) while the hand-over lasts."""

    def process_traces(self, batch: Any) -> Any:
        data = wire_bytes(batch)
        _OFFERED.append((data, data is not None and type(batch).FromString(data) == batch))
        return batch


_offered_plugin = SimpleNamespace(otelgw_component_factories=hookimpl(lambda: [
    Factory("offered", Kind.PROCESSOR, _NoConfig, create_traces=_OfferedBytes)]))


async def test_redacted_spans_reach_a_real_backend_through_tail_sampling_and_batch_as_spliced_bytes() -> None:
    """The customer-service layout of bench.pipeline: redaction hands on spliced bytes (the changed spans put
    into the received request), tail_sampling cuts them into traces, batch joins them, otlp_grpc sends them as
    they are. The backend gets every span, with the redacted values and not one address."""
    registry = load_registry([_offered_plugin])
    _OFFERED.clear()
    sink = OtlpSink()
    await sink.start()
    raw = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {
            "redaction": {"allow_all_keys": True, "detectors": {"email": "mask"},
                          "blocked_key_patterns": [{"pattern": "(^|\\.)password$", "action": "length"}]},
            "offered": None,
            "tail_sampling": {"decision_wait": "0.2s", "policies": [{"name": "all", "type": "always_sample"}]},
            "batch": {"timeout": "50ms"},
        },
        "connectors": {"forward": None},
        "exporters": {"otlp_grpc": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
        "service": {"telemetry": {"metrics": {"address": ""}}, "pipelines": {
            "traces": {"receivers": ["otlp"], "processors": ["redaction", "offered"], "exporters": ["forward"]},
            "traces/sampled": {"receivers": ["forward"], "processors": ["tail_sampling", "batch"],
                               "exporters": ["otlp_grpc"]}}},
    }
    service = Service(build_config(raw, registry), registry)
    sent: list[ExportTraceServiceRequest] = []
    try:
        await service.start()
        receiver = service.graph.find(Kind.RECEIVER, "otlp")
        async with grpc.aio.insecure_channel(receiver.grpc_address) as channel:
            call = channel.unary_unary(GRPC[Signal.TRACES], request_serializer=None, response_deserializer=None)
            for r in range(4):
                request = make_traces(spans=30)
                for k, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
                    span.trace_id = bytes([r + 1, k % 5 + 1]) * 8  # 5 traces per request
                    if k % 7 == r:
                        span.attributes.add(key="user.email", value=any_value(f"user{r}-{k}@example.com"))
                    if k == 29 and r == 3:
                        span.attributes.add(key="db.password", value=any_value("hunter2"))
                sent.append(request)
                await call(request.SerializeToString(), timeout=10)
        await wait_for(sink, {Signal.TRACES: 120})
    finally:
        assert await service.shutdown() == []
        await sink.stop()
    assert wirebytes._registry == {} and wirebytes._unchanged == {}  # each hand-over took its entry with it
    assert [ok for _, ok in _OFFERED] == [True] * 4  # every request went on with exact bytes
    assert all(data is not None and b"@example.com" not in data for data, _ in _OFFERED)
    got = {(span.trace_id, span.span_id): span for span in sink.spans()}
    assert len(got) == 120 == sink.item_count(Signal.TRACES)
    for request in sent:
        for span in request.resource_spans[0].scope_spans[0].spans:
            attributes = {kv.key: kv.value.string_value for kv in got[(span.trace_id, span.span_id)].attributes
                          if kv.key != "tailsampling.policy"}  # tail_sampling says which policy kept it
            expected = {kv.key: kv.value.string_value for kv in span.attributes}
            if "user.email" in expected:
                expected["user.email"] = "****"
            if "db.password" in expected:
                expected["db.password"] = "<7 chars>"
            assert attributes == expected
