"""A hostile config file (YAML alias bomb, deep nesting) is refused quickly, at start-up and on hot reload
(SIGHUP and ``POST /-/reload``), and a running gateway keeps its pipelines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess, free_port, http_get, http_post

BOMB = "\n".join(["x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                 + [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 9)}]" for i in range(1, 10)]) + "\n"
DEEP = "x: " + "[" * 3000 + "]" * 3000 + "\n"


def good_config(ports: dict[str, int]) -> str:
    return textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}"}}}}}}
        exporters:
          debug: {{verbosity: basic}}
        service:
          extensions: [health_check]
          admin: {{endpoint: "127.0.0.1:{ports['admin']}", token: t0ken-for-tests}}
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [debug]}}
    """)


@pytest.mark.parametrize(("hostile", "message"), [(BOMB, "through its aliases"), (DEEP, "nesting is deeper")])
def test_validate_refuses_a_hostile_file_quickly(tmp_path: Path, hostile: str, message: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(hostile)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "gateway", "validate", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert time.monotonic() - started < 20  # interpreter start-up included; expanding the bomb takes minutes


def test_a_running_gateway_refuses_a_hostile_reload_and_keeps_serving(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("http", "health", "metrics", "admin")}
    path = tmp_path / "gateway.yaml"
    path.write_text(good_config(ports))
    gateway = GatewayProcess(path, ports, tmp_path / "gateway.log").start()
    try:
        gateway.wait_ready()
        for hostile in (BOMB, DEEP):
            path.write_text(good_config(ports) + hostile)
            started = time.monotonic()
            status, body = http_post(f"http://127.0.0.1:{ports['admin']}/-/reload", b"{}", timeout=10, headers={
                "Authorization": "Bearer t0ken-for-tests", "Content-Type": "application/json"})
            assert time.monotonic() - started < 2, "the reload took too long to be refused"
            assert status == 400
            answer = json.loads(body)
            assert answer["reloaded"] is False
            assert any("through its aliases" in e or "nesting is deeper" in e for e in answer["errors"])
        before = gateway.log().count("reload rejected")
        gateway.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while gateway.log().count("reload rejected") == before:
            assert time.monotonic() < deadline, gateway.log()
            time.sleep(0.05)
        assert gateway.status_kb("VmHWM") < 500_000  # bounded: expanding the bomb would take gigabytes
        assert http_get(f"http://127.0.0.1:{ports['health']}/health/ready")[0] == 200
        status, _ = http_post(f"http://127.0.0.1:{ports['http']}/v1/traces", b"",
                              {"Content-Type": "application/x-protobuf"})
        assert status == 200
        assert gateway.stop() == 0
    finally:
        gateway.kill()
