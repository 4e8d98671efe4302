"""The supervisor of ``otelgw run --workers N``: starts N worker processes, restarts one that dies, passes
SIGHUP (reload) and SIGTERM/SIGINT (drain and stop) on to every worker, and serves one view of the whole gateway
(``view.py``).

Each worker is ``python -m gateway run`` on the same files, told its place by the environment (``context.py``):
its receivers bind the configured ports with SO_REUSEPORT, so the kernel spreads connections over the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal as signals
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from gateway._host.children import die_with_parent
from gateway._host.config import GatewayConfig
from gateway._host.redact import register
from gateway.component import Kind
from gateway.netaddr import split_host_port

from .context import WORKER_DIR_ENV, WORKER_ENV, WORKER_TOKEN_ENV, WorkerContext
from .view import View

__all__ = ["Supervisor", "worker_config_errors"]

log = logging.getLogger("otelgw.workers")

#: Receiver types whose servers several workers can share (SO_REUSEPORT). Any other receiver would run once per
#: worker: N scrapes of the same target, N readers of the same file.
SHAREABLE_RECEIVERS = frozenset({"otlp"})
#: Restart delays after a worker died: doubled per quick death, up to the maximum.
RESTART_DELAY_S, MAX_RESTART_DELAY_S = 0.5, 30.0
#: A worker that ran this long before dying is restarted without delay growth.
STABLE_AFTER_S = 60.0


def worker_config_errors(config: GatewayConfig, count: int) -> list[str]:
    """What in ``config`` cannot run as ``count`` workers, one message each."""
    errors = []
    for cid in sorted({cid for p in config.pipelines.values() for cid in p.receivers}, key=str):
        try:
            cc = config.get(Kind.RECEIVER, cid)
        except KeyError:
            continue  # a connector
        if cid.type not in SHAREABLE_RECEIVERS:
            errors.append(f"receivers::{cid}: --workers {count} runs only receivers the workers can share "
                          f"({', '.join(sorted(SHAREABLE_RECEIVERS))}); a {cid.type} receiver would run once per "
                          f"worker. Run it in a gateway of its own with --workers 1")
            continue
        protocols = getattr(cc.config, "protocols", None)
        for name in ("grpc", "http"):
            server = getattr(protocols, name, None)
            if server is not None and split_host_port(server.endpoint)[1] == 0:
                errors.append(f"receivers::{cid}::protocols::{name}::endpoint: port 0 would give every worker "
                              f"a port of its own; --workers {count} needs a fixed port")
    return errors


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0.0
        self.delay = RESTART_DELAY_S
        self.restarts = 0


class Supervisor:
    def __init__(self, config: GatewayConfig, config_paths: Sequence[str], count: int, grace_period: float,
                 watch_interval: float = 0.0) -> None:
        self.config = config
        self.config_paths = list(config_paths)
        self.count = count
        self.grace_period = grace_period
        self.watch_interval = watch_interval
        self.directory = Path(tempfile.mkdtemp(prefix="otelgw-workers-"))
        self.token = secrets.token_urlsafe(32)
        register([self.token])
        self.context = WorkerContext(-1, count, self.directory, self.token)
        self.workers = [_Worker(i) for i in range(count)]
        self.view = View(self)
        self._stopping = False
        self._stop = asyncio.Event()
        #: The exit code of a worker that could not start its first time; the gateway's exit code then.
        self._start_failure = 0
        self._claims: list[socket.socket] = []

    def pid(self, index: int) -> int | None:
        process = self.workers[index].process
        return process.pid if process is not None and process.returncode is None else None

    async def _spawn(self, worker: _Worker) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.context.report_path(worker.index).unlink()  # the previous process's ports are gone
        args = [sys.executable, "-m", "gateway", "run", "--grace-period", str(self.grace_period)]
        for path in self.config_paths:
            args += ["--config", path]
        if self.watch_interval > 0:
            args += ["--watch-config", str(self.watch_interval)]
        env = {**os.environ, WORKER_ENV: f"{worker.index}/{self.count}", WORKER_DIR_ENV: str(self.directory),
               WORKER_TOKEN_ENV: self.token}
        worker.process = await asyncio.create_subprocess_exec(
            *args, env=env, preexec_fn=die_with_parent)
        worker.started = time.monotonic()
        log.info("worker started", extra={"worker": worker.index, "pid": worker.process.pid})

    async def _watch(self, worker: _Worker) -> int:
        """Wait for the worker to exit; restart it unless the gateway is stopping. Returns its last exit code."""
        while True:
            assert worker.process is not None
            code = await worker.process.wait()
            if self._stopping:
                return code
            if worker.restarts == 0 and not self._became_ready(worker):
                # As a single gateway would: a configuration the worker cannot start (a port in use, a file it
                # cannot read) stops the gateway with the worker's error and exit code, instead of a restart loop.
                log.error("a worker could not start; stopping", extra={"worker": worker.index, "exit_code": code})
                self._start_failure = self._start_failure or code or 1
                self._stop.set()
                return code
            lived = time.monotonic() - worker.started
            worker.delay = RESTART_DELAY_S if lived >= STABLE_AFTER_S else min(worker.delay * 2, MAX_RESTART_DELAY_S)
            worker.restarts += 1
            log.error("worker exited; restarting it", extra={
                "worker": worker.index, "pid": worker.process.pid, "exit_code": code, "ran_s": round(lived, 1),
                "restart_in_s": worker.delay})
            await asyncio.sleep(worker.delay)
            if self._stopping:
                return code
            await self._spawn(worker)

    def _became_ready(self, worker: _Worker) -> bool:
        """Whether the worker's current process started its pipelines (it wrote its report then)."""
        assert worker.process is not None
        try:
            return bool(json.loads(self.context.report_path(worker.index).read_text()).get("pid") == worker.process.pid)
        except (OSError, ValueError):
            return False

    def _claim_ports(self) -> None:
        """Hold an abstract unix socket per receiver port: SO_REUSEPORT would let a second ``--workers`` gateway of
        the same user share the ports silently, so the second one stops here with a message instead (Linux; the
        kernel releases the name when this process ends, however it ends)."""
        if sys.platform != "linux":
            return
        for port in sorted(self._receiver_ports()):
            claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                claim.bind(f"\0otelgw-workers-port-{port}")
            except OSError:
                claim.close()
                raise OSError(f"port {port} is served by another otelgw run --workers already; two gateways would "
                              f"share its connections") from None
            self._claims.append(claim)

    def _receiver_ports(self) -> set[int]:
        ports = set()
        for (kind, _), cc in self.config.components.items():
            protocols = getattr(cc.config, "protocols", None) if kind is Kind.RECEIVER else None
            for name in ("grpc", "http"):
                server = getattr(protocols, name, None)
                if server is not None:
                    ports.add(split_host_port(server.endpoint)[1])
        return ports

    def _signal_all(self, sig: int) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    def reload(self) -> None:
        log.info("reloading every worker")
        self._signal_all(signals.SIGHUP)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signals.SIGTERM, signals.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signals.SIGHUP, self.reload)
        try:
            self._claim_ports()
            await self.view.start()
            for worker in self.workers:
                await self._spawn(worker)
            log.info("supervising workers", extra={"workers": self.count,
                                                    "pids": ", ".join(str(self.pid(i)) for i in range(self.count))})
            watches = [loop.create_task(self._watch(w), name=f"worker {w.index}") for w in self.workers]
            await self._stop.wait()
            log.info("stopping every worker", extra={"grace_period_s": self.grace_period})
            self._stopping = True
            self._signal_all(signals.SIGTERM)
            _, pending = await asyncio.wait(watches, timeout=self.grace_period + 5.0)
            if pending:
                log.error("workers did not stop within the grace period; killing them",
                          extra={"workers": len(pending)})
                self._signal_all(signals.SIGKILL)
                await asyncio.wait(pending)
            codes = [task.result() for task in watches]
        finally:
            self._stopping = True
            self._signal_all(signals.SIGKILL)  # only reached with live workers when start-up failed
            await self.view.stop()
            for claim in self._claims:
                claim.close()
            shutil.rmtree(self.directory, ignore_errors=True)
        if self._start_failure:
            return self._start_failure
        failed = [c for c in codes if c != 0]
        log.info("gateway stopped", extra={"workers": self.count, "failed_workers": len(failed)})
        return 1 if failed else 0
