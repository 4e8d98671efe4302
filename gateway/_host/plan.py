"""The graph as data: which components a configuration makes and what each feeds, and what a reload may keep.

``plan(config)`` computes nodes and edges from a ``GatewayConfig`` without creating anything; the graph module
builds the plan. ``reusable(old, new, changed_extensions)`` compares two plans and says which running components
a reload keeps, object and state (queues, buffers, open ports); every other old node stops and every other new one
is created. Both are pure, so they are tested without starting a component.

Instances, as in the Collector: one exporter per (id, signal), shared by the pipelines of that signal that list
it; one processor per (pipeline, id); one connector per (id, input signal, output signal); one receiver per
(id, signal), feeding every pipeline of that signal that lists it.

A component is bound to its next consumer when it is created, so a node is kept only when its config is equal,
no extension it names changed, and everything it feeds is kept too, in the same order. Receivers are the
exception: they feed an inlet that a reload points at the new pipelines, so they are kept whatever they feed,
when their config and the set of signals they serve (one server for all) are unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway._host.config import GatewayConfig, PipelineID
from gateway.component import ComponentID, Kind, Signal
from gateway.errors import ConfigError

__all__ = ["NodeKey", "Plan", "PlannedNode", "PlannedPipeline", "plan", "reusable"]


@dataclass(frozen=True, order=True)
class NodeKey:
    """One component instance: ``pipeline`` is set for processors only, ``out_signal`` for connectors only."""

    kind: Kind
    id: ComponentID
    signal: Signal
    pipeline: PipelineID | None = None
    out_signal: Signal | None = None


@dataclass(frozen=True)
class PlannedNode:
    key: NodeKey
    #: The component's decoded config (a frozen dataclass): compared, never called.
    config: Any
    #: The factory's ``mutates_data`` (for a connector that passes batches on: whether a pipeline it feeds may
    #: change them): a fan-out gives it its own copy.
    mutates_data: bool
    #: Processors: the next processor of the pipeline, or nothing when it is the last (it feeds the pipeline's
    #: consumers). Exporters: nothing.
    feeds: tuple[NodeKey, ...] = ()
    #: Receivers and connectors: the pipelines they feed, in order.
    pipelines: tuple[PipelineID, ...] = ()


@dataclass(frozen=True)
class PlannedPipeline:
    id: PipelineID
    #: Its processors, first to last.
    processors: tuple[NodeKey, ...]
    #: Its exporters and connector instances, as its fan-out hands batches to them: read-only ones first.
    consumers: tuple[NodeKey, ...]

    @property
    def head(self) -> NodeKey | PipelineID:
        """What a receiver or connector hands this pipeline's batches to: its first processor, or its fan-out."""
        return self.processors[0] if self.processors else self.id


@dataclass(frozen=True)
class Plan:
    #: Every node after everything it feeds: a valid creation and start order; reversed, a valid stop order.
    nodes: tuple[PlannedNode, ...]
    pipelines: Mapping[PipelineID, PlannedPipeline]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {node.key: node for node in self.nodes})

    def get(self, key: NodeKey) -> PlannedNode | None:
        return self._by_key.get(key)  # type: ignore[attr-defined,no-any-return]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key  # type: ignore[attr-defined]

    def receiver_signals(self, cid: ComponentID) -> frozenset[Signal]:
        return frozenset(n.key.signal for n in self.nodes if n.key.kind is Kind.RECEIVER and n.key.id == cid)


def plan(config: GatewayConfig) -> Plan:
    """The nodes and edges of ``config``; a ``ConfigError`` when connectors form a cycle through pipelines."""
    return _Planner(config).run()


