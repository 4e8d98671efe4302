"""Operability with real processes: a busy port is one clear line and a non-zero exit, not a traceback; the
start-up log names the address actually bound; a rejected reload logs every error."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess, free_port

CONFIG = """
extensions:
  health_check: {{endpoint: "{health}"}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "{grpc}"}}
      http: {{endpoint: "{http}"}}
exporters:
  debug: {{verbosity: basic}}
service:
  extensions: [health_check]
  admin: {{endpoint: "{admin}", token: "{token}"}}
  telemetry: {{metrics: {{address: "{metrics}"}}}}
  pipelines: {{traces: {{receivers: [otlp], exporters: [debug]}}}}
"""


def endpoints() -> dict[str, str]:
    return {name: f"127.0.0.1:{free_port()}" for name in ("health", "grpc", "http", "admin", "metrics")}


def run(config: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize(("busy", "component"), [
    ("health", "health_check extension health_check"),
    ("grpc", "otlp receiver (gRPC)"),
    ("http", "otlp receiver (HTTP)"),
    ("admin", "service::admin"),
    ("metrics", "service::telemetry::metrics"),
])
def test_an_address_in_use_is_one_clear_line(busy: str, component: str, tmp_path: Path) -> None:
    addresses = endpoints()
    host, port = addresses[busy].rsplit(":", 1)
    with socket.create_server((host, int(port))):  # someone else holds the port
        path = tmp_path / "gateway.yaml"
        path.write_text(CONFIG.format(token="t0ken-t0ken", **addresses))
        result = run(path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("otelgw:")]
    assert errors == [f"otelgw: {component} cannot listen on {addresses[busy]}: address already in use"], \
        result.stderr


def test_the_start_up_log_names_the_address_bound_and_a_rejected_reload_logs_its_errors(tmp_path: Path) -> None:
    ports = {"health": free_port(), "grpc": free_port(), "http": free_port()}
    addresses = {"health": f"127.0.0.1:{ports['health']}", "grpc": f"0.0.0.0:{ports['grpc']}",
                 "http": f"127.0.0.1:{ports['http']}", "admin": "", "metrics": ""}
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.format(token="", **addresses).replace('  admin: {endpoint: "", token: ""}\n', ""))
    gateway = GatewayProcess(path, ports, tmp_path / "gateway.log").start()
    try:
        gateway.wait_ready()
        log = gateway.log()
        assert f'"grpc": "0.0.0.0:{ports["grpc"]}"' in log  # every interface, said so
        assert f'"http": "127.0.0.1:{ports["http"]}"' in log
        path.write_text(path.read_text().replace("verbosity: basic", "verbosity: loud").replace(
            "exporters: [debug]}", "exporters: [debug, nope]}"))
        gateway.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reload rejected" not in gateway.log():
            assert time.monotonic() < deadline, gateway.log()
            time.sleep(0.05)
        time.sleep(0.1)
        log = gateway.log()
        assert "exporters::debug::verbosity" in log and "'nope', which is not configured" in log, log
    finally:
        assert gateway.stop() == 0


def _kubelet_update(directory: Path, name: str, text: str, generation: int) -> None:
    """Write ``text`` as kubelet writes a ConfigMap volume: a new timestamped directory, then the ``..data``
    symlink swapped atomically; ``name`` itself is a symlink through ``..data`` and never changes."""
    version = directory / f"..2026_12_06_{generation}"
    version.mkdir()
    (version / name).write_text(text)
    temporary = directory / "..data_tmp"
    temporary.symlink_to(version.name)
    temporary.rename(directory / "..data")
    if not (directory / name).is_symlink():
        (directory / name).symlink_to(f"..data/{name}")


def test_watch_config_reloads_a_configmap_style_update(tmp_path: Path) -> None:
    ports = {"health": free_port(), "grpc": free_port(), "http": free_port(), "http2": free_port()}
    addresses = {"health": f"127.0.0.1:{ports['health']}", "grpc": f"127.0.0.1:{ports['grpc']}",
                 "http": f"127.0.0.1:{ports['http']}", "admin": "", "metrics": ""}
    first = CONFIG.format(token="", **addresses).replace('  admin: {endpoint: "", token: ""}\n', "")
    directory = tmp_path / "config"
    directory.mkdir()
    _kubelet_update(directory, "gateway.yaml", first, 1)
    gateway = GatewayProcess(directory / "gateway.yaml", ports, tmp_path / "gateway.log")
    gateway.start("--watch-config", "0.2")
    try:
        gateway.wait_ready()
        assert not _listening(ports["http2"])
        _kubelet_update(directory, "gateway.yaml", first.replace(addresses["http"], f"127.0.0.1:{ports['http2']}"), 2)
        deadline = time.monotonic() + 15
        while "configuration reloaded" not in gateway.log():
            assert time.monotonic() < deadline, gateway.log()
            time.sleep(0.05)
        assert "a configuration file changed" in gateway.log()
        assert _listening(ports["http2"]) and not _listening(ports["http"])
    finally:
        assert gateway.stop() == 0


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
