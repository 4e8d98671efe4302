"""Taps: nothing on the data path while detached, bounded while attached, ended by a reload; the stream route."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp

from gateway._host.service import Service
from gateway._host.tap import QUEUE_SIZE, Tap, _trim, attach, detach, tap_points
from gateway.component import Kind, Signal, count_items
from gateway.testing import make_traces

TOKEN = "tap-test-token"
CONFIG = textwrap.dedent(f"""
    receivers:
      otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}
    processors:
      batch/first: {{timeout: 1ms}}
      redaction: {{allow_all_keys: true, blocked_values: ['secret-[0-9]+']}}
      batch/last: {{timeout: 1ms}}
    connectors:
      span_metrics: {{metrics_flush_interval: 1h}}
    exporters:
      debug: {{verbosity: basic}}
    service:
      admin: {{endpoint: "127.0.0.1:0", token: {TOKEN}}}
      telemetry: {{metrics: {{address: ""}}}}
      pipelines:
        traces:
          receivers: [otlp]
          processors: [batch/first, redaction, batch/last]
          exporters: [debug, span_metrics]
        metrics: {{receivers: [span_metrics], exporters: [debug]}}
""")


def chain(service: Service) -> list[tuple[str, list[int], list[int]]]:
    """Every outlet of every node with the ids of its consumers: the data path as built."""
    return [(node.label, [id(c) for c in outlet.readonly], [id(c) for c in outlet.mutating])
            for node in service.graph.nodes for outlet in node.outlets]


async def started(tmp_path: Path, text: str = CONFIG) -> Service:
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    service = Service.from_files([str(path)])
    await service.start()
    return service


async def test_a_detached_tap_leaves_the_data_path_as_built(tmp_path: Path) -> None:
    service = await started(tmp_path)
    try:
        built = chain(service)
        assert all(Tap not in map(type, o.readonly) for n in service.graph.nodes for o in n.outlets)
        for component in ("otlp", "batch/first", "redaction", "batch/last", "span_metrics"):
            points = tap_points(service.graph, component)
            tap = Tap({p.signal for p in points})
            attach(tap, points)
            assert chain(service) != built
            detach(tap, points)
            assert chain(service) == built, component
        # every receiver, processor and connector has an outlet; exporters have none
        assert {n.kind for n in service.graph.nodes if n.outlets} == {Kind.RECEIVER, Kind.PROCESSOR, Kind.CONNECTOR}
        assert all(not n.outlets for n in service.graph.nodes if n.kind is Kind.EXPORTER)
    finally:
        await service.shutdown()


async def test_an_attached_tap_is_bounded_and_never_holds_the_pipeline(tmp_path: Path) -> None:
    service = await started(tmp_path)
    try:
        points = tap_points(service.graph, "otlp")
        tap = Tap({Signal.TRACES}, rate=1e6)  # only the queue bounds it here: nobody reads it
        attach(tap, points)
        inlet = next(n for n in service.graph.nodes if n.kind is Kind.RECEIVER).outlets[0]
        for i in range(QUEUE_SIZE * 4):
            await inlet.consume_traces(make_traces(10, attributes={"card": f"secret-{i}"}))
        assert tap.queue.qsize() == QUEUE_SIZE
        assert tap.skipped == 10 * QUEUE_SIZE * 3
        detach(tap, points)
        _, data, items = tap.queue.get_nowait()
        assert items == 10 and b"secret-0" in data  # before redaction
        # the pipeline got everything
        sent = service.telemetry.exporter_sent["spans"].labels("debug")
        for _ in range(200):
            if sent._value.get() == 10 * QUEUE_SIZE * 4:
                break
            await asyncio.sleep(0.05)
        assert sent._value.get() == 10 * QUEUE_SIZE * 4

        limited = Tap({Signal.TRACES}, rate=50)  # the rate bounds this one: 50 items/s, a batch may borrow ahead
        attach(limited, points)
        began = time.monotonic()
        for _ in range(40):
            await inlet.consume_traces(make_traces(10))
        elapsed = time.monotonic() - began
        detach(limited, points)
        sampled = 400 - limited.skipped
        assert sampled == 10 * limited.queue.qsize()
        assert sampled <= 50 + 50 * elapsed + 10, (sampled, elapsed)
    finally:
        await service.shutdown()


def test_trim_keeps_the_first_items_and_no_empty_containers() -> None:
    batch = make_traces(6)
    extra = batch.resource_spans.add()
    extra.CopyFrom(batch.resource_spans[0])
    _trim(Signal.TRACES, batch, 4)
    assert count_items(Signal.TRACES, batch) == 4 and len(batch.resource_spans) == 1


async def stream(service: Service, query: str, token: str = TOKEN) -> tuple[int, list[Any]]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://{service.admin.address}/api/tap?{query}", headers={"Authorization": f"Bearer {token}"}) as r:
        if r.status != 200:
            return r.status, [await r.json()]
        return r.status, [json.loads(line) async for line in r.content if line.strip()]


async def test_tap_route_streams_and_a_reload_ends_it(tmp_path: Path) -> None:
    service = await started(tmp_path)
    try:
        reader = asyncio.create_task(stream(service, "component=span_metrics&signal=metrics"))
        while service.taps.attached == 0:
            await asyncio.sleep(0.01)
        result = await service.reload()
        assert result.ok
        status, lines = await asyncio.wait_for(reader, 5)
        assert status == 200 and lines[0]["tap"]["component"] == "span_metrics"
        assert lines[0]["tap"]["signals"] == ["metrics"]
        assert "reloaded" in lines[-1]["end"]
        assert service.taps.attached == 0 and service.generation == 1

        status, lines = await stream(service, "component=nope")
        assert status == 404 and "receiver:otlp" in lines[0]["error"]
        status, lines = await stream(service, "component=redaction&limit=-1")
        assert status == 400
        status, _ = await stream(service, "component=redaction", token="wrong")
        assert status == 401
    finally:
        await service.shutdown()


RELAYED = textwrap.dedent("""
    receivers:
      otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}
    processors:
      batch: {timeout: 1ms}
      redaction: {allow_all_keys: true, blocked_values: ['secret-[0-9]+']}
    connectors:
      forward/redact: {}
      forward/out: {}
      span_metrics: {metrics_flush_interval: 1h}
    exporters:
      debug: {verbosity: basic}
    service:
      telemetry: {metrics: {address: ""}}
      pipelines:
        traces/in: {receivers: [otlp], processors: [batch], exporters: [forward/redact, span_metrics]}
        traces/redact: {receivers: [forward/redact], processors: [redaction], exporters: [forward/out]}
        traces/out: {receivers: [forward/out], processors: [batch], exporters: [debug]}
        metrics: {receivers: [span_metrics], processors: [batch], exporters: [debug]}
""")


async def test_tap_headers_follow_the_data_through_connectors_that_relay_it(tmp_path: Path) -> None:
    """A tap before a forward connector whose pipeline redacts says the data is not yet redacted; one after says it
    was; connectors that derive other data (span_metrics) are not followed."""
    service = await started(tmp_path, RELAYED)
    try:
        def header(component: str, pipeline: str | None = None) -> tuple[list[str], list[str]]:
            points = [p for p in tap_points(service.graph, component) if pipeline in (None, p.node.pipeline)]
            assert points
            return (sorted({r for p in points for r in p.redacted_by}),
                    sorted({r for p in points for r in p.not_yet_redacted_by}))

        assert header("otlp") == ([], ["redaction"])
        assert header("batch", "traces/in") == ([], ["redaction"])
        assert header("forward/redact") == ([], ["redaction"])
        assert header("redaction") == (["redaction"], [])
        assert header("forward/out") == (["redaction"], [])
        assert header("batch", "traces/out") == (["redaction"], [])
        assert header("span_metrics") == ([], [])  # derived metrics: neither claim
        assert header("batch", "metrics") == ([], [])
    finally:
        await service.shutdown()
