"""Sending-queue workers never die silently: one that raises is logged at ERROR, counted, and restarted."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway._host.telemetry import Telemetry
from gateway.component import ComponentID, Kind, Signal
from gateway.helpers import exporter
from gateway.helpers.exporter import ExporterHelper, PartialSuccess, QueueConfig, RetryConfig
from gateway.testing import make_host, make_traces, settings_for
from plugins.extensions.file_storage.config import Config as StorageConfig
from plugins.extensions.file_storage.extension import FileStorage


def named(name: str) -> ExportTraceServiceRequest:
    request = make_traces(3)
    request.resource_spans[0].scope_spans[0].spans[0].name = name
    return request


class BuggyBackend:
    """An exporter whose send has a bug for one request: it returns something that is not a PartialSuccess."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def send(self, request: ExportTraceServiceRequest) -> PartialSuccess | None:
        name = str(request.resource_spans[0].scope_spans[0].spans[0].name)
        if name == "poison":
            return "not a PartialSuccess"  # type: ignore[return-value]
        self.names.append(name)
        return None


@pytest.mark.parametrize("storage", [False, True])
async def test_a_worker_that_raises_is_logged_counted_and_restarted(
        tmp_path: Path, storage: bool, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter, "WORKER_RESTART_DELAY", 0.01)
    telemetry = Telemetry()
    host = make_host(telemetry)
    if storage:
        extension = FileStorage(settings_for(Kind.EXTENSION, "file_storage"), StorageConfig(directory=str(tmp_path)))
        host.extensions[ComponentID("file_storage")] = extension
    backend = BuggyBackend()
    helper = ExporterHelper(settings_for(Kind.EXPORTER, "otlp", Signal.TRACES, telemetry), backend.send, timeout=1,
                            queue=QueueConfig(num_consumers=1, storage="file_storage" if storage else None),
                            retry=RetryConfig(enabled=False), drain_timeout=1)
    await helper.start(host)
    with caplog.at_level(logging.ERROR):
        for name in ("a", "poison", "b", "poison", "c"):
            await helper.consume(named(name))
        for _ in range(300):
            if len(backend.names) == 3:
                break
            await asyncio.sleep(0.01)
    assert backend.names == ["a", "b", "c"]  # the one worker came back twice and went on draining
    labels = {"exporter": "otlp", "data_type": "traces"}
    assert telemetry.registry.get_sample_value("otelgw_exporter_queue_worker_restarts_total", labels) == 2
    assert telemetry.registry.get_sample_value("otelcol_exporter_send_failed_spans_total", {"exporter": "otlp"}) == 6
    failures = [r for r in caplog.records if "worker failed; restarting" in r.getMessage()]
    assert len(failures) == 2 and all(r.levelno == logging.ERROR and r.exc_info for r in failures)
    assert all(not task.done() for task in helper._workers)
    await helper.shutdown()
