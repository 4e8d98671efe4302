"""The flush loop shared by the connectors that aggregate into metrics (span_metrics, kpi).

Aggregation happens in ``consume_*``; every ``metrics_flush_interval`` the aggregate is built and handed to the
next consumer. Shutdown stops the timer and flushes once more, so nothing aggregated since the last tick is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from gateway._host.stats import kpi_board
from gateway.component import ComponentSettings, MetricsConsumer, Signal, count_items
from gateway.helpers.connector_metrics import connector_metrics

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["Aggregator", "FlushingConnector"]


class Aggregator(Protocol):
    overflowed: int

    @property
    def series_count(self) -> int: ...

    def build(self, now_ns: int | None = None) -> ExportMetricsServiceRequest | None: ...


class FlushingConnector:
    def __init__(self, settings: ComponentSettings, aggregator: Aggregator, interval: float,
                 next_consumer: MetricsConsumer) -> None:
        self.settings = settings
        self.aggregator = aggregator
        self.interval = interval
        self.logger = settings.telemetry.logger
        self._next = next_consumer
        self._task: asyncio.Task[None] | None = None
        self._consumed = False
        self._overflow_seen = 0
        metrics = connector_metrics(settings.telemetry.registry)
        name = str(settings.id)
        self._overflow = metrics.overflow.labels(name)
        self._flush_failed = metrics.flush_failed.labels(name)
        self._series = metrics.series.labels(name)
        self._dropped = settings.telemetry.dropped("flush_failed", Signal.METRICS)
        # The kpi connector's last values, for otelgw top and the status page (read once per flush).
        self._board = kpi_board(settings.telemetry.root) if settings.id.type == "kpi" else None

    @property
    def mutates_data(self) -> bool:
        return False

    async def start(self, host: Host) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"connector {self.settings.id} flush")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._consumed:
            await self.flush()

    def consumed(self) -> None:
        self._consumed = True
        if self.aggregator.overflowed > self._overflow_seen:
            self._count_overflow()

    def _count_overflow(self) -> None:
        """Count spans (records) folded into overflow series; the first time, say so in the log (once)."""
        overflowed = self.aggregator.overflowed
        if self._overflow_seen == 0 and overflowed:
            self.logger.warning(
                "the cardinality limit was reached: new series fold into one otel.metric.overflow=true series "
                "(logged once; see otelgw_connector_overflow_items_total)",
                extra={"series": self.aggregator.series_count})
        self._overflow.inc(overflowed - self._overflow_seen)
        self._overflow_seen = overflowed

    async def _loop(self) -> None:
        next_at = time.monotonic() + self.interval
        while True:
            await asyncio.sleep(max(next_at - time.monotonic(), 0.0))
            next_at += self.interval
            await self.flush()

    async def flush(self) -> None:
        """Build the aggregate and send it on; a refusal downstream is logged and counted, never raised.

        An aggregator with ``build_batches`` hands over its series a few hundred at a time, and the event loop
        runs between two hand-overs (and at the empty requests it yields between slices of other work), so a
        flush of a million series leaves health probes and ingestion served.
        """
        batches = getattr(self.aggregator, "build_batches", None)
        try:
            if batches is not None:
                source: Iterator[ExportMetricsServiceRequest] = batches(time.time_ns())
            else:
                built = self.aggregator.build(time.time_ns())
                source = iter([built] if built is not None else [])
        except Exception:  # a bug in aggregation must not stop the timer
            self.logger.exception("building metrics failed")
            return
        first = True
        while True:
            try:
                batch = next(source, None)
            except Exception:
                self.logger.exception("building metrics failed")
                break
            if batch is None:
                break
            if not first:
                await asyncio.sleep(0)
            first = False
            if batch.resource_metrics:  # an empty request is the aggregator's pause between two slices of work
                await self._send(batch)
        if self.aggregator.overflowed > self._overflow_seen:
            self._count_overflow()
        self._series.set(self.aggregator.series_count)

    async def _send(self, batch: ExportMetricsServiceRequest) -> None:
        if self._board is not None:  # kpi: every request of the flush (each series is in one of them)
            self._board.record(str(self.settings.id), batch)
        try:
            await self._next.consume_metrics(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            points = count_items(Signal.METRICS, batch)
            self._flush_failed.inc(points)
            self._dropped.inc(points)
            self.logger.error("the next consumer refused the metrics; dropping them",
                              extra={"error": str(exc), "dropped_items": points})
