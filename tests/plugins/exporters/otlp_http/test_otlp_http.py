"""The otlp_http exporter against a real OTLP/HTTP server (gateway.testing.otlp_sink.OtlpSink) on loopback."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal, consume
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import validate_tree
from gateway.errors import PermanentError, RetryableError
from gateway.helpers.exporter import QueueConfig, RetryConfig
from gateway.testing import make_logs, make_metrics, make_traces, settings_for
from gateway.testing.otlp_sink import OtlpSink
from plugins.exporters.otlp_http.config import Config
from plugins.exporters.otlp_http.factory import factory

TESTDATA = Path(__file__).parent / "testdata"
CERT, KEY = str(TESTDATA / "localhost.crt"), str(TESTDATA / "localhost.key")
FAST = RetryConfig(initial_interval=0.01, randomization_factor=0, multiplier=1.5, max_interval=0.05,
                   max_elapsed_time=5)
INLINE = QueueConfig(enabled=False)
NO_RETRY = RetryConfig(enabled=False)


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
    config = Config(endpoint=endpoint, **{"retry_on_failure": FAST, **overrides})
    assert validate_tree(config) == []
    create = factory.create_fn(signal)
    assert create is not None
    return create(settings_for(Kind.EXPORTER, "otlphttp", signal, telemetry), config)


async def export(exporter: Any, signal: Signal, *batches: Any) -> None:
    await exporter.start(None)
    try:
        for batch in batches:
            await consume(exporter, signal, batch)
    finally:
        await exporter.shutdown()


def metric(telemetry: Telemetry, name: str) -> float:
    return telemetry.registry.get_sample_value(name, {"exporter": "otlphttp"}) or 0.0


def copy_of(batch: Any) -> Any:
    copy = type(batch)()
    copy.CopyFrom(batch)
    return copy


@pytest.mark.parametrize("encoding", ["proto", "json"])
@pytest.mark.parametrize("signal", list(Signal), ids=lambda s: s.value)
async def test_every_signal_arrives_unchanged(sink: OtlpSink, signal: Signal, encoding: str,
                                              telemetry: Telemetry) -> None:
    batch = batch_for(signal)
    expected = copy_of(batch)
    await export(exporter_for(sink.http_endpoint, signal, telemetry, encoding=encoding), signal, batch)
    assert sink.batches(signal) == [expected]
    received = sink.received(signal)[0]
    assert received.content_type == ("application/json" if encoding == "json" else "application/x-protobuf")
    assert metric(telemetry, f"otelcol_exporter_sent_{signal.item_name}_total") == sink.item_count(signal)


async def test_headers_arrive_and_gzip_is_the_default(sink: OtlpSink) -> None:
    exporter = exporter_for(sink.http_endpoint, headers={"Authorization": "Bearer t0ken", "X-Tenant": "blue"})
    await export(exporter, Signal.TRACES, make_traces(1))
    headers = sink.requests[0].headers
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["x-tenant"] == "blue"
    assert headers["content-encoding"] == "gzip"
    assert headers["user-agent"].startswith("otelgw/")


async def test_large_bodies_are_gzipped_too(sink: OtlpSink) -> None:
    batch = make_traces(3000)
    assert batch.ByteSize() > 64 * 1024  # over the size compressed in a worker thread
    await export(exporter_for(sink.http_endpoint), Signal.TRACES, copy_of(batch))
    assert sink.batches(Signal.TRACES) == [batch]
    assert sink.requests[0].headers["content-encoding"] == "gzip"


async def test_compression_none_sends_plain_bodies(sink: OtlpSink) -> None:
    await export(exporter_for(sink.http_endpoint, compression="none"), Signal.TRACES, make_traces(1))
    assert "content-encoding" not in sink.requests[0].headers
    assert sink.item_count(Signal.TRACES) == 1


async def test_signal_endpoint_overrides_the_base_url(sink: OtlpSink) -> None:
    exporter = exporter_for("http://127.0.0.1:1", Signal.LOGS, logs_endpoint=f"{sink.http_endpoint}/v1/logs")
    await export(exporter, Signal.LOGS, make_logs(2))
    assert sink.item_count(Signal.LOGS) == 2


async def test_503_three_times_then_recovery_loses_and_duplicates_nothing(
        sink: OtlpSink, telemetry: Telemetry) -> None:
    sink.fail_next(3, http_status=503)
    batches = [make_traces(4) for _ in range(5)]
    sent_ids = sorted(s.span_id for b in batches for rs in b.resource_spans for ss in rs.scope_spans
                      for s in ss.spans)
    exporter = exporter_for(sink.http_endpoint, telemetry=telemetry,
                            sending_queue=QueueConfig(num_consumers=2))
    await export(exporter, Signal.TRACES, *batches)
    assert sorted(s.span_id for s in sink.spans()) == sent_ids
    assert len(sink.received(Signal.TRACES)) == 5 + 3
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 20
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 0


async def test_429_retry_after_is_honoured(sink: OtlpSink) -> None:
    sink.fail_next(1, http_status=429, retry_after=1)
    await export(exporter_for(sink.http_endpoint, sending_queue=INLINE), Signal.TRACES, make_traces(2))
    first, second = sink.received(Signal.TRACES)
    assert not first.accepted and second.accepted
    assert second.at - first.at >= 0.99


@pytest.mark.parametrize("encoding", ["proto", "json"])
async def test_400_is_not_retried_and_keeps_the_servers_status_message(sink: OtlpSink, encoding: str) -> None:
    sink.fail_next(1, http_status=400, message="span 3 has no trace id")
    exporter = exporter_for(sink.http_endpoint, sending_queue=INLINE, encoding=encoding)
    with pytest.raises(PermanentError, match=r"^HTTP 400: span 3 has no trace id$"):
        await export(exporter, Signal.TRACES, make_traces(1))
    assert len(sink.received(Signal.TRACES)) == 1


@pytest.mark.parametrize("status", [401, 404, 413, 500])
async def test_other_errors_are_permanent(sink: OtlpSink, status: int, telemetry: Telemetry) -> None:
    sink.fail_next(1, http_status=status)
    await export(exporter_for(sink.http_endpoint, telemetry=telemetry), Signal.TRACES, make_traces(1))
    assert len(sink.received(Signal.TRACES)) == 1
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 1


async def test_wrong_path_is_permanent(sink: OtlpSink) -> None:
    exporter = exporter_for(f"{sink.http_endpoint}/nowhere", sending_queue=INLINE)
    with pytest.raises(PermanentError, match=r"^HTTP 404: 404: Not Found$"):
        await export(exporter, Signal.TRACES, make_traces(1))


async def test_partial_success_counts_rejected_items_without_retry(sink: OtlpSink,
                                                                   telemetry: Telemetry) -> None:
    sink.partial_success_next(1, rejected=4, message="4 points out of order")
    exporter = exporter_for(sink.http_endpoint, Signal.METRICS, telemetry, encoding="json")
    await export(exporter, Signal.METRICS, make_metrics(10))
    assert len(sink.received(Signal.METRICS)) == 1
    assert metric(telemetry, "otelcol_exporter_sent_metric_points_total") == 6
    assert metric(telemetry, "otelcol_exporter_send_failed_metric_points_total") == 4


async def test_unreachable_server_is_a_retryable_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}", sending_queue=INLINE, retry_on_failure=NO_RETRY)
    with pytest.raises(RetryableError, match="ClientConnectorError"):
        await export(exporter, Signal.TRACES, make_traces(1))


async def test_proxy_error_pages_become_short_messages() -> None:
    async def bad_gateway(_: web.Request) -> web.Response:
        page = "<html>\n<h1>502 Bad   Gateway</h1>\n</html>"
        return web.Response(status=502, text=page, content_type="text/html")

    app = web.Application()
    app.router.add_post("/v1/traces", bad_gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        exporter = exporter_for(f"http://127.0.0.1:{sock.getsockname()[1]}", sending_queue=INLINE,
                                retry_on_failure=NO_RETRY)
        with pytest.raises(RetryableError, match=r"^HTTP 502: <html> <h1>502 Bad Gateway</h1> </html>$"):
            await export(exporter, Signal.TRACES, make_traces(1))
    finally:
        await runner.cleanup()


async def test_https_with_ca_file_or_skip_verify() -> None:
    secure = OtlpSink(tls=(CERT, KEY))
    await secure.start()
    try:
        assert secure.http_endpoint.startswith("https://")
        for tls in (TLSClientConfig(ca_file=CERT), TLSClientConfig(insecure_skip_verify=True),
                    TLSClientConfig(ca_file=CERT, server_name_override="localhost")):
            await export(exporter_for(secure.http_endpoint, tls=tls, sending_queue=INLINE), Signal.TRACES,
                         make_traces(1))
        assert secure.item_count(Signal.TRACES) == 3
        for tls in (TLSClientConfig(), TLSClientConfig(ca_file=CERT, server_name_override="other.example")):
            untrusted = exporter_for(secure.http_endpoint, tls=tls, sending_queue=INLINE,
                                     retry_on_failure=NO_RETRY)
            with pytest.raises(RetryableError, match="Certificate"):
                await export(untrusted, Signal.TRACES, make_traces(1))
        assert len(secure.requests) == 3
    finally:
        await secure.stop()


async def test_create_then_shutdown_without_start(telemetry: Telemetry) -> None:
    exporter = exporter_for("http://127.0.0.1:4318", telemetry=telemetry)
    await exporter.consume_traces(make_traces(1))  # queued; never sent
    await exporter.shutdown()
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 1
