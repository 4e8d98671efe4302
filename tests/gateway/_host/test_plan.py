"""The plan of a configuration (nodes and edges, no component created) and the reload diff between two plans."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import yaml

from gateway import Factory, hookimpl
from gateway._host.config import GatewayConfig, PipelineID, build_config
from gateway._host.plan import NodeKey, Plan, plan, reusable
from gateway._host.registry import load_registry
from gateway.component import ComponentID, Kind, Signal
from gateway.errors import ConfigError

BASE = {
    "receivers": {"fakerecv": None},
    "processors": {"tag/a": {"tag": "-a"}, "tag/b": {"tag": "-b"}, "tag/c": {"tag": "-c"}},
    "exporters": {"fakeexp/plain": None, "fakeexp/other": None},
    "connectors": {"count": None},
    "service": {"pipelines": {
        "traces/a": {"receivers": ["fakerecv"], "processors": ["tag/a", "tag/b"],
                     "exporters": ["fakeexp/plain", "count"]},
        "traces/b": {"receivers": ["fakerecv"], "processors": ["tag/c"], "exporters": ["fakeexp/plain"]},
        "metrics": {"receivers": ["count"], "exporters": ["fakeexp/other"]},
        "logs": {"receivers": ["fakerecv"], "exporters": ["fakeexp/plain"]},
    }},
}
TRACES_A, TRACES_B = PipelineID(Signal.TRACES, "a"), PipelineID(Signal.TRACES, "b")
METRICS, LOGS = PipelineID(Signal.METRICS), PipelineID(Signal.LOGS)


def config(registry, **changes) -> GatewayConfig:  # type: ignore[no-untyped-def]
    """BASE with top-level sections or pipelines replaced: ``config(registry, processors={...})``,
    ``config(registry, traces_a={...})``."""
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    for name, value in changes.items():
        if name in raw:
            raw[name] = value
        else:
            raw["service"]["pipelines"][name.replace("_", "/")] = value
    return build_config(raw, registry)


def key(kind: Kind, cid: str, signal: Signal, pipeline: PipelineID | None = None,
        out: Signal | None = None) -> NodeKey:
    return NodeKey(kind, ComponentID.parse(cid), signal, pipeline, out)


EXP_PLAIN_T = key(Kind.EXPORTER, "fakeexp/plain", Signal.TRACES)
EXP_PLAIN_L = key(Kind.EXPORTER, "fakeexp/plain", Signal.LOGS)
EXP_OTHER_M = key(Kind.EXPORTER, "fakeexp/other", Signal.METRICS)
TAG_A = key(Kind.PROCESSOR, "tag/a", Signal.TRACES, TRACES_A)
TAG_B = key(Kind.PROCESSOR, "tag/b", Signal.TRACES, TRACES_A)
TAG_C = key(Kind.PROCESSOR, "tag/c", Signal.TRACES, TRACES_B)
COUNT = key(Kind.CONNECTOR, "count", Signal.TRACES, out=Signal.METRICS)
RECV_T = key(Kind.RECEIVER, "fakerecv", Signal.TRACES)
RECV_L = key(Kind.RECEIVER, "fakerecv", Signal.LOGS)
EVERY = {EXP_PLAIN_T, EXP_PLAIN_L, EXP_OTHER_M, TAG_A, TAG_B, TAG_C, COUNT, RECV_T, RECV_L}


def test_one_node_per_instance_as_in_the_collector(registry) -> None:  # type: ignore[no-untyped-def]
    p = plan(config(registry))
    assert {n.key for n in p.nodes} == EVERY
    assert len(p.nodes) == len(EVERY)  # fakeexp/plain is one traces instance for both traces pipelines


def test_edges(registry) -> None:  # type: ignore[no-untyped-def]
    p = plan(config(registry))
    assert p.pipelines[TRACES_A].processors == (TAG_A, TAG_B)
    assert p.pipelines[TRACES_A].consumers == (EXP_PLAIN_T, COUNT)
    assert p.pipelines[METRICS].processors == () and p.pipelines[METRICS].head == METRICS
    assert p.get(TAG_A).feeds == (TAG_B,) and p.get(TAG_B).feeds == ()  # type: ignore[union-attr]
    assert p.get(COUNT).pipelines == (METRICS,)  # type: ignore[union-attr]
    assert p.get(RECV_T).pipelines == (TRACES_A, TRACES_B)  # type: ignore[union-attr]
    assert p.receiver_signals(ComponentID("fakerecv")) == {Signal.TRACES, Signal.LOGS}


def test_every_node_comes_after_everything_it_feeds(registry) -> None:  # type: ignore[no-untyped-def]
    p = plan(config(registry))
    order = [n.key for n in p.nodes]

    def downstream(node_key: NodeKey) -> set[NodeKey]:
        node = p.get(node_key)
        assert node is not None
        out = set(node.feeds)
        if node_key.kind is Kind.PROCESSOR and not node.feeds:
            assert node_key.pipeline is not None
            out |= set(p.pipelines[node_key.pipeline].consumers)
        for pid in node.pipelines:
            pipeline = p.pipelines[pid]
            out |= set(pipeline.processors[:1]) or set(pipeline.consumers)
        return out

    for position, node_key in enumerate(order):
        assert all(order.index(d) < position for d in downstream(node_key)), node_key


def kept(registry, old: GatewayConfig, new: GatewayConfig, **kwargs) -> frozenset[NodeKey]:  # type: ignore[no-untyped-def]
    return reusable(plan(old), plan(new), **kwargs)


def test_the_same_config_keeps_everything(registry) -> None:  # type: ignore[no-untyped-def]
    assert kept(registry, config(registry), config(registry)) == EVERY


def test_a_changed_exporter_restarts_it_and_the_processors_bound_to_it(registry) -> None:  # type: ignore[no-untyped-def]
    new = config(registry, exporters={"fakeexp/plain": {"tag": "new"}, "fakeexp/other": None})
    # The last processor of each traces pipeline feeds fakeexp/plain through its fan-out, and each processor is
    # bound to the next; the connector, its metrics pipeline and the receivers (retargeted inlets) stay.
    assert kept(registry, config(registry), new) == {EXP_OTHER_M, COUNT, RECV_T, RECV_L}


def test_a_changed_processor_restarts_it_and_what_comes_before_it(registry) -> None:  # type: ignore[no-untyped-def]
    new = config(registry, processors={"tag/a": {"tag": "-a"}, "tag/b": {"tag": "changed"}, "tag/c": {"tag": "-c"}})
    assert EVERY - kept(registry, config(registry), new) == {TAG_A, TAG_B}


def test_a_processor_inserted_restarts_only_what_comes_before_it(registry) -> None:  # type: ignore[no-untyped-def]
    new = config(registry, traces_a={"receivers": ["fakerecv"], "processors": ["tag/a", "tag/c", "tag/b"],
                                     "exporters": ["fakeexp/plain", "count"]})
    result = kept(registry, config(registry), new)
    assert TAG_B in result and TAG_A not in result
    assert key(Kind.PROCESSOR, "tag/c", Signal.TRACES, TRACES_A) not in result  # new in this pipeline
    assert {EXP_PLAIN_T, COUNT, TAG_C, RECV_T} <= result


def test_a_fanout_with_other_consumers_is_new_and_so_is_the_processor_before_it(registry) -> None:  # type: ignore[no-untyped-def]
    new = config(registry, traces_b={"receivers": ["fakerecv"], "processors": ["tag/c"],
                                     "exporters": ["fakeexp/plain", "count"]})
    result = kept(registry, config(registry), new)
    assert TAG_C not in result
    assert {TAG_A, TAG_B, EXP_PLAIN_T, COUNT} <= result


def test_a_receiver_that_serves_other_signals_restarts_for_all(registry) -> None:  # type: ignore[no-untyped-def]
    raw_pipelines = yaml.safe_load(yaml.safe_dump(BASE))["service"]["pipelines"]
    del raw_pipelines["logs"]
    new = config(registry, service={"pipelines": raw_pipelines})
    result = kept(registry, config(registry), new)
    assert RECV_T not in result  # one server for traces and logs: it now serves traces only
    assert {TAG_A, TAG_B, TAG_C, EXP_PLAIN_T, COUNT} <= result


def test_a_changed_extension_restarts_the_components_that_name_it(registry) -> None:  # type: ignore[no-untyped-def]
    new = config(registry, processors={"tag/a": {"tag": "-a"}, "tag/b": {"tag": "storage/x"}, "tag/c": {"tag": "-c"}})
    old = new
    assert kept(registry, old, new) == EVERY
    assert EVERY - kept(registry, old, new, changed_extensions=[ComponentID("storage", "x")]) == {TAG_A, TAG_B}


def test_a_component_that_is_not_running_is_created_again_with_what_feeds_it(registry) -> None:  # type: ignore[no-untyped-def]
    # After a failed start only some old components run: a rollback creates the others.
    result = kept(registry, config(registry), config(registry), available=EVERY - {EXP_OTHER_M})
    assert EVERY - result == {EXP_OTHER_M, COUNT, TAG_A, TAG_B}


def test_plans_are_data(registry) -> None:  # type: ignore[no-untyped-def]
    first, second = plan(config(registry)), plan(config(registry))
    assert first.nodes == second.nodes and first.pipelines == second.pipelines
    assert isinstance(first, Plan)


@dataclass(frozen=True)
class _NoConfig:
    pass


def test_connectors_that_form_a_cycle_through_pipelines_are_refused() -> None:
    hop = Factory("hop", Kind.CONNECTOR, _NoConfig, connectors={(Signal.TRACES, Signal.TRACES): object})
    registry = load_registry([SimpleNamespace(otelgw_component_factories=hookimpl(lambda: [hop]))],
                             entry_points=False)
    raw = {"connectors": {"hop/1": None, "hop/2": None}, "service": {"pipelines": {
        "traces/a": {"receivers": ["hop/2"], "exporters": ["hop/1"]},
        "traces/b": {"receivers": ["hop/1"], "exporters": ["hop/2"]}}}}
    with pytest.raises(ConfigError, match="cycle"):
        plan(build_config(raw, registry))
