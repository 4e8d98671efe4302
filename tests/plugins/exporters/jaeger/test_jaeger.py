"""The jaeger exporter against a PostSpans server built on the project's protos (conftest.JaegerCollector)."""

from __future__ import annotations

import socket
from typing import Any

import grpc
import pytest

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configblocks import TLSClientConfig
from gateway.errors import PermanentError, RetryableError
from gateway.helpers.exporter import QueueConfig, RetryConfig
from gateway.testing import make_traces, settings_for
from gateway.testing.otlp_sink import OtlpSink
from plugins.exporters.jaeger.config import Config
from plugins.exporters.jaeger.factory import factory

FAST = RetryConfig(initial_interval=0.01, randomization_factor=0, multiplier=1.5, max_interval=0.05,
                   max_elapsed_time=5)
INLINE = QueueConfig(enabled=False)


def exporter_for(endpoint: str, telemetry: Telemetry | None = None, **overrides: Any) -> Any:
    config = Config(endpoint=endpoint, tls=TLSClientConfig(insecure=True), **{"retry_on_failure": FAST, **overrides})
    return factory.create_traces(settings_for(Kind.EXPORTER, "jaeger", Signal.TRACES, telemetry), config)  # type: ignore[misc]


async def export(exporter: Any, *batches: Any) -> None:
    await exporter.start(None)
    try:
        for batch in batches:
            await exporter.consume_traces(batch)
    finally:
        await exporter.shutdown()


def metric(telemetry: Telemetry, name: str) -> float:
    return telemetry.registry.get_sample_value(name, {"exporter": "jaeger"}) or 0.0


def two_services(spans_each: int = 5) -> Any:
    """One batch with two resources (two processes, so two PostSpans calls) of ``spans_each`` spans."""
    batch = make_traces(spans_each, service="checkout")
    batch.resource_spans.extend(make_traces(spans_each, service="billing").resource_spans)
    return batch


def span_ids(batch: Any) -> list[bytes]:
    return sorted(s.span_id for rs in batch.resource_spans for ss in rs.scope_spans for s in ss.spans)


async def test_spans_arrive_one_batch_per_process(collector: Any) -> None:
    telemetry = Telemetry()
    batch = two_services()
    expected = span_ids(batch)
    await export(exporter_for(collector.endpoint, telemetry), batch)
    assert sorted(b.process.service_name for b in collector.batches()) == ["billing", "checkout"]
    assert sorted(s.span_id for s in collector.spans()) == expected
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 10


async def test_headers_go_as_metadata_with_the_user_agent(collector: Any) -> None:
    await export(exporter_for(collector.endpoint, headers={"X-Tenant": "blue"}, compression="none"),
                 make_traces(1))
    metadata = collector.requests[0].metadata
    assert metadata["x-tenant"] == "blue"
    assert metadata["user-agent"].startswith("otelgw/")


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  grpc.StatusCode.ABORTED])
async def test_retryable_codes_are_retried_and_nothing_is_lost_or_duplicated(collector: Any,
                                                                             code: grpc.StatusCode) -> None:
    telemetry = Telemetry()
    collector.fail_next(3, code)
    batches = [make_traces(4) for _ in range(5)]
    expected = sorted(i for b in batches for i in span_ids(b))
    await export(exporter_for(collector.endpoint, telemetry, sending_queue=QueueConfig(num_consumers=2)), *batches)
    assert sorted(s.span_id for s in collector.spans()) == expected
    assert len(collector.requests) == 5 + 3
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 20
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 0


async def test_a_retry_resends_only_the_process_that_failed(collector: Any) -> None:
    collector.fail_next(1, grpc.StatusCode.UNAVAILABLE)
    batch = two_services()
    expected = span_ids(batch)
    exporter = exporter_for(collector.endpoint, sending_queue=INLINE)
    await export(exporter, batch)
    assert len(collector.requests) == 3  # two processes, one of them twice
    assert sorted(s.span_id for s in collector.spans()) == expected  # each span exactly once
    assert exporter._parts.pending == 0


async def test_resource_exhausted_is_retried_only_with_retry_info(collector: Any) -> None:
    collector.fail_next(1, grpc.StatusCode.RESOURCE_EXHAUSTED, retry_delay=0.3)
    await export(exporter_for(collector.endpoint, sending_queue=INLINE), make_traces(2))
    first, second = collector.requests
    assert not first.accepted and second.accepted
    assert second.at - first.at >= 0.29
    collector.requests.clear()
    collector.fail_next(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "message too large")
    with pytest.raises(PermanentError, match="RESOURCE_EXHAUSTED: message too large"):
        await export(exporter_for(collector.endpoint, sending_queue=INLINE), make_traces(1))
    assert len(collector.requests) == 1  # one span: nothing to bisect


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED,
                                  grpc.StatusCode.INTERNAL])
async def test_permanent_codes_are_dropped_at_once_and_counted(collector: Any, code: grpc.StatusCode) -> None:
    telemetry = Telemetry()
    collector.fail_next(1, code, "no")
    one_at_a_time = QueueConfig(num_consumers=1)
    await export(exporter_for(collector.endpoint, telemetry, sending_queue=one_at_a_time), make_traces(1),
                 make_traces(2))
    assert len(collector.requests) == 2
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 1
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 2


async def test_a_refused_process_is_a_partial_success(collector: Any, caplog: Any) -> None:
    telemetry = Telemetry()
    collector.fail_next(1, grpc.StatusCode.INVALID_ARGUMENT, "invalid tag")
    await export(exporter_for(collector.endpoint, telemetry, sending_queue=INLINE), two_services(5))
    assert len(collector.requests) == 2  # not retried
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 5
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 5
    assert [(r.message, r.error, r.rejected_items) for r in caplog.records] == [
        ("Partial success response: the destination rejected some items.", "INVALID_ARGUMENT: invalid tag", 5)]


async def test_spans_with_bad_ids_are_counted_and_the_rest_sent(collector: Any) -> None:
    telemetry = Telemetry()
    batch = make_traces(4)
    batch.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01" * 8
    await export(exporter_for(collector.endpoint, telemetry), batch)
    assert len(collector.spans()) == 3
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 3
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 1


async def test_unreachable_collector_is_a_retryable_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"127.0.0.1:{port}", sending_queue=INLINE, timeout=1.0,
                            retry_on_failure=RetryConfig(enabled=False))
    with pytest.raises(RetryableError, match="UNAVAILABLE"):
        await export(exporter, make_traces(1))


async def test_protocol_otlp_sends_otlp_unchanged() -> None:
    sink = OtlpSink()
    await sink.start()
    try:
        batch = make_traces(6)
        expected = type(batch)()
        expected.CopyFrom(batch)
        await export(exporter_for(sink.grpc_endpoint, protocol="otlp"), batch)
        assert sink.batches(Signal.TRACES) == [expected]
    finally:
        await sink.stop()


async def test_large_batches_are_translated_off_the_event_loop_and_arrive_whole(collector: Any) -> None:
    from gateway.helpers.parts import OFFLOAD_BYTES

    batch = make_traces(3000)
    assert batch.ByteSize() > OFFLOAD_BYTES
    expected = span_ids(batch)
    await export(exporter_for(collector.endpoint, sending_queue=INLINE), batch)
    assert sorted(s.span_id for s in collector.spans()) == expected
