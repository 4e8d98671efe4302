"""Rule evaluation with a controllable clock: aggregations, lifecycle, group_by, templates."""

from __future__ import annotations

import pytest

from plugins.processors.alerts.lifecycle import State
from plugins.processors.alerts.series import histogram_quantile

from .helpers import counter, gauge, histogram, make_processor, states

QUEUE_RULES = {
    "notifiers": {"log": {}},
    "rules": [
        {"alert": "QueueDepth", "metric": "callcenter.queue.depth", "aggregation": "last", "window": "1m",
         "op": "gt", "threshold": 20, "for": "1m", "severity": "critical", "group_by": ["queue"],
         "annotations": {"summary": "Queue {{ $labels.queue }} holds {{ $value }} contacts (> {{ $threshold }})"}},
    ],
}


async def test_pending_firing_resolved_with_for():
    p, _sink, clock = make_processor(QUEUE_RULES)
    await p.consume_metrics(gauge("callcenter.queue.depth", [({"queue": "billing"}, 25), ({"queue": "sales"}, 3)]))
    p.evaluate()
    assert states(p) == {"QueueDepth/critical/billing": "pending"}
    clock.advance(30)
    await p.consume_metrics(gauge("callcenter.queue.depth", [({"queue": "billing"}, 26)]))
    assert p.evaluate() == []
    clock.advance(31)
    await p.consume_metrics(gauge("callcenter.queue.depth", [({"queue": "billing"}, 27)]))
    changed = p.evaluate()
    assert [a.state for a in changed] == [State.FIRING]
    alert = changed[0]
    assert alert.annotations["summary"] == "Queue billing holds 27 contacts (> 20)"
    assert alert.labels == {"queue": "billing", "alertname": "QueueDepth", "severity": "critical"}
    clock.advance(15)
    await p.consume_metrics(gauge("callcenter.queue.depth", [({"queue": "billing"}, 5)]))
    changed = p.evaluate()
    assert [a.state for a in changed] == [State.RESOLVED]
    assert changed[0].fingerprint == alert.fingerprint


async def test_pending_that_clears_never_fires():
    p, _, clock = make_processor(QUEUE_RULES)
    await p.consume_metrics(gauge("callcenter.queue.depth", [({"queue": "billing"}, 25)]))
    p.evaluate()
    clock.advance(20)
    await p.consume_metrics(gauge("callcenter.queue.depth", [({"queue": "billing"}, 2)]))
    assert p.evaluate() == []
    assert p.book.alerts == {}


async def test_batches_pass_unchanged():
    p, sink, _ = make_processor(QUEUE_RULES)
    batch = gauge("callcenter.queue.depth", [({"queue": "billing"}, 25)])
    expected = batch.SerializeToString()
    await p.consume_metrics(batch)
    from gateway.component import Signal
    assert [b.SerializeToString() for b in sink.batches[Signal.METRICS]] == [expected]


async def test_keep_firing_for():
    raw = {"rules": [{"alert": "Hot", "metric": "temp", "op": "gt", "threshold": 10, "keep_firing_for": "1m",
                      "window": "30s"}]}
    p, _, clock = make_processor(raw)
    await p.consume_metrics(gauge("temp", [({}, 20)]))
    assert [a.state for a in p.evaluate()] == [State.FIRING]  # for: 0 fires at once
    clock.advance(15)
    await p.consume_metrics(gauge("temp", [({}, 5)]))
    assert p.evaluate() == []  # cleared, but kept firing
    clock.advance(40)  # 55 s since the condition last held
    await p.consume_metrics(gauge("temp", [({}, 5)]))
    assert p.evaluate() == []
    clock.advance(10)
    await p.consume_metrics(gauge("temp", [({}, 5)]))
    assert [a.state for a in p.evaluate()] == [State.RESOLVED]


@pytest.mark.parametrize(("aggregation", "expected"), [
    ("last", 4.0), ("avg", 2.5), ("min", 1.0), ("max", 4.0), ("sum", 10.0)])
