"""Expiry of the exporter's series store and of the delta → cumulative streams: both are kept in the order of last
update, so expiry removes exactly the series not updated in time, at most ``limit`` per call, and a name whose last
series left may come back with another type."""

from __future__ import annotations

import pytest

from gateway.prometheus import CumulativeState, MetricType, Point
from plugins.exporters.prometheus import store as store_module
from plugins.exporters.prometheus.store import SeriesStore


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
