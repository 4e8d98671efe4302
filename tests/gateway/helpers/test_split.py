from __future__ import annotations

import pytest

from gateway.component import Signal, count_items
from gateway.helpers.split import split
from tests.plugins.processors.batch.batches import flatten, mixed

TOTALS = {Signal.TRACES: 26, Signal.METRICS: 30, Signal.LOGS: 21}


@pytest.mark.parametrize("signal", list(Signal))
@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7, 10, 25, 29, 30, 1000])
def test_split_preserves_every_item_in_order_with_its_headers(signal: Signal, limit: int) -> None:
    batch = mixed(signal)
    assert count_items(signal, batch) == TOTALS[signal]
    before = batch.SerializeToString(deterministic=True)
    chunks = split(signal, batch, limit)
    counts = [n for _, n in chunks]
    assert counts == [count_items(signal, c) for c, _ in chunks]
    assert sum(counts) == TOTALS[signal]
    assert all(n == limit for n in counts[:-1]) and 0 < counts[-1] <= limit
    assert flatten(signal, [c for c, _ in chunks]) == flatten(signal, [batch])
    assert batch.SerializeToString(deterministic=True) == before  # the input is never modified


@pytest.mark.parametrize("signal", list(Signal))
def test_split_with_room_for_everything_is_one_identical_copy(signal: Signal) -> None:
    batch = mixed(signal)
    [(chunk, items)] = split(signal, batch, 10_000)
    assert items == TOTALS[signal]
    assert chunk.SerializeToString(deterministic=True) == batch.SerializeToString(deterministic=True)


def test_metric_split_inside_one_metric_keeps_its_type_fields() -> None:
    batch = mixed(Signal.METRICS)
    chunks = split(Signal.METRICS, batch, 3)
    histograms = [m for c, _ in chunks for rm in c.resource_metrics for sm in rm.scope_metrics  # type: ignore[union-attr]
                  for m in sm.metrics if m.name == "latency"]
    assert len(histograms) >= 2
    assert all(h.histogram.aggregation_temporality == 1 for h in histograms)
    assert sum(len(h.histogram.data_points) for h in histograms) == 6
    sums = [m for c, _ in chunks for rm in c.resource_metrics for sm in rm.scope_metrics  # type: ignore[union-attr]
            for m in sm.metrics if m.name == "first"]
    assert all(s.sum.is_monotonic and s.sum.aggregation_temporality == 2 and s.unit == "1" for s in sums)


def test_empty_resources_travel_with_a_chunk() -> None:
    batch = mixed(Signal.TRACES)
    chunks = split(Signal.TRACES, batch, 13)
    services = [kv.value.string_value for c, _ in chunks for rs in c.resource_spans  # type: ignore[union-attr]
                for kv in rs.resource.attributes if kv.key == "service.name"]
    assert "empty" in services


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split(Signal.TRACES, mixed(Signal.TRACES), 0)
