"""The loki exporter against a push server that decodes with the project's protos (conftest.LokiServer)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.errors import PermanentError, RetryableError
from gateway.helpers.exporter import QueueConfig, RetryConfig
from gateway.testing import make_logs, settings_for
from plugins.exporters.loki.config import Config
from plugins.exporters.loki.factory import factory

FAST = RetryConfig(initial_interval=0.01, randomization_factor=0, multiplier=1.5, max_interval=0.05,
                   max_elapsed_time=5)
INLINE = QueueConfig(enabled=False)
ONE_AT_A_TIME = QueueConfig(num_consumers=1)


def exporter_for(endpoint: str, telemetry: Telemetry | None = None, **overrides: Any) -> Any:
    config = Config(endpoint=endpoint, **{"retry_on_failure": FAST, **overrides})
    return factory.create_logs(settings_for(Kind.EXPORTER, "loki", Signal.LOGS, telemetry), config)  # type: ignore[misc]


async def export(exporter: Any, *batches: Any) -> None:
    await exporter.start(None)
    try:
        for batch in batches:
            await exporter.consume_logs(batch)
    finally:
        await exporter.shutdown()


def metric(telemetry: Telemetry, name: str) -> float:
    return telemetry.registry.get_sample_value(name, {"exporter": "loki"}) or 0.0


def bodies(loki: Any) -> list[str]:
    return sorted(json.loads(line)["body"] for _, line, _ in loki.entries())


def two_tenants() -> Any:
    batch = make_logs(3, service="a", body="for red", attributes={"loki.tenant": "team", "team": "red"})
    batch.resource_logs.extend(make_logs(2, service="b", body="for blue",
                                         attributes={"loki.tenant": "team", "team": "blue"}).resource_logs)
    return batch


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
async def test_push_content(loki: Any, encoding: str) -> None:
    telemetry = Telemetry()
    batch = make_logs(4, body="hello", attributes={"user": "u1"})
    batch.resource_logs[0].scope_logs[0].log_records[2].trace_id = b"\x01" * 16
    await export(exporter_for(loki.endpoint, telemetry, encoding=encoding), batch)
    (push,) = loki.pushes
    assert push.accepted and push.tenant is None
    assert push.content_type == ("application/json" if encoding == "json" else "application/x-protobuf")
    assert push.content_encoding == ("gzip" if encoding == "json" else "")
    assert push.headers["User-Agent"].startswith("otelgw/")
    (stream,) = push.streams
    assert stream.labels == {"exporter": "OTLP", "job": "test-service", "level": "INFO"}
    assert [ts for ts, _, _ in stream.entries] == [1_700_000_000_000_000_000 + i for i in range(4)]
    assert [json.loads(line)["attributes"] for _, line, _ in stream.entries] == [
        {"user": "u1", "index": i} for i in range(4)]
    assert [md for _, _, md in stream.entries] == [{}, {}, {"trace_id": "01" * 16}, {}]
    assert metric(telemetry, "otelcol_exporter_sent_log_records_total") == 4


async def test_protobuf_and_json_pushes_carry_the_same_streams(loki: Any) -> None:
    batch = two_tenants()
    await export(exporter_for(loki.endpoint, sending_queue=INLINE), batch)
    await export(exporter_for(loki.endpoint, sending_queue=INLINE, encoding="json"), batch)
    by_encoding: dict[str, Any] = {}
    for push in loki.pushes:
        by_encoding.setdefault(push.content_type, {})[push.tenant] = [(s.labels, s.entries) for s in push.streams]
    assert by_encoding["application/x-protobuf"] == by_encoding["application/json"]
    assert sorted(by_encoding["application/json"]) == ["blue", "red"]


async def test_static_tenant_and_headers(loki: Any) -> None:
    await export(exporter_for(loki.endpoint, tenant_id="team-a", headers={"Authorization": "Basic eA=="}),
                 make_logs(1))
    (push,) = loki.pushes
    assert push.tenant == "team-a"
    assert push.headers["Authorization"] == "Basic eA=="


async def test_429_waits_for_retry_after(loki: Any) -> None:
    loki.fail_next(1, 429, "Ingestion rate limit exceeded", retry_after="1")
    await export(exporter_for(loki.endpoint, sending_queue=INLINE), make_logs(2))
    first, second = loki.pushes
    assert (first.status, second.status) == (429, 204)
    assert second.at - first.at >= 0.99


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried_and_nothing_is_lost_or_duplicated(loki: Any, status: int) -> None:
    telemetry = Telemetry()
    loki.fail_next(2, status, "ingester unavailable")
    batches = [make_logs(3, body=f"batch {i}") for i in range(4)]
    await export(exporter_for(loki.endpoint, telemetry, sending_queue=ONE_AT_A_TIME), *batches)
    assert bodies(loki) == sorted(f"batch {i}" for i in range(4) for _ in range(3))
    assert len(loki.pushes) == 4 + 2
    assert metric(telemetry, "otelcol_exporter_sent_log_records_total") == 12
    assert metric(telemetry, "otelcol_exporter_send_failed_log_records_total") == 0


@pytest.mark.parametrize(("status", "message"), [
    (400, "entry for stream '{job=\"x\"}' has timestamp too old: 2023-11-14T22:13:20Z"),
    (401, "no org id"), (413, "request body too large"), (404, "404 page not found"),
])
async def test_other_4xx_are_dropped_at_once_counted_and_logged_with_lokis_message(
        loki: Any, caplog: Any, status: int, message: str) -> None:
    telemetry = Telemetry()
    loki.fail_next(1, status, message)
    await export(exporter_for(loki.endpoint, telemetry, sending_queue=ONE_AT_A_TIME), make_logs(1), make_logs(2))
    assert [p.status for p in loki.pushes] == [status, 204]
    assert metric(telemetry, "otelcol_exporter_send_failed_log_records_total") == 1
    assert metric(telemetry, "otelcol_exporter_sent_log_records_total") == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [(r.message, r.error, r.dropped_items) for r in errors] == [
        ("Exporting failed. The error is not retryable. Dropping data.", f"HTTP {status}: {message}", 1)]


async def test_a_batch_loki_refuses_as_invalid_is_bisected(loki: Any) -> None:
    telemetry = Telemetry()
    loki.fail_next(1, 400, "entry too old")  # the whole batch once; its halves are then taken
    await export(exporter_for(loki.endpoint, telemetry, sending_queue=ONE_AT_A_TIME), make_logs(4))
    assert [p.status for p in loki.pushes] == [400, 204, 204]
    assert metric(telemetry, "otelcol_exporter_sent_log_records_total") == 4
    assert metric(telemetry, "otelcol_exporter_send_failed_log_records_total") == 0


async def test_a_refusal_of_the_request_not_the_items_is_not_bisected(loki: Any) -> None:
    loki.fail_next(1, 401, "no org id")
    await export(exporter_for(loki.endpoint, sending_queue=ONE_AT_A_TIME), make_logs(4))
    assert [p.status for p in loki.pushes] == [401]


async def test_blocked_ingestion_is_not_success(loki: Any) -> None:
    loki.fail_next(1, 260, "")
    with pytest.raises(PermanentError, match=r"^HTTP 260 .*ingestion is blocked"):
        await export(exporter_for(loki.endpoint, sending_queue=INLINE), make_logs(1))


async def test_a_retry_resends_only_the_tenant_that_failed(loki: Any) -> None:
    loki.fail_next(1, 503)
    exporter = exporter_for(loki.endpoint, sending_queue=INLINE)
    await export(exporter, two_tenants())
    assert len(loki.pushes) == 3
    assert sorted((p.tenant, len(p.streams[0].entries)) for p in loki.accepted()) == [("blue", 2), ("red", 3)]
    assert exporter._parts.pending == 0


async def test_a_refused_tenant_is_a_partial_success(loki: Any) -> None:
    telemetry = Telemetry()
    loki.fail_next(1, 400, "stream limit")
    batch = make_logs(2, service="a", attributes={"loki.tenant": "team", "team": "red"})
    batch.resource_logs.extend(make_logs(2, service="b", attributes={"loki.tenant": "team", "team": "blue"})
                               .resource_logs)
    await export(exporter_for(loki.endpoint, telemetry, sending_queue=INLINE), batch)
    assert len(loki.pushes) == 2
    assert metric(telemetry, "otelcol_exporter_sent_log_records_total") == 2
    assert metric(telemetry, "otelcol_exporter_send_failed_log_records_total") == 2


async def test_unreachable_loki_is_a_retryable_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}/loki/api/v1/push", sending_queue=INLINE,
                            retry_on_failure=RetryConfig(enabled=False))
    with pytest.raises(RetryableError, match="ClientConnectorError"):
        await export(exporter, make_logs(1))


async def test_large_batches_are_translated_off_the_event_loop_and_arrive_whole(loki: Any) -> None:
    from gateway.helpers.parts import OFFLOAD_BYTES

    batch = make_logs(8000)
    assert batch.ByteSize() > OFFLOAD_BYTES
    await export(exporter_for(loki.endpoint, sending_queue=INLINE), batch)
    assert len(loki.entries()) == 8000
