"""Real scrape targets the tests start: the prometheus_client app (app.py) and Debian's node exporter."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from shutil import which

import pytest

NODE_EXPORTER = which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def app() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(host:port, process) of app.py."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("app.py"))], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"127.0.0.1:{port}", process
    finally:
        _stop(process)


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[str]:
    """host:port of a node exporter with a few collectors (cpu, meminfo, loadavg, filesystem)."""
    port = free_port()
    log = open(tmp_path / "node_exporter.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         "--collector.cpu", "--collector.meminfo", "--collector.loadavg", "--collector.filesystem"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "node_exporter.log").read_text()
                assert time.monotonic() < deadline, "node exporter did not answer within 15 s"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()
