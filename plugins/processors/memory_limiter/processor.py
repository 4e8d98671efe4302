"""The ``memory_limiter`` processor: refuse data while resident memory is above the soft limit.

One ``MemoryGuard`` per configured id measures the process every ``check_interval`` and holds one flag; the
processor of every pipeline that lists the id reads that flag per batch, so the per-batch cost is one attribute
read. Refusals raise ``OverloadedError``, which receivers answer with RESOURCE_EXHAUSTED + RetryInfo (gRPC) or
429 + Retry-After (HTTP): SDKs keep the data and back off, and nothing is buffered here.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway import (
    ComponentSettings,
    Consumer,
    Host,
    OverloadedError,
    Processor,
    SharedComponent,
    SharedComponents,
    Signal,
    WireBatch,
    count_items,
    register_admission_gate,
    unregister_admission_gate,
)

from . import memory
from .config import Config

__all__ = ["MemoryGuard", "MemoryLimiterProcessor"]


@dataclass(frozen=True)
class _Metrics:
    refused: dict[str, Counter]
    refused_requests: Counter
    resident: Gauge
    soft_limit: Gauge


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()


def _metrics(registry: CollectorRegistry) -> _Metrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = _BY_REGISTRY[registry] = _Metrics(
            refused={item: Counter(f"otelcol_processor_refused_{item}",
                                   f"{item} refused by the processor (memory_limiter: memory over the soft limit).",
                                   ["processor"], registry=registry)
                     for item in ("spans", "metric_points", "log_records")},
            refused_requests=Counter("otelgw_memory_limiter_refused_requests",
                                     "Requests refused by receivers before decoding because their size would take "
                                     "memory over the limit (admission control).", ["processor"], registry=registry),
            resident=Gauge("otelgw_memory_limiter_resident_bytes", "Resident memory at the last check.",
                           ["processor"], registry=registry),
            soft_limit=Gauge("otelgw_memory_limiter_soft_limit_bytes", "Resident memory above which data is "
                             "refused.", ["processor"], registry=registry))
    return metrics


class MemoryGuard:
    """Measures memory on a timer and decides whether data is refused."""

    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.config = config
        self.logger = settings.telemetry.logger
        self.limits = memory.Limits(config.limit_mib, config.spike_limit_mib, config.limit_percentage,
                                    config.spike_limit_percentage)
        self.refusing = False
        self.resident = 0
        #: Decoded bytes of requests that receivers admitted and have not answered yet (admission control:
        #: ``gateway.register_admission_gate``).
        self.in_flight = 0
        #: Bytes admitted since the last measurement, answered or not: an answered request's data may still be
        #: held (a queue, a batch) and only the next measurement sees it.
        self.admitted = 0
        metrics = _metrics(settings.telemetry.registry)
        name = str(settings.id)
        self._resident_gauge = metrics.resident.labels(name)
        self._refused_requests = metrics.refused_requests.labels(name)
        metrics.soft_limit.labels(name).set(self.limits.soft)
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        resident = memory.resident_bytes()
        if resident >= self.limits.soft:
            memory.release_memory()  # freed batches may still be counted in RSS until given back
            resident = memory.resident_bytes()
        refusing = resident >= self.limits.soft
        if refusing != self.refusing:
            log = self.logger.warning if refusing else self.logger.info
            log("Memory usage is above the soft limit. Refusing data." if refusing
                else "Memory usage is back below the soft limit. Accepting data.",
                extra={"resident_mib": resident // memory.MIB, "soft_limit_mib": self.limits.soft // memory.MIB,
                       "hard_limit_mib": self.limits.hard // memory.MIB})
        self.refusing = refusing
        self.resident = resident
        self.admitted = self.in_flight  # the measurement saw the rest; what is still in flight may grow yet
        self._resident_gauge.set(resident)

    def try_admit(self, size: int) -> OverloadedError | None:
        """Admission control (``gateway.AdmissionGate``): let a request of ``size`` decoded bytes in only while
        memory stays under the hard limit with it and everything else in flight, so the limit holds between two
        checks however many requests arrive."""
        if self.refusing:
            self._refused_requests.inc()
            return OverloadedError("memory usage is above the soft limit (memory_limiter); retry later",
                                   retry_after=self.config.retry_after)
        if self.resident + self.admitted + size > self.limits.hard:
            self._refused_requests.inc()
            return OverloadedError("the requests in flight would take memory over the hard limit (memory_limiter); "
                                   "retry later", retry_after=self.config.retry_after)
        self.in_flight += size
        self.admitted += size
        return None

    def release(self, size: int) -> None:
        self.in_flight -= size

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval)
            self.check()

    async def start(self, host: Host) -> None:
        self.check()
        self._task = asyncio.create_task(self._loop(), name="memory_limiter check")
        register_admission_gate(self)

    async def shutdown(self) -> None:
        unregister_admission_gate(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


#: One guard per configured id, however many pipelines list it (the Collector shares it the same way).
_guards: SharedComponents[MemoryGuard] = SharedComponents()


class MemoryLimiterProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        super().__init__(settings, config, next_consumer)
        self._handle: SharedComponent[MemoryGuard] = _guards.get_or_create(
            (settings.id, id(config)), lambda: MemoryGuard(settings, config))
        self.guard = self._handle.component
        item = (settings.signal or Signal.TRACES).item_name
        self._refused = _metrics(settings.telemetry.registry).refused[item].labels(str(settings.id))
        self._signal = settings.signal or Signal.TRACES

    async def start(self, host: Host) -> None:
        await self._handle.start(host)

    async def shutdown(self) -> None:
        await self._handle.shutdown()

    def _admit(self, batch: Any) -> Any:
        if self.guard.refusing:
            raise self._refusal(count_items(self._signal, batch))
        return batch

    def _refusal(self, items: int) -> OverloadedError:
        self._refused.inc(items)
        return OverloadedError("memory usage is above the soft limit (memory_limiter); retry later",
                               retry_after=self.config.retry_after)

    process_traces = process_metrics = process_logs = _admit

    def process_wire(self, batch: WireBatch) -> WireBatch:
        """The same check for a request held as bytes: it goes on as it is, unparsed."""
        if self.guard.refusing:
            raise self._refusal(batch.items)
        return batch

    async def consume_wire(self, batch: WireBatch) -> None:
        await self.run_wire(batch, self.process_wire)
