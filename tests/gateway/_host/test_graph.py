from __future__ import annotations

import pytest
import yaml

from gateway._host.config import build_config
from gateway._host.fanout import FanOut
from gateway._host.graph import Graph
from gateway._host.running import RunningHost
from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.testing import Sink, make_traces

CONFIG = """
receivers:
  fakerecv:
processors:
  tag/a: {tag: "-a"}
  tag/b: {tag: "-b"}
exporters:
  fakeexp/plain:
  fakeexp/other:
connectors:
  count:
service:
  pipelines:
    traces/a: {receivers: [fakerecv], processors: [tag/a], exporters: [fakeexp/plain, count]}
    traces/b: {receivers: [fakerecv], processors: [tag/b], exporters: [fakeexp/plain]}
    metrics: {receivers: [count], exporters: [fakeexp/other]}
    logs: {receivers: [fakerecv], exporters: [fakeexp/plain]}
"""


@pytest.fixture
def graph(registry):
    return Graph(build_config(yaml.safe_load(CONFIG), registry), Telemetry())


async def test_start_is_downstream_first_and_shutdown_upstream_first(graph, events):
    host = RunningHost(Telemetry())
    await graph.start(host)
    started = list(events)
    events.clear()
    assert await graph.shutdown(host) == []
    stopped = list(events)

    def position(log, text):
        return next(i for i, line in enumerate(log) if line.startswith(text))

    # every exporter before any processor, processors and connector before receivers
    assert max(position(started, f"start exporter fakeexp/{n}") for n in ("plain", "other")) < position(
        started, "start processor")
    assert position(started, "start exporter fakeexp/other") < position(started, "start connector count")
    assert position(started, "start connector count") < position(started, "start processor tag/a")
    assert position(started, "start processor tag/a") < position(started, "start receiver fakerecv")
    assert stopped[0].startswith("stop receiver")
    assert position(stopped, "stop processor tag/a") < position(stopped, "stop connector count")
    assert position(stopped, "stop connector count") < position(stopped, "stop exporter fakeexp/other")
    assert host.component_status()["exporter:fakeexp/plain"]["status"] == "stopped"


async def test_receiver_fans_out_to_every_pipeline_and_mutating_processors_get_copies(graph):
    await graph.start(RunningHost(Telemetry()))
    receiver = graph.find(Kind.RECEIVER, "fakerecv", Signal.TRACES)
    batch = make_traces(spans=3)
    await receiver.push(batch)
    plain = graph.find(Kind.EXPORTER, "fakeexp/plain", Signal.TRACES)
    names = sorted(span.name.rsplit("-", 1)[-1] for span in plain.spans())
    # one exporter instance shared by both pipelines: each pipeline's copy was tagged by its own processor only
    assert names == ["a", "a", "a", "b", "b", "b"]
    metrics = graph.find(Kind.EXPORTER, "fakeexp/other", Signal.METRICS)
    [batch_out] = metrics.batches[Signal.METRICS]
    assert batch_out.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].as_int == 3
    await graph.shutdown(RunningHost(Telemetry()))


async def test_shutdown_collects_every_error_and_stops_everything(graph, events):
    host = RunningHost(Telemetry())
    await graph.start(host)

    async def broken():
        raise RuntimeError("boom")

    graph.find(Kind.PROCESSOR, "tag/a").shutdown = broken
    graph.find(Kind.EXPORTER, "fakeexp/other", Signal.METRICS).shutdown = broken
    events.clear()
    errors = await graph.shutdown(host)
    assert [str(e) for e in errors] == ["boom", "boom"]
    assert any(line.startswith("stop exporter fakeexp/plain") for line in events)
    assert any(line.startswith("stop receiver") for line in events)


async def test_failed_start_stops_what_started_and_reraises(graph, events):
    async def broken(host):
        raise OSError("address in use")

    graph.find(Kind.RECEIVER, "fakerecv", Signal.TRACES).start = broken
    host = RunningHost(Telemetry())
    with pytest.raises(OSError, match="address in use"):
        await graph.start(host)
    assert any(line.startswith("stop exporter") for line in events)
    assert "address in use" in str(host.component_status())


class Failing(Sink):
    async def consume_traces(self, batch):
        raise ValueError("downstream failed")


async def test_fanout_delivers_to_all_then_raises_first_error():
    good_a, good_b = Sink(), Sink()
    fanout = FanOut(Signal.TRACES, [(good_a, False), (Failing(), False), (good_b, True)])
    batch = make_traces(spans=2)
    with pytest.raises(ValueError, match="downstream failed"):
        await fanout.consume_traces(batch)
    assert good_a.batches[Signal.TRACES][0] is batch
    # the mutating consumer got its own copy because a read-only consumer shares the original
    assert good_b.batches[Signal.TRACES][0] is not batch
    assert good_b.batches[Signal.TRACES][0] == batch


async def test_fanout_last_mutating_consumer_takes_the_original_when_alone():
    first, last = Sink(), Sink()
    fanout = FanOut(Signal.TRACES, [(first, True), (last, True)])
    batch = make_traces(spans=1)
    await fanout.consume_traces(batch)
    assert first.batches[Signal.TRACES][0] is not batch
    assert last.batches[Signal.TRACES][0] is batch


async def test_a_reload_takes_over_exactly_what_the_plan_diff_keeps(registry, graph):
    host = RunningHost(Telemetry())
    await graph.start(host)
    # tag/b changes: its processor is created again; the pipelines it does not feed keep every object
    changed = yaml.safe_load(CONFIG)
    changed["processors"]["tag/b"] = {"tag": "-changed"}
    new = Graph(build_config(changed, registry), Telemetry(), previous=graph)
    old_objects = {node.component for node in graph.nodes}
    taken = {node.component for node in new.nodes if node.component in old_objects}
    assert {id(c) for c in taken} == new.reused
    kept = {(key.kind, str(key.id), key.pipeline and str(key.pipeline)) for key in new.kept}
    assert (Kind.PROCESSOR, "tag/b", "traces/b") not in kept
    assert {(Kind.PROCESSOR, "tag/a", "traces/a"), (Kind.CONNECTOR, "count", None),
            (Kind.EXPORTER, "fakeexp/plain", None), (Kind.RECEIVER, "fakerecv", None)} <= kept
    assert len(new.reused) == len(new.kept) == len(new.nodes) - 1
    new.commit()
    await graph.shutdown(host, keep=new.reused)
    await new.start(host)
    assert await new.shutdown(host) == []
