"""Build the plan of a ``GatewayConfig`` (``gateway._host.plan``) into running components; start them
downstream-first and stop them upstream-first.

The plan says which components exist and what each feeds; this module creates them, binds each to its next
consumer through the fan-outs of ``gateway._host.fanout``, and on a reload takes over the running components the
plan diff keeps (``plan.reusable``), with their queues, buffers and open ports. Reused receivers feed an
``Inlet`` that is pointed at the new pipelines on ``commit``.

Creation follows the plan's order, everything downstream of a node first, so it is a valid start order, and its
reverse a valid shutdown order in which each stage drains into the next.

A processor or connector whose factory has ``mutates_data=True`` hands batches on through a ``ForgetWireBytes``,
so nothing after it sees the receiver's serialized bytes of a batch it may have changed (``gateway.wirebytes``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway._host.config import GatewayConfig, PipelineID
from gateway._host.counted import counted
from gateway._host.fanout import FanOut, Inlet
from gateway._host.plan import NodeKey, Plan, PlannedNode, plan, reusable
from gateway._host.telemetry import Telemetry
from gateway._host.workers.owner import OwnerRouted
from gateway.component import ComponentID, ComponentSettings, Draining, Kind, Signal
from gateway.host import Host, Status
from gateway.wirebytes import ForgetWireBytes

__all__ = ["Graph", "Node"]

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



class Graph:
    def __init__(self, config: GatewayConfig, telemetry: Telemetry, previous: Graph | None = None,
                 changed_extensions: Iterable[ComponentID] = ()) -> None:
        self.config = config
        self.telemetry = telemetry
        self.plan: Plan = plan(config)
        #: Plan nodes taken over from ``previous``, running already (empty without one).
        self.kept: frozenset[NodeKey] = frozenset()
        if previous is not None:
            alive = {key for key, component in previous._components.items() if id(component) in previous.running}
            self.kept = reusable(previous.plan, self.plan, changed_extensions, alive)
        self._previous = previous
        #: ids of component objects taken over from ``previous`` (already running; not started again).
        self.reused: set[int] = set()
        #: ids of component objects that are running.
        self.running: set[int] = set()
        self.nodes: list[Node] = []
        self._components: dict[NodeKey, Any] = {}
        #: processors and connectors: (what they were created with as next consumer, the fan-out behind it)
        self._outputs: dict[NodeKey, tuple[Any, FanOut]] = {}
        self._fanouts: dict[PipelineID, FanOut] = {}
        self._inlets: dict[NodeKey, Inlet] = {}
        self._retargets: list[tuple[Inlet, list[tuple[Any, bool]]]] = []
        self._single_owner: dict[tuple[str, Signal], OwnerRouted] = {}
        for node in self.plan.nodes:
            self._add(node)
        self._previous = None  # only needed while building: a chain of graphs would keep every old one alive

    @property
    def _processors(self) -> dict[tuple[PipelineID, ComponentID], tuple[Any, Any, FanOut]]:
        """(pipeline, processor id) → (processor, its next consumer, the fan-out a tap reads its output at)."""
        return {(key.pipeline, key.id): (self._components[key], *output) for key, output in self._outputs.items()
                if key.kind is Kind.PROCESSOR and key.pipeline is not None}

    # ---------------------------------------------------------------- building

    def _settings(self, kind: Kind, cid: ComponentID, signal: Signal | None) -> ComponentSettings:
        return ComponentSettings(cid, kind, self.telemetry.for_component(kind, cid, signal), signal)

    def _fanout(self, pid: PipelineID) -> FanOut:
        """The fan-out after a pipeline's processors, to its exporters and connectors."""
        if pid not in self._fanouts:
            consumers = self.plan.pipelines[pid].consumers
            previous = self._previous
            if previous is not None and pid in previous._fanouts and all(c in self.kept for c in consumers) \
                    and previous.plan.pipelines[pid].consumers == consumers:
                self._fanouts[pid] = previous._fanouts[pid]
            else:
                self._fanouts[pid] = FanOut(pid.signal, [(self._consumer(c), self._mutates(c)) for c in consumers])
        return self._fanouts[pid]

    def _consumer(self, key: NodeKey) -> Any:
        """What a pipeline's fan-out hands batches to: the exporter, or the connector behind a ``Counted``."""
        component = self._components[key]
        if key.kind is not Kind.CONNECTOR:
            return component
        counter = self.telemetry.connector_consumed.labels(str(key.id), key.signal.value)
        return counted(component, key.signal, counter)

    def _mutates(self, key: NodeKey) -> bool:
        node = self.plan.get(key)
        assert node is not None
        return node.mutates_data

    def _head(self, pid: PipelineID) -> tuple[Any, bool]:
        """What a receiver or connector hands the pipeline's batches to, and whether anything in it mutates."""
        processors = self.plan.pipelines[pid].processors
        if not processors:
            return self._fanout(pid), False
        return self._components[processors[0]], any(self._mutates(p) for p in processors)

    def _add(self, planned: PlannedNode) -> None:
        key, kind = planned.key, planned.key.kind
        cc = self.config.get(kind, key.id)
        previous = self._previous if key in self.kept else None
        if previous is not None:
            component = previous._components[key]
            self.reused.add(id(component))
            self.running.add(id(component))
        outlets: list[FanOut] = []
        if kind is Kind.EXPORTER:
            if previous is None:
                create = cc.factory.create_fn(key.signal)
                assert create is not None  # checked by config validation
                component = create(self._settings(kind, key.id, key.signal), cc.config)
        elif kind is Kind.RECEIVER:
            consumers = [self._head(pid) for pid in planned.pipelines]
            if previous is not None:
                inlet = previous._inlets[key]
                self._retargets.append((inlet, consumers))
            else:
                inlet = Inlet(key.signal, consumers, str(key.id))
                create = cc.factory.create_fn(key.signal)
                assert create is not None
                component = create(self._settings(kind, key.id, key.signal), cc.config, inlet)
            self._inlets[key] = inlet
            outlets = [inlet]
        else:  # processor or connector: a fan-out behind it, unwrapped or behind a ForgetWireBytes
            if previous is not None:
                next_consumer, outlet = previous._outputs[key]
            else:
                outlet = self._outlet(planned)
                handed: Any = outlet
                if kind is Kind.CONNECTOR:  # counted on its way out (gateway._host.counted)
                    assert key.out_signal is not None
                    handed = counted(outlet, key.out_signal,
                                     self.telemetry.connector_produced.labels(str(key.id), key.out_signal.value))
                # What a mutating component hands on no longer matches the receiver's bytes (gateway.wirebytes).
                next_consumer = ForgetWireBytes(handed) if planned.mutates_data else handed
                if kind is Kind.PROCESSOR:
                    create = cc.factory.create_fn(key.signal)
                else:
                    assert key.out_signal is not None
                    create = cc.factory.connectors.get((key.signal, key.out_signal))
                assert create is not None
                component = create(self._settings(kind, key.id, key.signal), cc.config, next_consumer)
                if kind is Kind.CONNECTOR and cc.factory.single_owner:
                    component = OwnerRouted(component, str(key.id), key.signal)
            if isinstance(component, OwnerRouted):
                self._single_owner[(str(key.id), key.signal)] = component
            self._outputs[key] = (next_consumer, outlet)
            outlets = [outlet]
        self._components[key] = component
        self.nodes.append(Node(kind, key.id, component, key.signal, pipeline=str(key.pipeline) if key.pipeline
                               else None, out_signal=key.out_signal, outlets=outlets))

    def _outlet(self, planned: PlannedNode) -> FanOut:
        key = planned.key
        if key.kind is Kind.CONNECTOR:
            assert key.out_signal is not None
            return FanOut(key.out_signal, [self._head(pid) for pid in planned.pipelines])
        assert key.pipeline is not None
        if not planned.feeds:  # the last processor feeds the pipeline's own fan-out
            return self._fanout(key.pipeline)
        # Between two processors a one-consumer fan-out, so a tap can read what leaves this one.
        processors = self.plan.pipelines[key.pipeline].processors
        after = processors[processors.index(key) + 1:]
        return FanOut(key.signal, [(self._components[planned.feeds[0]], any(self._mutates(p) for p in after))])


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

    def inlet(self, receiver: str, signal: Signal) -> Inlet | None:
        """The fan-out of receiver ``receiver`` for ``signal``; None when no pipeline of the signal lists it."""
        return self._inlets.get(NodeKey(Kind.RECEIVER, ComponentID.parse(receiver), signal))

    def single_owner(self, connector_id: str, in_signal: Signal) -> OwnerRouted | None:
        """The single-owner connector ``connector_id`` taking ``in_signal`` (``workers.owner``), if configured."""
        return self._single_owner.get((connector_id, in_signal))

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
            host.report_status(node.kind, node.id, Status.OK, pipeline=node.pipeline)

    async def shutdown(self, host: Host, keep: set[int] | None = None,
                       receivers_stopped: Callable[[], Awaitable[None]] | None = None) -> list[BaseException]:
        """Stop every node upstream-first, including ones never started; collect every error. Nodes whose
        component is in ``keep`` (taken over by a reloaded graph) stay running. ``receivers_stopped`` is awaited
        once the receivers have stopped, before any processor does (a worker stops taking routed items then)."""
        errors: list[BaseException] = []
        keep = keep or set()
        for node in reversed(self.nodes):
            if id(node.component) not in keep and isinstance(node.component, Draining):
                node.component.begin_shutdown()
        for node in reversed(self.nodes):  # receivers come last in nodes, so first here
            if receivers_stopped is not None and node.kind is not Kind.RECEIVER:
                await receivers_stopped()
                receivers_stopped = None
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
        if receivers_stopped is not None:
            await receivers_stopped()
        return errors
