"""Expiry of the exporter's series store and of the delta → cumulative streams: both are kept in the order of last
update, so expiry removes exactly the series not updated in time, at most ``limit`` per call, and a name whose last
series left may come back with another type. Updates in place, and the page rendered in slices."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from gateway.prometheus import CumulativeState, Exemplar, MetricType, Point
from plugins.exporters.prometheus import store as store_module
from plugins.exporters.prometheus.store import Families, SeriesStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(store_module.time, "monotonic", fake)
    return fake


def gauge(name: str, user: int, time_ns: int = 1, kind: MetricType = MetricType.GAUGE) -> Point:
    return Point(name, kind, (("user", str(user)),), 0, value=user, time_ns=time_ns)


def test_a_series_updated_again_outlives_the_ones_stored_with_it(clock: Clock) -> None:
    store = SeriesStore(expiration=10)
    store.update([gauge("depth", i) for i in range(5)])
    clock.now += 6
    store.update([gauge("depth", 0, time_ns=2), gauge("depth", 3, time_ns=2)])  # the first and a middle one
    clock.now += 6
    assert store.expire() == 3
    assert sorted(p.labels for p in store.snapshot()) == [(("user", "0"),), (("user", "3"),)]
    clock.now += 6
    assert store.expire() == 2
    assert len(store) == 0


def test_expiry_removes_at_most_limit_series_per_call(clock: Clock) -> None:
    store = SeriesStore(expiration=10)
    store.update([gauge("depth", i) for i in range(25)])
    clock.now += 11
    store.update([gauge("depth", 100)])
    assert [store.expire(limit=10), store.expire(limit=10), store.expire(limit=10)] == [10, 10, 5]
    assert [p.labels for p in store.snapshot()] == [(("user", "100"),)]


def test_a_late_point_neither_replaces_nor_refreshes_its_series(clock: Clock) -> None:
    store = SeriesStore(expiration=10)
    store.update([gauge("depth", 1, time_ns=5), gauge("depth", 2, time_ns=5)])
    clock.now += 6
    assert store.update([gauge("depth", 1, time_ns=4)]) == 0
    clock.now += 6
    assert store.expire() == 2


def test_a_name_whose_series_all_left_takes_another_type(clock: Clock) -> None:
    store = SeriesStore(expiration=10)
    store.update([gauge("jobs", 1), gauge("jobs", 2)])
    assert store.update([gauge("jobs", 3, kind=MetricType.UNKNOWN)]) == 0
    assert store.refused_type_conflict == 1
    clock.now += 11
    store.update([gauge("depth", 1)])
    assert store.expire() == 2
    assert store.update([gauge("jobs", 3, kind=MetricType.UNKNOWN)]) == 1


def test_a_stale_marker_removes_its_series_and_frees_the_name(clock: Clock) -> None:
    store = SeriesStore(expiration=10)
    store.update([gauge("jobs", 1)])
    ended = gauge("jobs", 1, time_ns=2)
    ended.stale = True
    store.update([ended])
    assert len(store) == 0
    assert store.update([gauge("jobs", 1, kind=MetricType.UNKNOWN)]) == 1


def test_delta_streams_expire_by_last_update_and_in_slices(clock: Clock) -> None:
    state = CumulativeState(expiration=10)
    for key in range(5):
        state.add_sum(key, 0, 100, 1.0)
    clock.now += 6
    assert state.add_sum(0, 100, 200, 2.0) == (0, 3.0)  # the oldest stream, updated: now the youngest
    clock.now += 6
    assert state.expire(limit=3) == 3
    assert state.expire(limit=3) == 1
    assert len(state) == 1
    assert state.add_sum(0, 200, 300, 1.0) == (0, 4.0)


def test_an_update_keeps_the_stored_point_and_takes_every_value_of_the_new_one(clock: Clock) -> None:
    store = SeriesStore(expiration=10)
    store.update([gauge("depth", 1)])
    [stored] = store.snapshot()
    newer = Point("depth", MetricType.GAUGE, (("user", "1"),), 7, help="queue depth", unit="items", value=9.5,
                  bounds=(1.0,), bucket_counts=(1.0, 2.0), count=3.0, sum=4.0, quantiles=((0.5, 1.0),),
                  exemplars=(Exemplar(1.0, 5, {"trace_id": "ab"}),), start_ns=3, time_ns=8)
    clock.now += 1
    assert store.update([newer]) == 1
    [kept] = store.snapshot()
    assert kept is stored  # the new point dies young; no new object stays behind for the cycle collector
    for name in set(Point.__dataclass_fields__) - {"updated"}:  # every field, also one added later
        assert getattr(kept, name) == getattr(newer, name), name
    assert kept.updated == clock.now


def points_of_every_kind() -> list[Point]:
    exemplar = Exemplar(0.7, 1_700_000_000_000, {"trace_id": "0af7651916cd43dd8448eb211c80319c"})
    points = [Point("requests_total", MetricType.COUNTER, (("code", str(c)), ("job", "api")), 0, help="Requests.",
                    value=c * 1.5, exemplars=(exemplar,), time_ns=1_700_000_000_000_000_000) for c in range(5)]
    points += [Point("latency_seconds", MetricType.HISTOGRAM, (("path", f"/p{i}"),), 0, help="Latency.",
                     unit="seconds", bounds=(0.5, 1.0), bucket_counts=(1.0, 2.0, 3.0), count=6.0, sum=4.5,
                     exemplars=(exemplar,)) for i in range(4)]
    points += [Point("depth", MetricType.GAUGE, (("q", f'a"b\\{i}'),), 0, help="Depth\nof queues.", value=i)
               for i in range(3)]
    points.insert(3, Point("requests_total", MetricType.COUNTER, (("code", "late"),), 0, help="Requests.", value=1))
    points.append(Point("target_info", MetricType.INFO, (("job", "api"),), 0, help="Target metadata", value=1))
    points.append(Point("rpc", MetricType.SUMMARY, (), 0, quantiles=((0.5, 1.0), (0.9, 2.0)), count=2.0, sum=3.0))
    return points


@pytest.mark.parametrize("encoder", [generate_latest, generate_openmetrics], ids=["text", "openmetrics"])
@pytest.mark.parametrize("slice_points", [1, 2, 3, 1000])
def test_a_page_rendered_in_slices_is_byte_for_byte_the_page_rendered_at_once(encoder: Any,
                                                                              slice_points: int) -> None:
    store = SeriesStore(expiration=10, send_timestamps=True)
    points = points_of_every_kind()
    store.update(points)
    snapshot = store.snapshot()
    whole = encoder(Families(list(store.families(snapshot))))
    pieces = list(store.exposition(encoder, snapshot, slice_points))
    assert b"".join(pieces) == whole
    assert whole.count(b"# TYPE requests") == 1 and whole.count(b'requests_total{code="late"') == 1
    if slice_points == 1:
        assert len(pieces) > len(points)  # a piece per point at least: the event loop may run after each
