"""Connector ``kpi``: spans and logs in, business KPI metrics out on a timer.

The host creates one connector per input signal; both share one engine (``SharedComponents``), so one KPI pack
that reads spans and logs has one state, one flush timer and one set of series, as a ratio across both needs.
With ``otelgw run --workers N`` the KPIs are kept in worker 0 alone (``single_owner``): the other workers hand it
the spans and records some KPI may take, so an up/down counter or a ratio is the whole gateway's.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import (
    Batch,
    ComponentSettings,
    FlushingConnector,
    Host,
    MetricsConsumer,
    SharedComponent,
    SharedComponents,
    Signal,
    Storage,
)

from .config import Config
from .engine import KpiEngine
from .state import StateFile, restore, snapshot

__all__ = ["KpiConnector", "KpiRunner", "create"]

_runners: SharedComponents[KpiRunner] = SharedComponents()


class KpiRunner(FlushingConnector):
    """The engine and its flush timer; one per configured ``kpi`` connector."""

    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> None:
        self.config = config
        self.engine = KpiEngine(config, scope_name=str(settings.id))
        self.state: StateFile | None = None
        super().__init__(settings, self.engine, config.metrics_flush_interval, next_consumer)

    async def start(self, host: Host) -> None:
        if self.config.storage and self.state is None:
            extension = host.extension(self.config.storage, Storage, "storage")
            directory, fsync = extension.queue_directory(f"connector_kpi_{self.settings.id}")
            self.state = StateFile(Path(directory), fsync)
            try:
                saved = self.state.load()
            except (ValueError, OSError) as exc:
                self.logger.error("KPI state not restored; starting empty", extra={"error": str(exc)})
                saved = None
            if saved:
                series = restore(self.engine, saved)
                self.logger.info("KPI state restored", extra={"series": series, "file": str(self.state.path)})
        await super().start(host)

    async def flush(self) -> None:
        await super().flush()
        if self.state is not None:
            try:
                self.state.save(snapshot(self.engine))
            except OSError as exc:  # a full disk must not stop the KPIs; the next flush tries again
                self.logger.error("KPI state not saved", extra={"error": str(exc)})

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

    async def start(self, host: Host) -> None:
        await self._shared.start(host)

    async def shutdown(self) -> None:
        await self._shared.shutdown()

    def owner_share(self, signal: Signal, batch: Batch) -> Batch | None:
        """With ``--workers N``, the part of a batch another worker hands to worker 0, where the KPIs are kept
        (``Factory.single_owner``): the spans or records some KPI may take."""
        engine = self.component.engine
        if signal is Signal.TRACES:
            return engine.offered_traces(cast(ExportTraceServiceRequest, batch))
        return engine.offered_logs(cast(ExportLogsServiceRequest, batch))

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        self.component.add_traces(batch)

    async def consume_logs(self, batch: ExportLogsServiceRequest) -> None:
        self.component.add_logs(batch)


def create(settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> KpiConnector:
    # Keyed by the config object too: two gateways in one process (tests) never share an engine.
    shared = _runners.get_or_create((settings.id, id(config)), lambda: KpiRunner(settings, config, next_consumer))
    return KpiConnector(shared)
