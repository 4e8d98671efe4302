"""The otlp_grpc exporter against a real OTLP/gRPC server (gateway.testing.otlp_sink.OtlpSink) on loopback."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, LogsConsumer, Signal, consume
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import validate_tree
from gateway.errors import PermanentError, RetryableError
from gateway.helpers.exporter import QueueConfig, RetryConfig
from gateway.testing import make_logs, make_metrics, make_traces, settings_for
from gateway.testing.otlp_sink import OtlpSink
from plugins.exporters.otlp_grpc.config import Config
from plugins.exporters.otlp_grpc.factory import factory

TESTDATA = Path(__file__).parent / "testdata"
CERT, KEY = str(TESTDATA / "localhost.crt"), str(TESTDATA / "localhost.key")
FAST = RetryConfig(initial_interval=0.01, randomization_factor=0, multiplier=1.5, max_interval=0.05,
                   max_elapsed_time=5)
INLINE = QueueConfig(enabled=False)


def batch_for(signal: Signal) -> Any:
    if signal is Signal.TRACES:
        return make_traces(20, error_every=3, attributes={"http.route": "/a", "bytes": b"\x00\x01", "n": 1.5})
    if signal is Signal.METRICS:
        return make_metrics(7, attributes={"host": "a"})
    return make_logs(5, body={"msg": "hello", "list": [1, 2.5, True]})


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


def exporter_for(endpoint: str, signal: Signal = Signal.TRACES, telemetry: Telemetry | None = None,
                 **overrides: Any) -> Any:
    options: dict[str, Any] = {"tls": TLSClientConfig(insecure=True), "retry_on_failure": FAST, **overrides}
    config = Config(endpoint=endpoint, **options)
    assert validate_tree(config) == []
    create = factory.create_fn(signal)
    assert create is not None
    return create(settings_for(Kind.EXPORTER, "otlp", signal, telemetry), config)


async def export(exporter: Any, signal: Signal, *batches: Any) -> None:
    await exporter.start(None)
    try:
        for batch in batches:
            await consume(exporter, signal, batch)
    finally:
        await exporter.shutdown()


def metric(telemetry: Telemetry, name: str) -> float:
    return telemetry.registry.get_sample_value(name, {"exporter": "otlp"}) or 0.0


@pytest.mark.parametrize("signal", list(Signal), ids=lambda s: s.value)
async def test_every_signal_arrives_unchanged(sink: OtlpSink, signal: Signal, telemetry: Telemetry) -> None:
    batch = batch_for(signal)
    expected = type(batch)()
    expected.CopyFrom(batch)
    await export(exporter_for(sink.grpc_endpoint, signal, telemetry), signal, batch)
    assert sink.batches(signal) == [expected]
    assert sink.received(signal)[0].transport == "grpc"
    assert metric(telemetry, f"otelcol_exporter_sent_{signal.item_name}_total") == sink.item_count(signal)


async def test_headers_arrive_as_metadata(sink: OtlpSink) -> None:
    exporter = exporter_for(sink.grpc_endpoint, headers={"X-Api-Key": "secret", "tenant": "blue"})
    await export(exporter, Signal.TRACES, make_traces(1))
    headers = sink.requests[0].headers
    assert headers["x-api-key"] == "secret"
    assert headers["tenant"] == "blue"
    assert headers["user-agent"].startswith("otelgw/")


async def test_gzip_is_used_by_default() -> None:
    # A server that only accepts uncompressed messages tells gzip apart from none.
    identity_only = OtlpSink(grpc_options=[("grpc.compression_enabled_algorithms_bitset", 1)])
    await identity_only.start()
    try:
        gzipped = exporter_for(identity_only.grpc_endpoint, sending_queue=INLINE)
        with pytest.raises(PermanentError, match="UNIMPLEMENTED"):
            await export(gzipped, Signal.TRACES, make_traces(1))
        plain = exporter_for(identity_only.grpc_endpoint, sending_queue=INLINE, compression="none")
        await export(plain, Signal.TRACES, make_traces(1))
        assert identity_only.item_count(Signal.TRACES) == 1
    finally:
        await identity_only.stop()


async def test_unavailable_three_times_then_recovery_loses_and_duplicates_nothing(
        sink: OtlpSink, telemetry: Telemetry) -> None:
    sink.fail_next(3, grpc_code=grpc.StatusCode.UNAVAILABLE)
    batches = [make_traces(4) for _ in range(5)]
    sent_ids = sorted(s.span_id for b in batches for rs in b.resource_spans for ss in rs.scope_spans
                      for s in ss.spans)
    exporter = exporter_for(sink.grpc_endpoint, telemetry=telemetry,
                            sending_queue=QueueConfig(num_consumers=2))
    await export(exporter, Signal.TRACES, *batches)
    assert sorted(s.span_id for s in sink.spans()) == sent_ids
    assert len(sink.received(Signal.TRACES)) == 5 + 3
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 20
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 0


async def test_resource_exhausted_with_retry_info_waits_at_least_the_delay(sink: OtlpSink) -> None:
    sink.fail_next(1, grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=0.3)
    await export(exporter_for(sink.grpc_endpoint, sending_queue=INLINE), Signal.TRACES, make_traces(2))
    first, second = sink.received(Signal.TRACES)
    assert not first.accepted and second.accepted
    assert second.at - first.at >= 0.29


async def test_resource_exhausted_without_retry_info_is_not_retried(sink: OtlpSink,
                                                                    telemetry: Telemetry) -> None:
    sink.fail_next(1, grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED, message="request too large")
    await export(exporter_for(sink.grpc_endpoint, telemetry=telemetry), Signal.TRACES, make_traces(1))
    assert len(sink.received(Signal.TRACES)) == 1  # one span: nothing to bisect
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 1


async def test_invalid_argument_is_not_retried_and_keeps_the_server_message(sink: OtlpSink) -> None:
    sink.fail_next(1, grpc_code=grpc.StatusCode.INVALID_ARGUMENT, message="span 3 has no trace id")
    with pytest.raises(PermanentError, match="INVALID_ARGUMENT: span 3 has no trace id"):
        await export(exporter_for(sink.grpc_endpoint, sending_queue=INLINE), Signal.TRACES, make_traces(1))
    assert len(sink.received(Signal.TRACES)) == 1


async def test_partial_success_counts_rejected_items_without_retry(sink: OtlpSink,
                                                                   telemetry: Telemetry) -> None:
    sink.partial_success_next(1, rejected=2, message="2 log records too old")
    await export(exporter_for(sink.grpc_endpoint, Signal.LOGS, telemetry), Signal.LOGS, make_logs(5))
    assert len(sink.received(Signal.LOGS)) == 1
    assert metric(telemetry, "otelcol_exporter_sent_log_records_total") == 3
    assert metric(telemetry, "otelcol_exporter_send_failed_log_records_total") == 2


async def test_unreachable_server_is_a_retryable_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"127.0.0.1:{port}", sending_queue=INLINE,
                            retry_on_failure=RetryConfig(enabled=False))
    with pytest.raises(RetryableError, match="UNAVAILABLE"):
        await export(exporter, Signal.TRACES, make_traces(1))


async def test_http_scheme_means_plaintext(sink: OtlpSink) -> None:
    exporter = exporter_for(f"http://{sink.grpc_endpoint}", Signal.METRICS,
                            tls=TLSClientConfig(insecure=False))
    await export(exporter, Signal.METRICS, make_metrics(2))
    assert sink.item_count(Signal.METRICS) == 2


async def test_tls_with_the_servers_ca_file() -> None:
    secure = OtlpSink(tls=(CERT, KEY))
    await secure.start()
    try:
        renamed = TLSClientConfig(ca_file=CERT, server_name_override="localhost")
        for tls in (TLSClientConfig(ca_file=CERT), renamed):
            trusted = exporter_for(secure.grpc_endpoint, tls=tls, sending_queue=INLINE)
            await export(trusted, Signal.TRACES, make_traces(2))
        assert secure.item_count(Signal.TRACES) == 4
        for tls in (TLSClientConfig(), TLSClientConfig(ca_file=CERT, server_name_override="other.example")):
            untrusted = exporter_for(secure.grpc_endpoint, tls=tls, sending_queue=INLINE,
                                     retry_on_failure=RetryConfig(enabled=False))
            with pytest.raises(RetryableError, match="UNAVAILABLE"):
                await export(untrusted, Signal.TRACES, make_traces(2))
        assert len(secure.requests) == 2
    finally:
        await secure.stop()


async def test_create_then_shutdown_without_start(telemetry: Telemetry) -> None:
    exporter = exporter_for("127.0.0.1:4317", telemetry=telemetry)
    await exporter.consume_traces(make_traces(1))  # queued; never sent
    await exporter.shutdown()
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 1


async def test_only_the_created_signal_is_consumed(sink: OtlpSink) -> None:
    exporter = exporter_for(sink.grpc_endpoint, Signal.LOGS)
    assert isinstance(exporter, LogsConsumer)
    with pytest.raises(TypeError, match="OtlpGrpcExporter was created for logs, not traces"):
        await exporter.consume_traces(make_traces(1))
