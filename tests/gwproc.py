"""A gateway in a subprocess for the production tests (memory, SIGKILL, reload): ports, readiness, metrics.

Imported by path (the suite runs with --import-mode=importlib): ``sys.path.insert(0, <tests dir>)``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, body: bytes = b"", headers: dict[str, str] | None = None,
              timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class GatewayProcess:
    """``python -m gateway run --config <file>``; ``ports`` holds the loopback ports the config may use.

    Every process started is remembered until it has exited: tests/conftest.py kills what a test left running
    (a failed assertion before its ``stop()``), so no gateway outlives its test."""

    running: ClassVar[set[GatewayProcess]] = set()

    def __init__(self, config_path: Path, ports: dict[str, int], log_path: Path,
                 command: Sequence[str] = (sys.executable, "-m", "gateway")) -> None:
        self.config_path = config_path
        #: How otelgw is started; a fresh venv's ``bin/otelgw`` for plugins installed there.
        self.command = list(command)
        self.ports = ports
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra_args: str) -> GatewayProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [*self.command, "run", "--config", str(self.config_path), *extra_args],
            stdout=log, stderr=log,
            # a generated admin token goes next to the log, not into the user's ~/.otelgw
            env={"OTELGW_STATE_DIR": str(self.log_path.parent / "state"), **os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        GatewayProcess.running.add(self)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.ports['health']}/health/ready"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited with {self.process.returncode}:\n{self.log()}")
            try:
                if http_get(url, timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"gateway not ready after {timeout}s:\n{self.log()}")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of every sample of ``name`` whose labels include ``labels``."""
        _, body = http_get(f"http://127.0.0.1:{self.ports['metrics']}/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
            if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
                total += float(match.group(2))
        return total

    def status_kb(self, field: str) -> int:
        """A ``/proc/<pid>/status`` memory field in KiB (VmRSS now, VmHWM the peak)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def send_signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"2m"``) mounted on ``path`` for disk-full tests; skips the test when mounting is not
    permitted (not root, or a container without CAP_SYS_ADMIN). Unmounted on the way out, also on failure."""
    import pytest

    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full test: {result.stderr.strip() or result.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path, name: str = "filler") -> Path:
    """Fill the file system of ``directory`` to the last byte with one file; delete it to give the space back."""
    filler = directory / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):  # big steps first, then what is left
            with contextlib.suppress(OSError):
                while os.write(fd, b"\xff" * size) == size:
                    pass
    finally:
        os.close(fd)
    return filler
