"""Real OpenTelemetry SDK logs → gateway (OTLP/HTTP receiver → batch → loki, protobuf and JSON) → push server.

Every record the SDK emitted is found in Loki's decoded pushes with the labels, line, timestamp, structured
metadata and tenant that docs/protocols.md §2.6 gives for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from gateway._host.service import Service
from gateway.component import Kind

RESOURCE = {"service.name": "callcenter-api", "service.namespace": "support", "service.instance.id": "i-1",
            "deployment.environment": "test"}
LEVELS = {"WARN": "WARN", "ERROR": "ERROR", "INFO": "INFO"}


def emit(http_address: str) -> list[Any]:
    """Runs in a thread (the SDK exporter blocks); returns the SDK's own copy of every record."""
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"http://{http_address}/v1/logs")))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger("e2e.loki")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    tracer = TracerProvider().get_tracer("e2e")
    try:
        for i in range(12):
            extra = {"call.id": f"c-{i}", "loki.attribute.labels": "queue", "queue": f"q{i % 2}"}
            if i % 3 == 0:
                with tracer.start_as_current_span("handle call"):
                    logger.warning("caller %d abandoned after %d s", i, 30 + i, extra=extra)
            else:
                (logger.error if i % 3 == 1 else logger.info)("call %d \"routed\"\nto agent", i, extra=extra)
        provider.shutdown()
    finally:
        logger.removeHandler(handler)
    return list(memory.get_finished_logs())


def expected(readable: Any, *, promoted_resource: tuple[str, ...] = ()) -> tuple[Any, ...]:
    record = readable.log_record
    attributes = {k: v for k, v in record.attributes.items() if k not in ("loki.attribute.labels", "queue")}
    resources = {k: v for k, v in readable.resource.attributes.items() if k not in promoted_resource}
    line = {"body": record.body, "severity": record.severity_text,
            "attributes": attributes, "resources": resources, "instrumentation_scope": {"name": "e2e.loki"}}
    metadata = {}
    if record.trace_id:
        line |= {"traceid": f"{record.trace_id:032x}", "spanid": f"{record.span_id:016x}",
                 "flags": int(record.trace_flags)}
        metadata = {"trace_id": f"{record.trace_id:032x}", "span_id": f"{record.span_id:016x}"}
    labels = {"exporter": "OTLP", "job": "support/callcenter-api", "instance": "i-1",
              "level": LEVELS[record.severity_text], "queue": record.attributes["queue"]}
    return labels, record.timestamp, line, metadata


@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
async def test_sdk_logs_arrive_in_loki_with_labels_lines_and_metadata(loki: Any, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}
        processors:
          batch: {{timeout: 50ms}}
        exporters:
          loki:
            endpoint: "{loki.endpoint}"
            tenant_id: support
          loki/json:
            endpoint: "{loki.endpoint}"
            encoding: json
            tenant_id: support
            labels: {{resource: {{deployment.environment: env}}}}
        service:
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            logs: {{receivers: [otlp], processors: [batch], exporters: [loki, loki/json]}}
    """))
    gateway = Service.from_files([str(config)])
    await gateway.start()
    try:
        address = gateway.graph.find(Kind.RECEIVER, "otlp").http_address
        records = await asyncio.to_thread(emit, address)
        deadline = time.monotonic() + 15
        while len(loki.entries()) < 2 * len(records) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        assert await gateway.shutdown() == []
    assert len(records) == 12
    for content_type, extra_labels, promoted in (("application/x-protobuf", {}, ()),
                                                 ("application/json", {"env": "test"}, ("deployment.environment",))):
        pushes = [p for p in loki.accepted() if p.content_type == content_type]
        assert {p.tenant for p in pushes} == {"support"}
        received = sorted(((s.labels, ts, json.loads(line), md) for p in pushes for s in p.streams
                           for ts, line, md in s.entries), key=lambda e: e[1])
        want = sorted((expected(r, promoted_resource=promoted) for r in records), key=lambda e: e[1])
        assert received == [({**labels, **extra_labels}, ts, line, md) for labels, ts, line, md in want]
        for push in pushes:  # entries of a stream in timestamp order
            for stream in push.streams:
                assert [ts for ts, _, _ in stream.entries] == sorted(ts for ts, _, _ in stream.entries)
