"""Build the component graph from a ``GatewayConfig``, start it downstream-first and stop it upstream-first.

Instances, as in the Collector:
- one exporter per (exporter id, signal), shared by every pipeline of that signal that lists it;
- one processor per (pipeline, processor id);
- one connector per (connector id, input signal, output signal);
- one receiver per (receiver id, signal), whose next consumer fans out to every pipeline that lists it
  (receivers that serve several signals from one server share one object through ``helpers.shared``).

Every node is created after everything downstream of it, so creation order is a valid start order, and its
reverse a valid shutdown order in which each stage drains into the next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gateway.component import Batch, ComponentID, ComponentSettings, Kind, Signal, consume
from gateway.config import GatewayConfig, PipelineID
from gateway.errors import ConfigError
from gateway.host import Host, Status
from gateway.telemetry import Telemetry

__all__ = ["FanOut", "Graph", "Node"]

log = logging.getLogger("otelgw.service")


@dataclass
class Node:
    kind: Kind
    id: ComponentID
    component: Any
    signal: Signal
    pipeline: str | None = None
    out_signal: Signal | None = None

    @property
    def label(self) -> str:
        where = f" in pipeline {self.pipeline}" if self.pipeline else ""
        return f"{self.kind.value} {self.id} ({self.signal.value}){where}"


class FanOut:
    """Hands one batch to several consumers. Read-only consumers share it; each mutating one gets its own copy."""

    def __init__(self, signal: Signal, consumers: list[tuple[Any, bool]]) -> None:
        self.signal = signal
        self.readonly = [c for c, mutates in consumers if not mutates]
        self.mutating = [c for c, mutates in consumers if mutates]
        setattr(self, f"consume_{signal.value}", self._consume)

    @property
    def mutates_data(self) -> bool:
        return False  # copies are made here, so upstream may share its batch with us

    async def _consume(self, batch: Batch) -> None:
        if len(self.readonly) + len(self.mutating) == 1:
            await consume((self.readonly or self.mutating)[0], self.signal, batch)
            return
        first_error: BaseException | None = None
        deliveries = [(c, batch) for c in self.readonly]
        for i, consumer in enumerate(self.mutating):
            last_owner = i == len(self.mutating) - 1 and not self.readonly
            copy = batch if last_owner else type(batch)()
            if not last_owner:
                copy.CopyFrom(batch)
            deliveries.append((consumer, copy))
        for consumer, item in deliveries:
            try:
                await consume(consumer, self.signal, item)
            except Exception as exc:  # deliver to the others, then report the first failure
                first_error = first_error or exc
        if first_error is not None:
            raise first_error


class Graph:
    def __init__(self, config: GatewayConfig, telemetry: Telemetry) -> None:
        self.config = config
        self.telemetry = telemetry
        self.nodes: list[Node] = []
        self._exporters: dict[tuple[ComponentID, Signal], Any] = {}
        self._connectors: dict[tuple[ComponentID, Signal, Signal], Any] = {}
        self._heads: dict[PipelineID, tuple[Any, bool]] = {}
        self._building: set[PipelineID] = set()
        self._started: list[Node] = []
        self._build()

    # ---------------------------------------------------------------- building

    def _settings(self, kind: Kind, cid: ComponentID, signal: Signal | None) -> ComponentSettings:
        return ComponentSettings(cid, kind, self.telemetry.for_component(kind, cid, signal), signal)

    def _is_connector(self, cid: ComponentID) -> bool:
        return (Kind.CONNECTOR, cid) in self.config.components

    def _exporter(self, cid: ComponentID, signal: Signal) -> tuple[Any, bool]:
        cc = self.config.get(Kind.EXPORTER, cid)
        if (cid, signal) not in self._exporters:
            create = cc.factory.create_fn(signal)
            assert create is not None  # checked by config validation
            component = create(self._settings(Kind.EXPORTER, cid, signal), cc.config)
            self._exporters[(cid, signal)] = component
            self.nodes.append(Node(Kind.EXPORTER, cid, component, signal))
        return self._exporters[(cid, signal)], cc.factory.mutates_data

    def _connector_outputs(self, cid: ComponentID, in_signal: Signal) -> list[tuple[Any, bool]]:
        cc = self.config.get(Kind.CONNECTOR, cid)
        outputs = []
        for out_signal in Signal:
            create = cc.factory.connectors.get((in_signal, out_signal))
            targets = [p for p in self.config.pipelines.values() if p.id.signal is out_signal and cid in p.receivers]
            if create is None or not targets:
                continue
            key = (cid, in_signal, out_signal)
            if key not in self._connectors:
                next_consumer = FanOut(out_signal, [self._pipeline_head(p.id) for p in targets])
                component = create(self._settings(Kind.CONNECTOR, cid, in_signal), cc.config, next_consumer)
                self._connectors[key] = component
                self.nodes.append(Node(Kind.CONNECTOR, cid, component, in_signal, out_signal=out_signal))
            outputs.append((self._connectors[key], cc.factory.mutates_data))
        return outputs

    def _pipeline_head(self, pid: PipelineID) -> tuple[Any, bool]:
        if pid in self._heads:
            return self._heads[pid]
        if pid in self._building:
            raise ConfigError(f"service::pipelines::{pid}: connectors form a cycle through this pipeline")
        self._building.add(pid)
        pipeline = self.config.pipelines[pid]
        consumers: list[tuple[Any, bool]] = []
        for cid in pipeline.exporters:
            if self._is_connector(cid):
                consumers.extend(self._connector_outputs(cid, pid.signal))
            else:
                consumers.append(self._exporter(cid, pid.signal))
        head: Any = FanOut(pid.signal, consumers)
        mutates = False
        for cid in reversed(pipeline.processors):
            cc = self.config.get(Kind.PROCESSOR, cid)
            create = cc.factory.create_fn(pid.signal)
            assert create is not None
            head = create(self._settings(Kind.PROCESSOR, cid, pid.signal), cc.config, head)
            mutates = mutates or cc.factory.mutates_data
            self.nodes.append(Node(Kind.PROCESSOR, cid, head, pid.signal, pipeline=str(pid)))
        self._building.discard(pid)
        self._heads[pid] = (head, mutates)
        return self._heads[pid]

    def _build(self) -> None:
        for pid in sorted(self.config.pipelines):
            self._pipeline_head(pid)
        receivers: dict[tuple[ComponentID, Signal], list[PipelineID]] = {}
        for pid in sorted(self.config.pipelines):
            for cid in self.config.pipelines[pid].receivers:
                if not self._is_connector(cid):
                    receivers.setdefault((cid, pid.signal), []).append(pid)
        for (cid, signal), pids in receivers.items():
            cc = self.config.get(Kind.RECEIVER, cid)
            create = cc.factory.create_fn(signal)
            assert create is not None
            next_consumer = FanOut(signal, [self._heads[p] for p in pids])
            component = create(self._settings(Kind.RECEIVER, cid, signal), cc.config, next_consumer)
            self.nodes.append(Node(Kind.RECEIVER, cid, component, signal))

    def find(self, kind: Kind, component_id: str, signal: Signal | None = None) -> Any:
        """The component object for ``kind`` and id (unwrapping shared ones); for tests and tools."""
        cid = ComponentID.parse(component_id)
        for node in self.nodes:
            if node.kind is kind and node.id == cid and (signal is None or node.signal is signal):
                return getattr(node.component, "component", node.component)
        raise KeyError(f"no {kind.value} {component_id!r} in the graph")

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: Host) -> None:
        """Start every node downstream-first. On a failure, stop what started and re-raise."""
        for node in self.nodes:
            host.report_status(node.kind, node.id, Status.STARTING, pipeline=node.pipeline)
        for node in self.nodes:
            try:
                await node.component.start(host)
            except Exception as exc:
                host.report_status(node.kind, node.id, Status.PERMANENT_ERROR, str(exc), pipeline=node.pipeline)
                log.error("failed to start %s: %s", node.label, exc)
                await self.shutdown(host)
                raise
            self._started.append(node)
            host.report_status(node.kind, node.id, Status.OK, pipeline=node.pipeline)

    async def shutdown(self, host: Host) -> list[BaseException]:
        """Stop every node upstream-first, including ones never started; collect every error."""
        errors: list[BaseException] = []
        for node in reversed(self.nodes):
            host.report_status(node.kind, node.id, Status.STOPPING, pipeline=node.pipeline)
            try:
                await node.component.shutdown()
            except Exception as exc:
                log.error("error shutting down %s: %s", node.label, exc)
                errors.append(exc)
            host.report_status(node.kind, node.id, Status.STOPPED, pipeline=node.pipeline)
        self._started.clear()
        return errors
