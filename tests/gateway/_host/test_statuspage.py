"""The status page in a real headless Chromium (Debian's ``chromium``, installed by tests/install-test-servers.sh),
driven over the DevTools protocol: the page loads with the token from its URL fragment, the graph shows every
component of the running configuration, and the counters move while traffic flows."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.testing import make_logs, make_traces

sys.path.insert(0, str(Path(__file__).parents[1]))
from gwproc import GatewayProcess, free_port, http_get, http_post

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                                          "(tests/install-test-servers.sh installs it as root)")
TOKEN = "status-page-token"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def config(ports: dict[str, int]) -> str:
    return textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}"}}}}}}
        processors:
          batch: {{timeout: 10ms}}
          redaction: {{allow_all_keys: true}}
          alerts:
            evaluation_interval: 200ms
            rules:
              - {{alert: SpansFlow, metric: traces.span.metrics.calls, aggregation: last, window: 1m, op: gt,
                 threshold: 0, severity: info, annotations: {{summary: "spans arrive"}}}}
        connectors:
          span_metrics: {{metrics_flush_interval: 1s}}
        exporters:
          debug: {{verbosity: basic}}
          otlp_http/backend: {{endpoint: "http://127.0.0.1:{ports['closed']}",
                              headers: {{x-api-key: super-secret-key-1}},
                              sending_queue: {{enabled: false}}, retry_on_failure: {{enabled: false}}}}
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        service:
          extensions: [health_check]
          admin: {{endpoint: "127.0.0.1:{ports['admin']}", token: {TOKEN}}}
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [batch, redaction], exporters: [debug, span_metrics]}}
            metrics: {{receivers: [span_metrics], processors: [batch, alerts], exporters: [debug]}}
            logs: {{receivers: [otlp], exporters: [otlp_http/backend]}}
    """)