async def test_window_aggregations(aggregation, expected):
    raw = {"rules": [{"alert": "A", "metric": "g", "aggregation": aggregation, "window": "1m", "op": "gte",
                      "threshold": 0}]}
    p, _, clock = make_processor(raw)
    await p.consume_metrics(gauge("g", [({}, 100)]))  # falls out of the window
    clock.advance(61)
    for value in (1, 2, 3, 4):
        await p.consume_metrics(gauge("g", [({}, value)]))
        clock.advance(10)
    p.evaluate()
    assert p.rules[0].last_values == {(): pytest.approx(expected)}


async def test_rate_and_increase_with_reset_and_delta():
    raw = {"rules": [
        {"alert": "Inc", "metric": "c", "aggregation": "increase", "window": "1m", "op": "gt", "threshold": 0},
        {"alert": "Rate", "metric": "c", "aggregation": "rate", "window": "1m", "op": "gt", "threshold": 0},
        {"alert": "DeltaInc", "metric": "d", "aggregation": "increase", "window": "1m", "op": "gt", "threshold": 0},
    ]}
    p, _, clock = make_processor(raw)
    # cumulative 100 (baseline before the window), 110, 130, reset to 5, 15 → 10 + 20 + 5 + 10 = 45
    for value in (100, 110, 130, 5, 15):
        await p.consume_metrics(counter("c", [({}, value)]))
        await p.consume_metrics(counter("d", [({}, 7)], delta=True))
        clock.advance(15)
    clock.advance(-1)  # now = last sample + 14 s; the 100 sample is at now - 74 s: the baseline
    p.evaluate()
    assert p.rules[0].last_values == {(): 45.0}
    assert p.rules[1].last_values == {(): 0.75}
    assert p.rules[2].last_values == {(): 28.0}  # 4 deltas of 7 after the baseline


async def test_group_by_and_every_series_alone():
    raw = {"rules": [
        {"alert": "ByQueue", "metric": "c", "aggregation": "last", "op": "gt", "threshold": 5, "group_by": ["queue"]},
        {"alert": "Total", "metric": "c", "aggregation": "last", "op": "gt", "threshold": 5, "group_by": []},
        {"alert": "Each", "metric": "c", "aggregation": "last", "op": "gt", "threshold": 5},
    ]}
    p, _, _ = make_processor(raw)
    await p.consume_metrics(gauge("c", [({"queue": "a", "channel": "voice"}, 4), ({"queue": "a", "channel": "chat"}, 3),
                                         ({"queue": "b", "channel": "voice"}, 1)]))
    p.evaluate()
    assert p.rules[0].last_values == {(("queue", "a"),): 7.0, (("queue", "b"),): 1.0}
    assert p.rules[1].last_values == {(): 8.0}
    assert len(p.rules[2].last_values) == 3
    assert sorted(a.name for a in p.book.alerts.values()) == ["ByQueue", "Total"]


def test_histogram_quantile_hand_computed():
    # bounds 1, 2, 4; counts 10, 70, 15, 5 → total 100; p95 rank 95: bucket (2,4] holds ranks 81..95
    assert histogram_quantile(0.95, (1.0, 2.0, 4.0), [10, 70, 15, 5]) == pytest.approx(4.0)
    assert histogram_quantile(0.5, (1.0, 2.0, 4.0), [10, 70, 15, 5]) == pytest.approx(1 + 40 / 70)
    assert histogram_quantile(0.99, (1.0, 2.0, 4.0), [10, 70, 15, 5]) == 4.0  # +Inf bucket → highest bound
    assert histogram_quantile(0.5, (1.0,), [0, 0]) is None


