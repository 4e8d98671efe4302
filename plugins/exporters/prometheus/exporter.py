"""Exporter ``prometheus``: keeps the latest value of every series and serves it for Prometheus to scrape.

Translation follows docs/protocols.md §5 (``gateway.prometheus``); exposition is prometheus-client's: text
0.0.4, or OpenMetrics with exemplars when the scraper's Accept header asks for it. Expired series are removed on
a timer, so memory follows the live series even when nobody scrapes.

A large page is rendered on the event loop in slices and streamed as it is made: the loop serves health probes
and ingestion between two slices, and memory holds one slice of text, not the page (a page of a million series
made at once took gigabytes and, in a worker thread, still held the loop for seconds through the cycle
collector's passes over its millions of short-lived objects).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest

from gateway import ComponentSettings, Host, HTTPServer, Signal, count_items
from gateway.prometheus import CumulativeState, TranslateOptions, Translator

from .config import Config
from .store import Families, SeriesStore

__all__ = ["PrometheusExporter"]

METRICS_PATH = "/metrics"
# Above this many series the page is streamed, rendered in slices of this many series (a few milliseconds each).
_SLICE_SERIES = 1000
# Rendered text is sent on in writes of about this size.
_WRITE_BYTES = 256 * 1024
# Expired series are dropped this many at a time (a few milliseconds), the event loop running in between.
_EXPIRE_SLICE = 10_000


@dataclass(frozen=True)
class _Metrics:
    series: Gauge
    refused: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()


def _metrics(registry: CollectorRegistry) -> _Metrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = _BY_REGISTRY[registry] = _Metrics(
            series=Gauge("otelgw_exporter_prometheus_series", "Series served on /metrics.", ["exporter"],
                         registry=registry),
            refused=Counter("otelgw_exporter_prometheus_refused_points",
                            "Points not served: over max_series, a type clash under one name, or untranslatable.",
                            ["exporter", "reason"], registry=registry))
    return metrics


class PrometheusExporter:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        options = TranslateOptions(
            namespace=config.namespace, add_metric_suffixes=config.add_metric_suffixes,
            resource_to_telemetry_conversion=config.resource_to_telemetry_conversion.enabled,
            target_info=config.target_info, extra_labels=tuple(sorted(config.const_labels.items())))
        self.translator = Translator(options, CumulativeState(expiration=config.metric_expiration))
        self.store = SeriesStore(expiration=config.metric_expiration, max_series=config.max_series,
                                 send_timestamps=config.send_timestamps)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self.store)
        #: ``host:port`` actually bound, set by ``start`` (tests listen on port 0).
        self.address: str | None = None
        self.server: HTTPServer | None = None
        self._expiry: asyncio.Task[None] | None = None
        name = str(settings.id)
        root = settings.telemetry.root
        self._sent = root.exporter_sent["metric_points"].labels(name)
        self._failed = root.exporter_send_failed["metric_points"].labels(name)
        metrics = _metrics(settings.telemetry.registry)
        metrics.series.labels(name).set_function(lambda: len(self.store))
        reasons = ("max_series", "type_conflict", "untranslatable")
        self._refused = {reason: metrics.refused.labels(name, reason) for reason in reasons}
        # A refused point is also a dropped one, so top, the status page and the shutdown report name this exporter
        dropped = settings.telemetry.dropped
        self._dropped = {reason: dropped(reason, Signal.METRICS) for reason in reasons}
        self._seen = {"max_series": 0, "type_conflict": 0, "untranslatable": 0}
        #: The server block adds CORS and response_headers headers to what the handler returns.
        self._adds_headers = bool(config.response_headers or (config.cors and config.cors.allowed_origins))

    async def start(self, host: Host) -> None:
        # The shared HTTP server block: tls, auth, cors, response_headers (gateway.confighttp.HTTPServer).
        self.server = HTTPServer(f"prometheus exporter {self.settings.id}", self.config,
                                 {METRICS_PATH: self._scrape}, host=host, logger=self.logger)
        await self.server.start()
        self.address = self.server.address
        self._expiry = asyncio.create_task(self._expire_loop(), name=f"exporter {self.settings.id} expiry")
        self.logger.info("serving Prometheus metrics on %s%s", self.address, METRICS_PATH)

    async def shutdown(self) -> None:
        task, self._expiry = self._expiry, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def consume_metrics(self, batch: ExportMetricsServiceRequest) -> None:
        items = count_items(Signal.METRICS, batch)
        try:
            points = self.translator.translate(batch)
        except Exception:  # never crash on data: a point we cannot translate is counted, not raised
            self.logger.exception("translating metrics failed")
            self._failed.inc(items)
            self._dropped["untranslatable"].inc(items)
            return
        self.store.update(points)
        self._sent.inc(items)
        self._count_refusals()

    def _render(self, encoder: Any, points: list[Any]) -> bytes:
        return encoder(Families(list(self.store.families(points))))  # type: ignore[no-any-return]

    async def _sliced(self, encoder: Any, content_type: str, points: list[Any]) -> web.Response:
        """The page of ``points`` made in slices, the event loop running between two, and sent whole."""
        pieces = []
        for piece in self.store.exposition(encoder, points, _SLICE_SERIES):
            pieces.append(piece)
            await asyncio.sleep(0)
        response = web.Response(body=b"".join(pieces), headers={"Content-Type": content_type})
        response.enable_compression()
        return response

    async def _stream(self, request: web.BaseRequest, encoder: Any, content_type: str,
                      points: list[Any]) -> web.StreamResponse:
        """The page of ``points`` in slices: the event loop runs between two, and each write waits while the
        scraper is slow to read (so a slow scraper holds a slice of text, never the page)."""
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_compression()
        await response.prepare(request)
        pending: list[bytes] = []
        size = 0
        try:
            for piece in self.store.exposition(encoder, points, _SLICE_SERIES):
                pending.append(piece)
                size += len(piece)
                if size >= _WRITE_BYTES:
                    await response.write(b"".join(pending))
                    pending, size = [], 0
                else:
                    await asyncio.sleep(0)
            await response.write(b"".join(pending))
            await response.write_eof()
        except ConnectionError:  # the scraper left mid-page (its timeout, a restart): no one to answer
            self.logger.debug("the scraper closed the connection before the page was complete")
        return response

    def _count_refusals(self) -> None:
        current = {"max_series": self.store.refused_over_limit, "type_conflict": self.store.refused_type_conflict,
                   "untranslatable": self.translator.stats.dropped}
        for reason, value in current.items():
            if value > self._seen[reason]:
                self._refused[reason].inc(value - self._seen[reason])
                self._dropped[reason].inc(value - self._seen[reason])
                self._seen[reason] = value

    async def _expire_loop(self) -> None:
        interval = min(max(self.config.metric_expiration / 10, 0.05), 15.0)
        while True:
            await asyncio.sleep(interval)
            await self._expire()

    async def _expire(self) -> None:
        """Drop expired series and delta streams in slices, so a million expiring at once never blocks the loop
        (each slice costs what it drops: both are ordered by last update)."""
        now = time.monotonic()
        while self.store.expire(now, _EXPIRE_SLICE) == _EXPIRE_SLICE:
            await asyncio.sleep(0)
        while self.translator.cumulative.expire(now, _EXPIRE_SLICE) == _EXPIRE_SLICE:
            await asyncio.sleep(0)

    async def _scrape(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.config.enable_open_metrics:
            encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        else:
            encoder, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
        await self._expire()
        points = self.store.snapshot()  # the series of this page; consume may add and drop series meanwhile
        if len(points) > _SLICE_SERIES:
            if self._adds_headers:  # added to the response once the handler returns: a streamed page is sent by then
                return await self._sliced(encoder, content_type, points)
            return await self._stream(request, encoder, content_type, points)
        body = self._render(encoder, points)
        response = web.Response(body=body, headers={"Content-Type": content_type})
        response.enable_compression()
        return response
