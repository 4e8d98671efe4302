"""health_check in a real gateway: ready only between the end of start-up and the beginning of shutdown.

The receiver is a tiny in-test plugin (the OTLP receiver lives elsewhere), so the test covers the extension,
the batch processor's shutdown drain and the file exporter through the real config loader, graph and service.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

import plugins.exporters.debug
import plugins.exporters.file
import plugins.extensions.health_check
import plugins.processors.batch
from gateway import Factory, Kind, Signal, hookimpl
from gateway._host.registry import load_registry
from gateway._host.service import Service, load_config
from gateway.component import ComponentID, consume
from gateway.testing import make_traces


@dataclass(frozen=True)
class InProcConfig:
    pass


Probe = Callable[[], Awaitable[None]]


class InProcReceiver:
    """Hands batches pushed by the test to its pipeline; runs a probe while it starts and while it stops."""

    def __init__(self, settings: Any, config: InProcConfig, next_consumer: Any) -> None:
        self.signal: Signal = settings.signal
        self.next = next_consumer
        self.on_start: Probe | None = None
        self.on_shutdown: Probe | None = None

    async def start(self, host: Any) -> None:
        if self.on_start is not None:
            await self.on_start()

    async def shutdown(self) -> None:
        if self.on_shutdown is not None:
            await self.on_shutdown()

    async def push(self, batch: Any) -> None:
        await consume(self.next, self.signal, batch)


INPROC = Factory("inproc", Kind.RECEIVER, InProcConfig, create_traces=InProcReceiver)
inproc_plugin = SimpleNamespace(otelgw_component_factories=hookimpl(lambda: [INPROC]))

PLUGINS = [inproc_plugin, plugins.processors.batch, plugins.exporters.debug, plugins.exporters.file,
           plugins.extensions.health_check]


@pytest.fixture
def service(tmp_path: Path) -> Service:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""
extensions:
  health_check:
    endpoint: 127.0.0.1:0
receivers:
  inproc:
processors:
  batch:
    timeout: 60s
exporters:
  debug:
  file:
    path: {tmp_path / "out" / "spans.jsonl"}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [inproc]
      processors: [batch]
      exporters: [debug, file]
""")
    # Only the plugins this test needs, not every installed entry point: parallel work cannot break it.
    registry = load_registry(PLUGINS, entry_points=False)
    return Service(load_config([str(config)], registry), registry)


async def get(address: str, path: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}{path}") as response:
        return response.status, await response.json()


async def test_ready_after_start_not_ready_once_shutdown_begins(service: Service, tmp_path: Path) -> None:
    receiver = service.graph.find(Kind.RECEIVER, "inproc", Signal.TRACES)
    seen: dict[str, tuple[int, dict[str, Any]]] = {}

    def health_address() -> str:
        return service.host.extensions[ComponentID("health_check")].address  # type: ignore[no-any-return]

    async def while_starting() -> None:
        seen["starting"] = await get(health_address(), "/health/ready")

    async def while_stopping() -> None:
        seen["stopping"] = await get(health_address(), "/health/ready")
        seen["stopping-live"] = await get(health_address(), "/health/live")

    receiver.on_start, receiver.on_shutdown = while_starting, while_stopping
    await service.start()
    try:
        status, body = await get(health_address(), "/health/ready")
        assert status == 200, body
        assert body["status"] == "Server available"
        assert body["components"]["receiver:inproc"]["status"] == "ok"
        assert body["components"]["traces/processor:batch"]["status"] == "ok"
        assert body["components"]["extension:health_check"]["status"] == "ok"
        assert (await get(health_address(), "/"))[0] == 200
        # The batch processor answers a sender once the batch was handed on: with its 60 s timeout, only the
        # shutdown drain can answer this push.
        pushed = asyncio.get_running_loop().create_task(receiver.push(make_traces(5)))
        await asyncio.sleep(0.1)
        assert not pushed.done()
    finally:
        address = health_address()
        errors = await service.shutdown()
    assert errors == []
    await asyncio.wait_for(pushed, 5)  # answered OK by the drain, not by the timer

    assert seen["starting"][0] == 503  # extensions are up before the pipelines are
    status, body = seen["stopping"]
    assert status == 503 and body["status"] == "Server not available"
    assert seen["stopping-live"][0] == 200  # still alive while draining
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(address, "/health/live")  # the extension stopped after the pipelines

    lines = (tmp_path / "out" / "spans.jsonl").read_text().splitlines()
    spans = [s for line in lines for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"]
             for s in ss["spans"]]
    assert len(spans) == 5  # held by batch (60 s timeout), written by the shutdown drain