async def test_quantile_over_window_uses_bucket_increase():
    raw = {"rules": [{"alert": "P95", "metric": "h", "aggregation": "quantile", "quantile": 0.95, "window": "5m",
                      "op": "gt", "threshold": 5}]}
    p, _, clock = make_processor(raw)
    await p.consume_metrics(histogram("h", {}, [1, 2, 4, 8], [1000, 0, 0, 0, 0]))  # old fast requests
    clock.advance(60)
    # the window sees +10 in (0,1], +70 in (1,2], +10 in (4,8], +10 in (8,+Inf): rank 95 in (8, +Inf) → 8
    await p.consume_metrics(histogram("h", {}, [1, 2, 4, 8], [1010, 70, 0, 10, 10]))
    p.evaluate()
    assert p.rules[0].last_values == {(): 8.0}
    assert [a.state for a in p.book.alerts.values()] == [State.FIRING]


async def test_ratio_rule():
    raw = {"rules": [{"alert": "ErrorRate", "aggregation": "ratio", "op": "gt", "threshold": 0.1,
                      "group_by": ["model"],
                      "numerator": {"metric": "llm.requests", "aggregation": "increase", "window": "5m",
                                    "match": {"status": "error"}},
                      "denominator": {"metric": "llm.requests", "aggregation": "increase", "window": "5m"},
                      "annotations": {"summary": "{{ $value | percent }} of calls fail"}}]}
    p, _, clock = make_processor(raw)
    await p.consume_metrics(counter("llm.requests", [({"model": "m", "status": "ok"}, 100),
                                                      ({"model": "m", "status": "error"}, 0)]))
    clock.advance(60)
    await p.consume_metrics(counter("llm.requests", [({"model": "m", "status": "ok"}, 180),
                                                      ({"model": "m", "status": "error"}, 20)]))
    p.evaluate()
    assert p.rules[0].last_values == {(("model", "m"),): pytest.approx(0.2)}
    (alert,) = p.book.alerts.values()
    assert alert.annotations["summary"] == "20% of calls fail"


async def test_unrelated_metrics_are_not_read():
    p, _, _ = make_processor(QUEUE_RULES)
    await p.consume_metrics(gauge("other.metric", [({"queue": "x"}, 99)]))
    assert all(not s.series for r in p.rules for s in r.stores)


async def test_self_metrics_export_state():
    p, _, clock = make_processor(QUEUE_RULES)
    await p.consume_metrics(gauge("callcenter.queue.depth", [({"queue": "billing"}, 25)]))
    p.evaluate()
    registry = p.settings.telemetry.registry
    labels = {"processor": "alerts", "alertname": "QueueDepth", "severity": "critical"}
    assert registry.get_sample_value("otelgw_alerts", {**labels, "state": "pending"}) == 1
    clock.advance(60)
    await p.consume_metrics(gauge("callcenter.queue.depth", [({"queue": "billing"}, 25)]))
    p.evaluate()
    assert registry.get_sample_value("otelgw_alerts", {**labels, "state": "pending"}) == 0
    assert registry.get_sample_value("otelgw_alerts", {**labels, "state": "firing"}) == 1


async def test_a_point_with_no_recorded_value_ends_its_series_and_is_not_read_as_zero():
    """The kpi connector sends a ratio whose window emptied once more, with no recorded value: the series has
    ended. Read as 0 it would page "service level 0%"; it must end the alert instead."""
    rules = {"notifiers": {"log": {}}, "rules": [
        {"alert": "ServiceLevelLow", "metric": "callcenter.service_level", "aggregation": "last", "window": "5m",
         "op": "lt", "threshold": 0.8, "severity": "high", "group_by": ["queue"]}]}
    p, _, clock = make_processor(rules)
    await p.consume_metrics(gauge("callcenter.service_level", [({"queue": "billing"}, 0.9), ({"queue": "sales"}, 0.5)]))
    p.evaluate()
    assert states(p) == {"ServiceLevelLow/high/sales": "firing"}
    clock.advance(15)
    ended = gauge("callcenter.service_level", [({"queue": "billing"}, 0.0), ({"queue": "sales"}, 0.0)])
    for point in ended.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points:
        point.ClearField("as_double")
        point.flags = 1  # DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    await p.consume_metrics(ended)
    changed = p.evaluate()
    assert [(a.labels["queue"], a.state) for a in changed] == [("sales", State.RESOLVED)]
    assert "billing" not in str(states(p))  # the ended billing series did not page as 0%
