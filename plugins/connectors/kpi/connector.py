"""Connector ``kpi``: spans and logs in, business KPI metrics out on a timer.

The host creates one connector per input signal; both share one engine (``SharedComponents``), so one KPI pack
that reads spans and logs has one state, one flush timer and one set of series, as a ratio across both needs.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.component import ComponentSettings
from gateway.helpers.flushing_connector import FlushingConnector
from gateway.helpers.shared import SharedComponent, SharedComponents

from .config import Config
from .engine import KpiEngine

__all__ = ["KpiConnector", "KpiRunner", "create"]

_runners: SharedComponents[KpiRunner] = SharedComponents()


class KpiRunner(FlushingConnector):
    """The engine and its flush timer; one per configured ``kpi`` connector."""

    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Any) -> None:
        self.config = config
        self.engine = KpiEngine(config, scope_name=str(settings.id))
        super().__init__(settings, self.engine, config.metrics_flush_interval, next_consumer)

    def add_traces(self, batch: ExportTraceServiceRequest) -> None:
        self.engine.add_traces(batch)
        self.consumed()

    def add_logs(self, batch: ExportLogsServiceRequest) -> None:
        self.engine.add_logs(batch)
        self.consumed()


class KpiConnector:
    """One input signal's handle on the shared runner (``component`` is the runner, for tools and tests)."""

    def __init__(self, shared: SharedComponent[KpiRunner]) -> None:
        self._shared = shared
        self.component = shared.component

    @property
    def mutates_data(self) -> bool:
        return False

    async def start(self, host: Any) -> None:
        await self._shared.start(host)

    async def shutdown(self) -> None:
        await self._shared.shutdown()

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        self.component.add_traces(batch)

    async def consume_logs(self, batch: ExportLogsServiceRequest) -> None:
        self.component.add_logs(batch)


def create(settings: ComponentSettings, config: Config, next_consumer: Any) -> KpiConnector:
    # Keyed by the config object too: two gateways in one process (tests) never share an engine.
    shared = _runners.get_or_create((settings.id, id(config)), lambda: KpiRunner(settings, config, next_consumer))
    return KpiConnector(shared)
