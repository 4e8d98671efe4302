"""Routes each trace to one backend by consistent hashing of its trace id; one otlp_grpc exporter per backend.

A request is split by trace id without decoding it: it is serialized once and cut into per-trace runs of span
bytes by the tail_sampling processor's wire walker, then the runs for each backend are assembled into one request
(resource and scope kept) and handed to that backend's exporter, which queues and retries on its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.component import ComponentID, ComponentSettings, Kind, Signal
from gateway.helpers.trace_runs import Envelope, EnvelopeTable, assemble, split_request
from plugins.exporters.otlp_grpc.exporter import OtlpGrpcExporter

from .config import Config
from .ring import HashRing

__all__ = ["LoadBalancingExporter"]


class LoadBalancingExporter:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.ring = HashRing(config.endpoints)
        signal = settings.signal or Signal.TRACES
        self.backends: dict[str, Any] = {}  # OtlpGrpcExporter; consume_traces is set per instance
        for endpoint in self.ring.endpoints:
            # Each backend reports its own exporter metrics, labelled load_balancing[/name]/<endpoint>.
            cid = ComponentID(settings.id.type, f"{settings.id.name}/{endpoint}" if settings.id.name else endpoint)
            sub = ComponentSettings(cid, Kind.EXPORTER, settings.telemetry.root.for_component(Kind.EXPORTER, cid,
                                                                                             signal), signal)
            self.backends[endpoint] = OtlpGrpcExporter(sub, config.backend(endpoint))
        self._envelopes = EnvelopeTable()

    async def start(self, host: Any) -> None:
        for backend in self.backends.values():
            await backend.start(host)

    async def shutdown(self) -> None:
        results = await asyncio.gather(*(b.shutdown() for b in self.backends.values()), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        if len(self.backends) == 1:
            await next(iter(self.backends.values())).consume_traces(batch)
            return
        routed: dict[str, list[tuple[Envelope, bytes]]] = {}
        endpoint_for = self.ring.endpoint_for
        for resource_header, scope_header, runs in split_request(batch.SerializeToString(), batch):
            envelope = self._envelopes.get(resource_header, scope_header)
            for run in runs:
                routed.setdefault(endpoint_for(run[0]), []).append((envelope, run[1]))
        results = await asyncio.gather(*(
            self.backends[endpoint].consume_traces(ExportTraceServiceRequest.FromString(assemble(items)))
            for endpoint, items in routed.items()), return_exceptions=True)
        # The first failure goes back to the sender, as the Collector does: a retry may resend to the backends that
        # accepted their part (duplicates, never losses).
        for result in results:
            if isinstance(result, BaseException):
                raise result