class _Planner:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.nodes: dict[NodeKey, PlannedNode] = {}
        self.pipelines: dict[PipelineID, PlannedPipeline] = {}
        self.building: set[PipelineID] = set()

    def run(self) -> Plan:
        for pid in sorted(self.config.pipelines):
            self.pipeline(pid)
        receivers: dict[tuple[ComponentID, Signal], list[PipelineID]] = {}
        for pid in sorted(self.config.pipelines):
            for cid in self.config.pipelines[pid].receivers:
                if not self.is_connector(cid):
                    receivers.setdefault((cid, pid.signal), []).append(pid)
        for (cid, signal), pids in receivers.items():
            self.add(PlannedNode(NodeKey(Kind.RECEIVER, cid, signal), *self.component(Kind.RECEIVER, cid),
                                 pipelines=tuple(pids)))
        return Plan(tuple(self.nodes.values()), dict(self.pipelines))

    def is_connector(self, cid: ComponentID) -> bool:
        return (Kind.CONNECTOR, cid) in self.config.components

    def component(self, kind: Kind, cid: ComponentID) -> tuple[Any, bool]:
        cc = self.config.get(kind, cid)
        return cc.config, cc.factory.mutates_data

    def add(self, node: PlannedNode) -> None:
        self.nodes.setdefault(node.key, node)

    def pipeline(self, pid: PipelineID) -> PlannedPipeline:
        if pid in self.pipelines:
            return self.pipelines[pid]
        if pid in self.building:
            raise ConfigError(f"service::pipelines::{pid}: connectors form a cycle through this pipeline")
        self.building.add(pid)
        pipeline = self.config.pipelines[pid]
        consumers: list[PlannedNode] = []
        for cid in pipeline.exporters:
            if self.is_connector(cid):
                consumers.extend(self.connector(cid, pid.signal))
            else:
                node = PlannedNode(NodeKey(Kind.EXPORTER, cid, pid.signal), *self.component(Kind.EXPORTER, cid))
                self.add(node)
                consumers.append(node)
        processors: list[NodeKey] = []
        for cid in reversed(pipeline.processors):
            key = NodeKey(Kind.PROCESSOR, cid, pid.signal, pipeline=pid)
            self.add(PlannedNode(key, *self.component(Kind.PROCESSOR, cid), feeds=tuple(processors[:1])))
            processors.insert(0, key)
        ordered = [n.key for n in consumers if not n.mutates_data] + [n.key for n in consumers if n.mutates_data]
        self.building.discard(pid)
        self.pipelines[pid] = PlannedPipeline(pid, tuple(processors), tuple(ordered))
        return self.pipelines[pid]

    def _changes_batches(self, pipeline: PlannedPipeline) -> bool:
        """True when something in ``pipeline`` may change the batches it is handed in place: a mutating
        processor, or a mutating consumer (its fan-out may hand the last one the batch itself)."""
        return any(self.nodes[key].mutates_data for key in (*pipeline.processors, *pipeline.consumers))

    def connector(self, cid: ComponentID, in_signal: Signal) -> list[PlannedNode]:
        factory = self.config.get(Kind.CONNECTOR, cid).factory
        out = []
        for out_signal in Signal:
            targets = [p.id for p in self.config.pipelines.values() if p.id.signal is out_signal and cid in p.receivers]
            if (in_signal, out_signal) not in factory.connectors or not targets:
                continue
            key = NodeKey(Kind.CONNECTOR, cid, in_signal, out_signal=out_signal)
            if key not in self.nodes:
                planned = [self.pipeline(target) for target in targets]
                config, mutates = self.component(Kind.CONNECTOR, cid)
                if factory.passes_batches_on:  # its batches are the ones the pipelines it feeds are handed
                    mutates = any(self._changes_batches(p) for p in planned)
                self.add(PlannedNode(key, config, mutates, pipelines=tuple(targets)))
            out.append(self.nodes[key])
        return out


def reusable(old: Plan, new: Plan, changed_extensions: Iterable[ComponentID] = (),
             available: Collection[NodeKey] | None = None) -> frozenset[NodeKey]:
    """The nodes of ``new`` that a reload takes over from ``old`` running (see the module docstring).

    ``available``: the nodes of ``old`` whose component is running (all when None). After a failed start only
    some are, and a rollback must create the others again.
    """
    changed = {str(cid) for cid in changed_extensions}
    kept: set[NodeKey] = set()

    def unchanged(node: PlannedNode) -> bool:
        before = old.get(node.key)
        return (before is not None and (available is None or node.key in available) and before.config == node.config
                and not _mentions(node.config, changed))

    def fanout_kept(pid: PipelineID) -> bool:
        """The pipeline's fan-out hands batches to the very same consumers, in the same order."""
        before = old.pipelines.get(pid)
        consumers = new.pipelines[pid].consumers
        return before is not None and before.consumers == consumers and all(c in kept for c in consumers)

    def head_kept(pid: PipelineID) -> bool:
        head = new.pipelines[pid].head
        return fanout_kept(pid) if isinstance(head, PipelineID) else head in kept

    for node in new.nodes:  # downstream first: what a node feeds is decided before the node
        key = node.key
        if not unchanged(node):
            continue
        before = old.get(key)
        assert before is not None
        if key.kind is Kind.EXPORTER:
            ok = True
        elif key.kind is Kind.PROCESSOR:
            assert key.pipeline is not None
            # The same next processor, kept; or, for the last one, the pipeline's own fan-out, kept.
            ok = before.feeds == node.feeds and (all(f in kept for f in node.feeds) if node.feeds
                                                  else fanout_kept(key.pipeline))
        elif key.kind is Kind.CONNECTOR:
            ok = before.pipelines == node.pipelines and all(head_kept(p) for p in node.pipelines)
        else:  # receiver: one server for all its signals
            ok = old.receiver_signals(key.id) == new.receiver_signals(key.id)
        if ok:
            kept.add(key)
    return frozenset(kept)


def _mentions(value: Any, names: set[str]) -> bool:
    """True when a config (nested dataclasses, lists, mappings) holds one of ``names`` as a string value."""
    if not names:
        return False
    if isinstance(value, str):
        return value in names
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_mentions(getattr(value, f.name), names) for f in dataclasses.fields(value))
    if isinstance(value, Mapping):
        return any(_mentions(v, names) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_mentions(v, names) for v in value)
    return False