class DevTools:
    """A minimal DevTools-protocol client: one page target, ``Runtime.evaluate``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def evaluate(self, expression: str) -> Any:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": "Runtime.evaluate",
                                 "params": {"expression": expression, "returnByValue": True}})
        while True:
            message = await self.ws.receive_json(timeout=10)
            if message.get("id") == self.next_id:
                return message["result"]["result"].get("value")


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[tuple[DevTools, GatewayProcess]]:
    # "closed": a free port nothing listens on, so the logs pipeline's exporter fails every send
    ports = {name: free_port() for name in ("http", "health", "admin", "closed")}
    path = tmp_path / "gw.yaml"
    path.write_text(config(ports))
    gw = GatewayProcess(path, ports, tmp_path / "gw.log").start()
    profile = tempfile.mkdtemp(prefix="otelgw-chromium-")
    browser = None
    try:
        gw.wait_ready()
        assert CHROMIUM is not None
        browser = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                                    f"http://127.0.0.1:{ports['admin']}/ui#token={TOKEN}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert browser.stderr is not None
        endpoint = None
        deadline = time.monotonic() + 30
        while endpoint is None and time.monotonic() < deadline:
            line = await asyncio.to_thread(browser.stderr.readline)
            if not line and browser.poll() is not None:
                raise AssertionError(f"chromium exited with {browser.returncode}")
            if "DevTools listening on ws://" in line:
                endpoint = line.split("ws://", 1)[1].split("/", 1)[0]
        assert endpoint, "chromium did not open its DevTools port"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                async with session.get(f"http://{endpoint}/json/list") as answer:
                    targets = [t for t in await answer.json() if t["type"] == "page" and "/ui" in t["url"]]
                if targets:
                    break
                await asyncio.sleep(0.1)
            async with session.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield DevTools(ws), gw
    finally:
        if browser is not None:
            browser.kill()
            browser.wait()
        gw.kill()
        shutil.rmtree(profile, ignore_errors=True)


async def wait_for(devtools: DevTools, expression: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await devtools.evaluate(expression)
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def test_status_page_graph_and_live_counters(page: tuple[DevTools, GatewayProcess]) -> None:
    devtools, gw = page
    assert await wait_for(devtools, "document.getElementById('health').textContent === 'healthy'")
    nodes = json.loads(await devtools.evaluate(
        "JSON.stringify([...document.querySelectorAll('#graph g.node')].map(g => g.dataset.key).sort())"))
    assert nodes == sorted(["receiver:otlp", "processor:batch@traces", "processor:redaction@traces",
                            "processor:batch@metrics", "processor:alerts@metrics", "connector:span_metrics",
                            "exporter:debug", "exporter:otlp_http/backend"])
    edges = await devtools.evaluate("document.querySelectorAll('#graph path.edge').length")
    assert edges == 8
    # the token left the address bar; secrets are redacted in the effective configuration
    assert "token" not in await devtools.evaluate("location.href")
    shown_config = await devtools.evaluate("document.getElementById('config').textContent")
    assert "otlp_http/backend" in shown_config and "super-secret-key-1" not in shown_config
    assert "<redacted>" in shown_config

    cell = "document.querySelector('tr[data-key=\"receiver:otlp\"] td.in-total').textContent"
    assert await devtools.evaluate(cell) in ("0", "-")  # "-": the receiver has not counted anything yet
    received = f"Number({cell})"
    for _ in range(3):
        status, _ = await asyncio.to_thread(
            http_post, f"http://127.0.0.1:{gw.ports['http']}/v1/traces", make_traces(25).SerializeToString(),
            {"Content-Type": "application/x-protobuf"})
        assert status == 200
    # the open page follows without a reload
    assert await wait_for(devtools, f"{received} === 75")
    assert await wait_for(devtools, "Number(document.querySelector("
                                     "'tr[data-key=\"exporter:debug\"] td.out-total').textContent) >= 75")
    # the alert on span_metrics' counts fires once spans flowed, and the page lists it
    assert await wait_for(devtools, "document.querySelector('#alerts tr[data-alert=\"SpansFlow\"]')?.dataset.state "
                                    "=== 'firing'")
    assert not await devtools.evaluate("document.getElementById('alerts-part').hidden")
    # the page is served without the token, but carries no data; the data needs it
    status, body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{gw.ports['admin']}/ui")
    assert status == 200 and b"otelgw" in body and b"span_metrics" not in body
    status, _ = await asyncio.to_thread(http_get, f"http://127.0.0.1:{gw.ports['admin']}/api/stats")
    assert status == 401


async def test_status_page_shows_error_rates(page: tuple[DevTools, GatewayProcess]) -> None:
    """Logs go to an exporter whose backend is down (no queue, no retry): the receiver refuses them, the exporter
    fails them, and both rows show it as a rate while it happens; the traces pipeline beside them shows none."""
    devtools, gw = page
    assert await wait_for(devtools, "document.getElementById('health').textContent === 'healthy'")

    def row(key: str, cell: str) -> str:
        return f"document.querySelector('tr[data-key=\"{key}\"] td.{cell}').textContent"

    assert await devtools.evaluate(row("exporter:otlp_http/backend", "error-rate")) == "-"  # nothing reached it
    stop = asyncio.Event()

    async def send() -> None:
        while not stop.is_set():
            logs, traces = await asyncio.gather(
                asyncio.to_thread(http_post, f"http://127.0.0.1:{gw.ports['http']}/v1/logs",
                                  make_logs(10).SerializeToString(), {"Content-Type": "application/x-protobuf"}),
                asyncio.to_thread(http_post, f"http://127.0.0.1:{gw.ports['http']}/v1/traces",
                                  make_traces(10).SerializeToString(), {"Content-Type": "application/x-protobuf"}))
            assert logs[0] == 503 and traces[0] == 200  # the sender is told to retry: nothing is lost silently
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(send())
    try:
        assert await wait_for(devtools, f"{row('exporter:otlp_http/backend', 'error-rate')} === '100.0%'")
        assert await wait_for(devtools, f"Number({row('exporter:otlp_http/backend', 'failed-rate')}) > 0")
        # the receiver took traces and refused logs: part of what reached it was refused
        assert await wait_for(devtools, f"Number({row('receiver:otlp', 'refused-rate')}) > 0")
        receiver_rate = await devtools.evaluate(row("receiver:otlp", "error-rate"))
        assert receiver_rate.endswith("%") and 0 < float(receiver_rate[:-1]) < 100
        assert await wait_for(devtools, "document.querySelector('#graph g[data-key=\"exporter:otlp_http/backend\"] "
                                        "rect').classList.contains('failing')")
        assert await devtools.evaluate(row("exporter:debug", "error-rate")) == "0.0%"
        # the exporter's failures are listed under recent errors, with the component that logged them
        assert await wait_for(devtools, "[...document.querySelectorAll('#errors tbody tr')].some(tr => "
                                        "tr.cells[2].textContent === 'otlp_http/backend')")
    finally:
        stop.set()
        await sender
