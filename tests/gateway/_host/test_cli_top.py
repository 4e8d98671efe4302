"""``otelgw top`` in a terminal: it ends when the terminal goes away (an ssh session dropped, a demo killed)
instead of spinning on the end of its input, and its keys select, silence and resolve alerts."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from gwproc import GatewayProcess, free_port, http_get, http_post

from gateway.testing import make_traces


def test_top_ends_when_its_terminal_closes() -> None:
    leader, follower = pty.openpty()
    top = subprocess.Popen([sys.executable, "-m", "gateway", "top", "--admin", f"http://127.0.0.1:{free_port()}",
                            "--token", "unused"], stdin=follower, stdout=follower, stderr=follower,
                           start_new_session=True, env={**os.environ, "TERM": "xterm"})
    os.close(follower)
    try:
        screen = b""
        deadline = time.monotonic() + 60
        while b"otelgw top" not in screen:  # its panel: it is in cbreak mode, reading keys
            assert top.poll() is None and time.monotonic() < deadline, screen.decode(errors="replace")
            with contextlib.suppress(OSError):
                screen += os.read(leader, 65536)
        os.close(leader)
        leader = -1
        top.wait(30)  # generous: what is tested is that it ends at all (it spun at full CPU before)
    finally:
        if top.poll() is None:
            os.killpg(top.pid, signal.SIGKILL)
            top.wait()
        if leader >= 0:
            os.close(leader)


TOKEN = "top-keys-token"


def _config(ports: dict[str, int]) -> str:
    return textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}"}}}}}}
        processors:
          alerts:
            evaluation_interval: 200ms
            rules:
              - {{alert: SpansFlow, metric: traces.span.metrics.calls, aggregation: last, window: 1m, op: gt,
                 threshold: 0, severity: info}}
              - {{alert: ManySpansFlow, metric: traces.span.metrics.calls, aggregation: last, window: 1m, op: gt,
                 threshold: 0, severity: warning}}
        connectors:
          span_metrics: {{metrics_flush_interval: 200ms}}
        exporters:
          debug: {{verbosity: basic}}
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        service:
          extensions: [health_check]
          admin: {{endpoint: "127.0.0.1:{ports['admin']}", token: {TOKEN}}}
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [span_metrics]}}
            metrics: {{receivers: [span_metrics], processors: [alerts], exporters: [debug]}}
    """)


def test_top_keys_select_silence_and_resolve_the_selected_alert(tmp_path: Path) -> None:
    """In a terminal: down selects the second alert, s silences exactly its label set for an hour, r resolves it,
    each through the admin endpoint (checked there), and q quits."""
    ports = {name: free_port() for name in ("http", "health", "admin")}
    config = tmp_path / "gw.yaml"
    config.write_text(_config(ports))
    admin = f"http://127.0.0.1:{ports['admin']}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    gateway = GatewayProcess(config, ports, tmp_path / "gw.log").start()
    top: subprocess.Popen[bytes] | None = None
    leader = -1
    try:
        gateway.wait_ready()
        status, _ = http_post(f"http://127.0.0.1:{ports['http']}/v1/traces", make_traces(1).SerializeToString(),
                              {"Content-Type": "application/x-protobuf"})
        assert status == 200
        deadline = time.monotonic() + 60
        while True:  # both rules fire on the one series once span_metrics has flushed its count
            alerts = json.loads(http_get(f"{admin}/api/alerts", headers=auth)[1])["alerts"]
            if len(alerts) == 2 and all(a["state"] == "firing" for a in alerts):
                break
            assert time.monotonic() < deadline, [(a["alertname"], a["state"], a["labels"]) for a in alerts]
            time.sleep(0.2)
        second = alerts[1]  # top lists them in this order; down selects this one

        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 200, 0, 0))
        top = subprocess.Popen([sys.executable, "-m", "gateway", "top", "--admin", admin],
                               stdin=follower, stdout=follower, stderr=follower, start_new_session=True,
                               env={**os.environ, "TERM": "xterm", "OTELGW_ADMIN_TOKEN": TOKEN})
        os.close(follower)
        screen = bytearray()

        def read_until(text: bytes) -> None:
            end = time.monotonic() + 60
            while text not in screen:
                assert top is not None and top.poll() is None and time.monotonic() < end, \
                    screen.decode(errors="replace")[-3000:]
                ready, _, _ = select.select([leader], [], [], 0.2)
                if ready:
                    with contextlib.suppress(OSError):
                        screen.extend(os.read(leader, 65536))

        read_until(b"ManySpansFlow")
        os.write(leader, b"\x1b[B")  # down
        time.sleep(0.5)  # the key is read between two refreshes
        os.write(leader, b"s")
        read_until(f"silenced {second['alertname']} for 1h".encode())
        silences = json.loads(http_get(f"{admin}/api/alerts/silences", headers=auth)[1])["silences"]
        assert [s["matchers"] for s in silences] == [second["labels"]]
        assert [s["comment"] for s in silences] == ["silenced from otelgw top"]
        listed = json.loads(http_get(f"{admin}/api/alerts", headers=auth)[1])["alerts"]
        assert {a["alertname"]: a["silenced"] for a in listed} == {alerts[0]["alertname"]: False,
                                                                   second["alertname"]: True}
        os.write(leader, b"r")
        read_until(f"resolved {second['alertname']}".encode())
        os.write(leader, b"q")
        assert top.wait(30) == 0
    finally:
        if top is not None and top.poll() is None:
            os.killpg(top.pid, signal.SIGKILL)
            top.wait()
        if leader >= 0:
            os.close(leader)
        gateway.kill()
