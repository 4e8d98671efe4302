"""A worker's side of ``otelgw run --workers N``: its router, and the report of its private endpoints.

The report (``worker-<index>.json`` in the workers' directory) tells the supervisor where this worker serves what
the supervisor shows as one view: self-metrics, admin, health_check and prometheus exporters, each on a loopback
port of its own (``context.adjust_config``). It is rewritten after every reload, since a restarted extension
binds a new port.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from gateway.component import Batch, Kind, Signal
from gateway.errors import RetryableError

from . import routing
from .context import WorkerContext

if TYPE_CHECKING:
    from gateway._host.service import Service

__all__ = ["WorkerRole"]


class WorkerRole:
    def __init__(self, context: WorkerContext, service: Service) -> None:
        self.context = context
        self.service = service
        routed = Counter("otelgw_worker_routed_items", "Items this worker handed to the worker owning their trace or "
                         "series (direction=sent), or took from another worker (direction=received).",
                         ["signal", "direction"], registry=service.telemetry.registry)
        self.router = routing.Router(context, self._deliver, self._routed,
                                     lambda direction, signal, items: routed.labels(signal.value, direction).inc(items))
        self._routed_for: tuple[int, set[Signal]] = (0, set())

    def _routed(self, signal: Signal) -> bool:
        config = self.service.config
        if self._routed_for[0] != id(config):  # computed once per configuration (start, each reload)
            pipelines = [(pid.signal, [str(cid).split("/", 1)[0] for cid in (*p.processors, *p.exporters)])
                         for pid, p in config.pipelines.items()]
            self._routed_for = (id(config), routing.stateful_signals(pipelines))
        return signal in self._routed_for[1]

    async def _deliver(self, receiver: str, signal: Signal, batch: Batch) -> None:
        if receiver.startswith("connector:"):  # for a single-owner connector that runs here (workers.owner)
            connector = self.service.graph.single_owner(receiver.partition(":")[2], signal)
            if connector is None:
                raise RetryableError(f"worker {self.context.index} has no connector {receiver.partition(':')[2]} "
                                     f"taking {signal.value} (its configuration is being reloaded?)", retry_after=1.0)
            await connector.consume_here(batch)
            return
        inlet = self.service.graph.inlet(receiver, signal)
        if inlet is None:
            raise RetryableError(f"worker {self.context.index} has no {signal.value} pipeline for receiver "
                                 f"{receiver} (its configuration is being reloaded?)", retry_after=1.0)
        await inlet.consume_here(batch)

    async def start(self) -> None:
        await self.router.start()
        routing.activate(self.router)

    async def stop(self) -> None:
        routing.activate(None)
        await self.router.stop()

    def write_report(self) -> None:
        service = self.service
        report: dict[str, Any] = {"pid": os.getpid(), "ready": service.host.ready, "generation": service.generation,
                                  "admin": service.admin.address,
                                  "metrics": f"127.0.0.1:{service.metrics_port}" if service.metrics_port else None,
                                  "endpoints": {}}
        for cid, extension in service.host.extensions.items():
            if getattr(extension, "address", None):
                report["endpoints"][f"extension:{cid}"] = extension.address
        for node in service.graph.nodes:
            component = getattr(node.component, "component", node.component)
            if node.kind is Kind.EXPORTER and getattr(component, "address", None):
                report["endpoints"][f"exporter:{node.id}"] = component.address
        path = self.context.report_path(self.context.index)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(report))
        temporary.replace(path)  # the supervisor never reads half a report
