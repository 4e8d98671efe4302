"""The ``hostmetrics`` receiver: every ``collection_interval``, each configured scraper reads the OS through psutil
and the whole collection goes on as one ``ExportMetricsServiceRequest``.

System metrics sit under one resource with no attributes (the ``resourcedetection`` processor adds host
identity), as in the Collector; the process scraper adds one resource per process. Reading runs in a worker
thread, so a slow /proc never stalls the event loop. A scraper that fails is counted and logged once per cause;
the others still report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psutil
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from gateway import ComponentSettings, Host, MetricsConsumer, Signal, count_items

from .builder import Metrics
from .config import Config, ScraperConfig
from .process import scrape_processes_each
from .storage import scrape_disk, scrape_filesystem, scrape_network
from .system import scrape_cpu, scrape_load, scrape_memory, scrape_paging, scrape_processes

__all__ = ["HostMetricsReceiver", "set_root_path"]

SCOPE_PREFIX = ("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/"
                "internal/scraper/")

_SYSTEM: dict[str, Callable[[Metrics, ScraperConfig, str], None]] = {
    "cpu": lambda m, c, r: scrape_cpu(m),
    "memory": lambda m, c, r: scrape_memory(m),
    "load": lambda m, c, r: scrape_load(m),
    "paging": lambda m, c, r: scrape_paging(m),
    "processes": lambda m, c, r: scrape_processes(m),
    "disk": lambda m, c, r: scrape_disk(m, c),
    "filesystem": scrape_filesystem,
    "network": lambda m, c, r: scrape_network(m, c),
}


def set_root_path(root_path: str) -> None:
    """psutil reads /proc (and, through it, most of /sys) under ``PROCFS_PATH``: point it at the host's."""
    psutil.PROCFS_PATH = f"{root_path.rstrip('/')}/proc" if root_path else "/proc"


class HostMetricsReceiver:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> None:
        self.settings = settings
        self.config = config
        self.next = next_consumer
        self.logger = settings.telemetry.logger
        self.accepted, self.refused = settings.telemetry.receiver_counters("host", Signal.METRICS)
        self._task: asyncio.Task[None] | None = None
        self._logged: set[str] = set()
        self.errors: dict[str, int] = {}

    def _error(self, cause: str, message: str) -> None:
        self.errors[cause] = self.errors.get(cause, 0) + 1
        self.settings.telemetry.bad_request("host", cause)
        if cause not in self._logged:
            self._logged.add(cause)
            self.logger.warning("host metrics: %s", message, extra={"cause": cause, "note": "logged once per cause"})

    def collect(self) -> ExportMetricsServiceRequest:
        """One collection of every configured scraper (blocking: run it in a thread)."""
        set_root_path(self.config.root_path)
        request = ExportMetricsServiceRequest()
        now_ns = time.time_ns()
        boot_ns = int(psutil.boot_time() * 1e9)
        system = None
        for name, scraper in self.config.scrapers.items():
            if name == "process":
                try:
                    scrape_processes_each(request, scraper, SCOPE_PREFIX + "processscraper", now_ns, self._error)
                except Exception as exc:  # psutil failing as a whole (no /proc): count, keep the others
                    self._error("process", f"process scraper failed: {exc}")
                continue
            if system is None:
                system = request.resource_metrics.add()
            scope = system.scope_metrics.add()
            scope.scope.name = f"{SCOPE_PREFIX}{name}scraper"
            enabled = {metric: toggle.enabled for metric, toggle in scraper.metrics.items()}
            try:
                _SYSTEM[name](Metrics(scope, now_ns, boot_ns, enabled), scraper, self.config.root_path)
            except Exception as exc:
                self._error(name, f"{name} scraper failed: {exc}")
        return request

    async def start(self, host: Host) -> None:
        self._task = asyncio.create_task(self._run(), name=f"hostmetrics {self.settings.id}")
        self.logger.info("hostmetrics receiver collecting", extra={
            "scrapers": ", ".join(self.config.scrapers), "root_path": self.config.root_path or "/",
            "interval_s": self.config.collection_interval})

    async def _run(self) -> None:
        await asyncio.sleep(self.config.initial_delay)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            request = await asyncio.to_thread(self.collect)
            points = count_items(Signal.METRICS, request)
            if points:
                try:
                    await self.next.consume_metrics(request)
                    self.accepted.inc(points)
                except Exception as exc:
                    self.refused.inc(points)
                    self.logger.debug("pipeline refused host metrics: %s", exc)
            next_at += self.config.collection_interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
