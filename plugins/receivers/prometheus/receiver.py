"""The ``prometheus`` receiver: one scrape loop per target, targets rediscovered as file_sd files change.

Each target is scraped every ``scrape_interval``, at an offset within the interval fixed by a hash of its URL (as
Prometheus spreads its scrapes). A scrape is fetched (``scrape.Fetcher``), parsed and translated off the event loop
(``translate``), and handed on as one ``ExportMetricsServiceRequest`` with its ``up`` and ``scrape_*`` series.
A failed scrape is ``up`` 0, counted by cause, logged once per target and cause, and marks the target's series
stale; other targets never wait for it. A target that goes away (file_sd) marks its series stale too.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from gateway import ComponentSettings, Host, MetricsConsumer, Signal, count_items

from .config import Config, GlobalConfig, ScrapeConfig
from .report import ScrapeReport, add_report, metrics_for
from .scrape import Fetcher
from .targets import Target, build_targets, file_groups, static_groups
from .translate import Limits, ScrapeError, SeriesState, mark_stale, translate

__all__ = ["PrometheusReceiver"]

USER_AGENT = "otelgw-prometheus-receiver"
#: Bodies larger than this are parsed in a worker thread, so the event loop keeps serving other targets.
_THREAD_BODY_BYTES = 64 * 1024


class _TargetLoop:
    def __init__(self, receiver: PrometheusReceiver, scrape: ScrapeConfig, target: Target, fetcher: Fetcher) -> None:
        self.receiver = receiver
        self.scrape = scrape
        self.target = target
        self.fetcher = fetcher
        self.state = SeriesState()
        self.limits = Limits(scrape.sample_limit, scrape.label_limit, scrape.label_name_length_limit,
                             scrape.label_value_length_limit)
        self.logged_causes: set[str] = set()
        self.failing = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"scrape {self.target.url}")

    async def stop(self, mark_stale_series: bool) -> None:
        if self.task is not None:
            # Cancelled until it is done: a cancellation swallowed inside a library call must not leave the loop
            # scraping and this shutdown waiting for it forever.
            while not self.task.done():
                self.task.cancel()
                await asyncio.wait({self.task}, timeout=1.0)
            await asyncio.gather(self.task, return_exceptions=True)  # done: collects its outcome, never waits
            self.task = None
        if mark_stale_series and self.state.previous:
            request = self._stale_request()
            await self.receiver.deliver(request)

    def _stale_request(self) -> ExportMetricsServiceRequest:
        request = ExportMetricsServiceRequest()
        mark_stale(request, list(self.state.previous), self.state.previous, time.time_ns(), self.target.scheme)
        self.state = SeriesState()
        return request

    async def run(self) -> None:
        interval = self.target.interval
        offset = int.from_bytes(hashlib.sha256(self.target.url.encode()).digest()[:8], "big") % 1000 / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time() + offset * min(interval, 5.0)
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
            await self.scrape_once()
            if next_at < loop.time():  # a scrape longer than the interval: skip the missed slots
                next_at += ((loop.time() - next_at) // interval + 1) * interval

    async def scrape_once(self) -> None:
        receiver = self.receiver
        receiver.counters.scrapes.labels(receiver.name, self.target.job).inc()
        started = time.monotonic()
        scrape_ns = time.time_ns()
        body_bytes = 0
        try:
            text, content_type, body_bytes = await self.fetcher.fetch(self.target)
            kwargs = dict(target_labels=dict(self.target.labels), scheme=self.target.scheme,
                          honor_labels=self.scrape.honor_labels, honor_timestamps=self.scrape.honor_timestamps,
                          metric_relabel=self.scrape.metric_relabel_configs, limits=self.limits, state=self.state,
                          scrape_ns=scrape_ns)
            if body_bytes > _THREAD_BODY_BYTES:
                result = await asyncio.to_thread(translate, text, content_type, **kwargs)  # type: ignore[arg-type]
            else:
                result = translate(text, content_type, **kwargs)  # type: ignore[arg-type]
            del text
        except ScrapeError as exc:
            self._failed(exc)
            request = self._stale_request()
            report = ScrapeReport(False, time.monotonic() - started)
        else:
            self._succeeded()
            request = result.request
            report = ScrapeReport(True, time.monotonic() - started, result.samples_scraped,
                                  result.samples_post_relabel, result.series_added)
        if receiver.config.report_extra_scrape_metrics:
            report.extra = (self.target.timeout, self.scrape.sample_limit, body_bytes)
        add_report(request, self.target, report, scrape_ns)
        await receiver.deliver(request)

    def _failed(self, exc: ScrapeError) -> None:
        receiver = self.receiver
        receiver.counters.failures.labels(receiver.name, self.target.job, exc.cause).inc()
        self.failing = True
        if exc.cause not in self.logged_causes:
            self.logged_causes.add(exc.cause)
            receiver.logger.warning("scrape failed: %s", exc, extra={
                "job": self.target.job, "target": self.target.url, "cause": exc.cause,
                "note": "logged once per target and cause; see otelgw_receiver_scrape_failures"})

    def _succeeded(self) -> None:
        if self.failing:
            self.failing = False
            self.receiver.logger.info("scrape recovered", extra={"job": self.target.job, "target": self.target.url})


class PrometheusReceiver:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> None:
        self.settings = settings
        self.config = config
        self.next = next_consumer
        self.name = str(settings.id)
        self.logger = settings.telemetry.logger
        self.counters = metrics_for(settings.telemetry.registry)
        self.accepted, self.refused = settings.telemetry.receiver_counters("http", Signal.METRICS)
        self._loops: dict[tuple[str, Target], _TargetLoop] = {}
        self._fetchers: list[Fetcher] = []
        self._discovery: list[asyncio.Task[None]] = []
        self._file_errors: set[str] = set()

    async def deliver(self, request: Any) -> None:
        points = count_items(Signal.METRICS, request)
        if points == 0:
            return
        try:
            await self.next.consume_metrics(request)
        except Exception as exc:  # downstream refused (memory_limiter, full queue): the scrape's data is lost
            self.refused.inc(points)
            self.logger.debug("pipeline refused a scrape: %s", exc)
            return
        self.accepted.inc(points)

    async def start(self, host: Host) -> None:
        defaults: GlobalConfig = self.config.config.global_
        for scrape in self.config.config.scrape_configs:
            fetcher = Fetcher(scrape, USER_AGENT)
            self._fetchers.append(fetcher)
            await self._apply(scrape, defaults, fetcher)
            if scrape.file_sd_configs:
                refresh = min(sd.refresh_interval for sd in scrape.file_sd_configs)
                self._discovery.append(asyncio.create_task(
                    self._rediscover(scrape, defaults, fetcher, refresh), name=f"file_sd {scrape.job_name}"))
        self.logger.info("prometheus receiver scraping", extra={
            "jobs": ", ".join(s.job_name for s in self.config.config.scrape_configs), "targets": len(self._loops)})

    async def _apply(self, scrape: ScrapeConfig, defaults: GlobalConfig, fetcher: Fetcher) -> None:
        groups = static_groups(scrape)
        if scrape.file_sd_configs:
            found, errors = file_groups(scrape)
            groups += found
            for error in errors:
                if error not in self._file_errors:
                    self._file_errors.add(error)
                    self.logger.warning("file_sd: cannot read targets: %s", error, extra={"job": scrape.job_name})
        wanted = {(scrape.job_name, t): t for t in build_targets(scrape, defaults, groups)}
        for key in [k for k in self._loops if k[0] == scrape.job_name and k not in wanted]:
            await self._loops.pop(key).stop(mark_stale_series=True)
        for key, target in wanted.items():
            if key not in self._loops:
                loop = self._loops[key] = _TargetLoop(self, scrape, target, fetcher)
                loop.start()

    async def _rediscover(self, scrape: ScrapeConfig, defaults: GlobalConfig, fetcher: Fetcher,
                          refresh: float) -> None:
        while True:
            await asyncio.sleep(refresh)
            try:
                await self._apply(scrape, defaults, fetcher)
            except Exception:  # never let discovery die: the current targets keep being scraped
                self.logger.exception("file_sd refresh failed", extra={"job": scrape.job_name})

    async def shutdown(self) -> None:
        for task in self._discovery:
            task.cancel()
        await asyncio.gather(*self._discovery, return_exceptions=True)
        self._discovery.clear()
        loops, self._loops = list(self._loops.values()), {}
        await asyncio.gather(*(loop.stop(mark_stale_series=False) for loop in loops), return_exceptions=True)
        for fetcher in self._fetchers:
            await fetcher.close()
        self._fetchers.clear()
