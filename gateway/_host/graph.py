"""Build the component graph from a ``GatewayConfig``, start it downstream-first and stop it upstream-first.

Instances, as in the Collector:
- one exporter per (exporter id, signal), shared by every pipeline of that signal that lists it;
- one processor per (pipeline, processor id);
- one connector per (connector id, input signal, output signal);
- one receiver per (receiver id, signal), whose next consumer fans out to every pipeline that lists it
  (receivers that serve several signals from one server share one object through ``helpers.shared``).

Every node is created after everything downstream of it, so creation order is a valid start order, and its
reverse a valid shutdown order in which each stage drains into the next.

Hot reload builds a new graph with ``previous=`` the running one: a running node is reused, object and state
(queues, buffers, open ports), when its config is equal, the extensions it names are unchanged, and what it
feeds is itself reused (downstream objects are bound at creation). Receivers are reused per id when their
config and signals are equal; they then feed an ``Inlet`` that is pointed at the new pipelines on ``commit``.

A processor or connector whose factory has ``mutates_data=True`` hands batches on through a ``ForgetWireBytes``,
so nothing after it sees the receiver's serialized bytes of a batch it may have changed (``gateway.wirebytes``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway._host.config import GatewayConfig, PipelineID
from gateway._host.telemetry import Telemetry
from gateway.component import Batch, ComponentID, ComponentSettings, Draining, Kind, Signal, consume
from gateway.errors import ConfigError, RetryableError
from gateway.host import Host, Status
from gateway.wirebytes import ForgetWireBytes

__all__ = ["FanOut", "Graph", "Inlet", "Node"]

log = logging.getLogger("otelgw.service")


@dataclass
class Node:
    kind: Kind
    id: ComponentID
    component: Any
    signal: Signal
    pipeline: str | None = None
    out_signal: Signal | None = None
    #: The fan-outs this node hands its output to: where a tap (``gateway._host.tap``) reads what leaves it.
    outlets: list[FanOut] = dataclasses.field(default_factory=list)

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


class Inlet(FanOut):
    """A receiver's fan-out, which a reload can hold shut for a moment and point at new pipelines."""

    #: How long a request waits at a held inlet before it is refused as retryable.
    HOLD_TIMEOUT_S = 10.0

    def __init__(self, signal: Signal, consumers: list[tuple[Any, bool]]) -> None:
        super().__init__(signal, consumers)
        self._open = asyncio.Event()
        self._open.set()

    def hold(self) -> None:
        self._open.clear()

    def retarget(self, consumers: list[tuple[Any, bool]]) -> None:
        self.readonly = [c for c, mutates in consumers if not mutates]
        self.mutating = [c for c, mutates in consumers if mutates]
        self._open.set()

    def release(self) -> None:
        self._open.set()

    async def _consume(self, batch: Batch) -> None:
        if not self._open.is_set():
            try:
                await asyncio.wait_for(self._open.wait(), self.HOLD_TIMEOUT_S)
            except TimeoutError:
                raise RetryableError("the gateway is reloading its configuration", retry_after=1.0) from None
        await super()._consume(batch)


def _mentions(value: Any, names: set[str]) -> bool:
    """True when a config (nested dataclasses, lists, mappings) holds one of ``names`` as a string value."""
    if isinstance(value, str):
        return value in names
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_mentions(getattr(value, f.name), names) for f in dataclasses.fields(value))
    if isinstance(value, Mapping):
        return any(_mentions(v, names) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_mentions(v, names) for v in value)
    return False


