"""Shared by the filelog tests (imported by path): an in-process gateway exporting to a real OTLP sink."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway._host.service import Service
from gateway.component import Signal
from gateway.testing.otlp_sink import OtlpSink


def sink_records(sink: OtlpSink) -> list[tuple[dict[str, Any], Any]]:
    """Every log record the sink accepted, with its resource attributes as a dict."""
    out = []
    for received in sink.received(Signal.LOGS):
        if not received.accepted:
            continue
        for rl in received.batch.resource_logs:
            resource = {kv.key: kv.value.string_value for kv in rl.resource.attributes}
            for sl in rl.scope_logs:
                out.extend((resource, record) for record in sl.log_records)
    return out


def bodies(sink: OtlpSink) -> list[str]:
    return [record.body.string_value for _, record in sink_records(sink)]


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


class Gateway:
    """``receivers: filelog: <yaml>`` → otlp exporter → sink, in this process."""

    def __init__(self, tmp_path: Path, sink: OtlpSink) -> None:
        self.tmp_path = tmp_path
        self.sink = sink
        self.service: Service | None = None

    async def start(self, receiver_yaml: str, extensions_yaml: str = "", exporter_extra: str = "") -> Service:
        config = self.tmp_path / "gateway.yaml"
        extensions = textwrap.dedent(extensions_yaml).strip()
        ext_ids = []
        if extensions:
            ext_ids = [line.split(":")[0].strip() for line in extensions.splitlines() if not line.startswith(" ")]
        config.write_text(
            "receivers:\n  filelog:\n" + textwrap.indent(textwrap.dedent(receiver_yaml).strip(), "    ") + "\n"
            + f"exporters:\n  otlp:\n    endpoint: \"{self.sink.grpc_endpoint}\"\n    tls: {{insecure: true}}\n"
            + "    retry_on_failure: {enabled: false}\n" + exporter_extra
            + (f"extensions:\n{textwrap.indent(extensions, '  ')}\n" if extensions else "")
            + "service:\n  telemetry: {metrics: {address: \"\"}}\n"
            + (f"  extensions: [{', '.join(ext_ids)}]\n" if ext_ids else "")
            + "  pipelines:\n    logs: {receivers: [filelog], exporters: [otlp]}\n")
        self.service = Service.from_files([str(config)])
        await self.service.start()
        return self.service

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.shutdown()
            self.service = None