class Graph:
    def __init__(self, config: GatewayConfig, telemetry: Telemetry, previous: Graph | None = None,
                 changed_extensions: Iterable[ComponentID] = ()) -> None:
        self.config = config
        self.telemetry = telemetry
        self._previous = previous
        self._changed_extensions = {str(cid) for cid in changed_extensions}
        #: ids of component objects taken over from ``previous`` (already running; not started again).
        self.reused: set[int] = set()
        #: ids of component objects that are running.
        self.running: set[int] = set()
        self._fanouts: dict[PipelineID, FanOut] = {}
        #: (pipeline, processor) -> (processor, its next consumer, the fan-out a tap reads its output at).
        self._processors: dict[tuple[PipelineID, ComponentID], tuple[Any, Any, FanOut]] = {}
        self._connector_targets: dict[tuple[ComponentID, Signal, Signal], list[Any]] = {}
        self._connector_outlets: dict[tuple[ComponentID, Signal, Signal], FanOut] = {}
        self._inlets: dict[tuple[ComponentID, Signal], Inlet] = {}
        self._retargets: list[tuple[Inlet, list[tuple[Any, bool]]]] = []
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

    def _unchanged(self, kind: Kind, cid: ComponentID) -> bool:
        """Same config in the running graph, and no extension it names has changed."""
        previous = self._previous
        if previous is None or (kind, cid) not in previous.config.components:
            return False
        config = self.config.get(kind, cid).config
        return bool(previous.config.get(kind, cid).config == config
                    and not _mentions(config, self._changed_extensions))

    def _take(self, component: Any) -> Any:
        assert self._previous is not None
        if id(component) not in self._previous.running:
            return None
        self.reused.add(id(component))
        self.running.add(id(component))
        return component

    def _exporter(self, cid: ComponentID, signal: Signal) -> tuple[Any, bool]:
        cc = self.config.get(Kind.EXPORTER, cid)
        if (cid, signal) not in self._exporters:
            component = None
            if self._unchanged(Kind.EXPORTER, cid):
                component = self._take(self._previous._exporters.get((cid, signal)))  # type: ignore[union-attr]
            if component is None:
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
                heads = [self._pipeline_head(p.id) for p in targets]
                self._connector_targets[key] = [h[0] for h in heads]
                component = None
                previous = self._previous
                if (previous is not None and self._unchanged(Kind.CONNECTOR, cid) and key in previous._connectors
                        and _same(previous._connector_targets.get(key, []), self._connector_targets[key])):
                    component = self._take(previous._connectors[key])
                if component is not None:
                    assert previous is not None
                    outlet = previous._connector_outlets[key]
                else:
                    outlet = FanOut(out_signal, heads)
                    next_consumer: Any = outlet
                    if cc.factory.mutates_data:  # one that changes batches in place and hands them on
                        next_consumer = ForgetWireBytes(next_consumer)
                    component = create(self._settings(Kind.CONNECTOR, cid, in_signal), cc.config, next_consumer)
                self._connectors[key] = component
                self._connector_outlets[key] = outlet
                self.nodes.append(Node(Kind.CONNECTOR, cid, component, in_signal, out_signal=out_signal,
                                       outlets=[outlet]))
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
        previous = self._previous
        old_fanout = previous._fanouts.get(pid) if previous is not None else None
        if old_fanout is not None and _same(old_fanout.readonly + old_fanout.mutating,
                                            [c for c, m in consumers if not m] + [c for c, m in consumers if m]):
            head: Any = old_fanout
        else:
            head = FanOut(pid.signal, consumers)
        self._fanouts[pid] = head
        mutates = False
        for cid in reversed(pipeline.processors):
            cc = self.config.get(Kind.PROCESSOR, cid)
            old = previous._processors.get((pid, cid)) if previous is not None else None
            # Between two processors a one-consumer fan-out, so a tap can read what leaves this one; the
            # pipeline's own fan-out serves the last processor. Kept across reloads while it feeds the same head.
            if isinstance(head, FanOut):
                outlet = head
            elif old is not None and _same(old[2].readonly + old[2].mutating, [head]):
                outlet = old[2]
            else:
                outlet = FanOut(pid.signal, [(head, mutates)])
            head = outlet
            next_consumer: Any = outlet
            if cc.factory.mutates_data:
                # What a mutating processor hands on no longer matches the receiver's bytes (gateway.wirebytes).
                # The previous wrapper of the same head is kept, so the processor itself can be reused.
                old_next = old[1] if old is not None else None
                if isinstance(old_next, ForgetWireBytes) and old_next.next is head:
                    next_consumer = old_next
                else:
                    next_consumer = ForgetWireBytes(head)
            reused = None
            if old is not None and old[1] is next_consumer and self._unchanged(Kind.PROCESSOR, cid):
                reused = self._take(old[0])
            if reused is not None:
                head = reused
            else:
                create = cc.factory.create_fn(pid.signal)
                assert create is not None
                head = create(self._settings(Kind.PROCESSOR, cid, pid.signal), cc.config, next_consumer)
            self._processors[(pid, cid)] = (head, next_consumer, outlet)
            mutates = mutates or cc.factory.mutates_data
            self.nodes.append(Node(Kind.PROCESSOR, cid, head, pid.signal, pipeline=str(pid), outlets=[outlet]))
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
        by_id: dict[ComponentID, set[Signal]] = {}
        for cid, signal in receivers:
            by_id.setdefault(cid, set()).add(signal)
        for (cid, signal), pids in receivers.items():
            cc = self.config.get(Kind.RECEIVER, cid)
            consumers = [self._heads[p] for p in pids]
            previous = self._previous
            old_inlet = previous._inlets.get((cid, signal)) if previous is not None else None
            old_node = next((n for n in previous.nodes if n.kind is Kind.RECEIVER and n.id == cid
                             and n.signal is signal), None) if previous is not None else None
            old_signals = {n.signal for n in previous.nodes if n.kind is Kind.RECEIVER
                           and n.id == cid} if previous is not None else set()
            component = None
            if (old_inlet is not None and old_node is not None and old_signals == by_id[cid]
                    and self._unchanged(Kind.RECEIVER, cid)):
                component = self._take(old_node.component)
            if component is not None:
                assert old_inlet is not None
                inlet = self._inlets[(cid, signal)] = old_inlet
                self._retargets.append((old_inlet, consumers))
            else:
                create = cc.factory.create_fn(signal)
                assert create is not None
                inlet = self._inlets[(cid, signal)] = Inlet(signal, consumers)
                component = create(self._settings(Kind.RECEIVER, cid, signal), cc.config, inlet)
            self.nodes.append(Node(Kind.RECEIVER, cid, component, signal, outlets=[inlet]))

    # ---------------------------------------------------------------- reload

    def hold_reused_receivers(self) -> None:
        """Reused receivers' requests wait (briefly) while the old pipelines stop and the new ones start."""
        for inlet, _ in self._retargets:
            inlet.hold()

    def commit(self) -> None:
        """Point reused receivers at the new pipelines and let their requests through."""
        for inlet, consumers in self._retargets:
            inlet.retarget(consumers)

    def release_held(self) -> None:
        for inlet, _ in self._retargets:
            inlet.release()

    def find(self, kind: Kind, component_id: str, signal: Signal | None = None) -> Any:
        """The component object for ``kind`` and id (unwrapping shared ones); for tests and tools."""
        cid = ComponentID.parse(component_id)
        for node in self.nodes:
            if node.kind is kind and node.id == cid and (signal is None or node.signal is signal):
                return getattr(node.component, "component", node.component)
        raise KeyError(f"no {kind.value} {component_id!r} in the graph")

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: Host) -> None:
        """Start every node downstream-first (reused ones are running already). On a failure, stop what this
        call started and re-raise."""
        todo = [node for node in self.nodes if id(node.component) not in self.running]
        for node in todo:
            host.report_status(node.kind, node.id, Status.STARTING, pipeline=node.pipeline)
        for node in todo:
            try:
                await node.component.start(host)
            except Exception as exc:
                host.report_status(node.kind, node.id, Status.PERMANENT_ERROR, str(exc), pipeline=node.pipeline)
                log.error("failed to start %s: %s", node.label, exc)
                await self.shutdown(host, keep=self.reused)
                raise
            self.running.add(id(node.component))
            self._started.append(node)
            host.report_status(node.kind, node.id, Status.OK, pipeline=node.pipeline)

    async def shutdown(self, host: Host, keep: set[int] | None = None) -> list[BaseException]:
        """Stop every node upstream-first, including ones never started; collect every error. Nodes whose
        component is in ``keep`` (taken over by a reloaded graph) stay running."""
        errors: list[BaseException] = []
        keep = keep or set()
        for node in reversed(self.nodes):
            if id(node.component) not in keep and isinstance(node.component, Draining):
                node.component.begin_shutdown()
        for node in reversed(self.nodes):
            if id(node.component) in keep:
                continue
            host.report_status(node.kind, node.id, Status.STOPPING, pipeline=node.pipeline)
            try:
                await node.component.shutdown()
            except Exception as exc:
                log.error("error shutting down %s: %s", node.label, exc)
                errors.append(exc)
            self.running.discard(id(node.component))
            host.report_status(node.kind, node.id, Status.STOPPED, pipeline=node.pipeline)
        self._started.clear()
        return errors


def _same(old: list[Any], new: list[Any]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))
