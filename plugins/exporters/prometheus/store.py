"""The latest point of every series, and its exposition as prometheus-client metric families.

A cumulative point replaces the one it follows (an older point is ignored); a NO_RECORDED_VALUE point removes
its series. Series not updated for ``metric_expiration`` are dropped by ``expire``. New series beyond
``max_series`` are refused and counted, so a cardinality explosion upstream cannot exhaust memory here.

The series dict is kept in the order of last update (an updated series moves to the end), so the expired series
are always at its front: ``expire`` stops at the first live one, and costs what it removes, not what is stored.

An update copies the new point's values into the stored point rather than storing the new one: the new point then
dies at once by reference counting, and a flush of a million series leaves no million new objects behind for the
cycle collector to visit (a full collection over them holds the event loop for seconds). Points are read and
written on the event loop only, so a page rendered in slices sees each point whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar as ClientExemplar

from gateway.prometheus import Labels, MetricType, Point

__all__ = ["Families", "SeriesStore", "group_by_name"]

_CLIENT_TYPES = {MetricType.COUNTER: "counter", MetricType.GAUGE: "gauge", MetricType.HISTOGRAM: "histogram",
                 MetricType.SUMMARY: "summary", MetricType.INFO: "info", MetricType.UNKNOWN: "unknown"}


class SeriesStore(Collector):
    def __init__(self, *, expiration: float, max_series: int = 0, send_timestamps: bool = False) -> None:
        self.expiration = expiration
        self.max_series = max_series
        self.send_timestamps = send_timestamps
        self._series: dict[tuple[str, Labels], Point] = {}
        #: Family name → type of the first series seen; a later metric of another type under the name is refused.
        self._types: dict[str, MetricType] = {}
        #: Family name → how many series it has, so the last one leaving forgets the name's type.
        self._names: dict[str, int] = {}
        self.refused_over_limit = 0
        self.refused_type_conflict = 0

    def __len__(self) -> int:
        return len(self._series)

    def update(self, points: list[Point]) -> int:
        """Store the points; returns how many were accepted."""
        now = time.monotonic()
        series = self._series
        accepted = 0
        for point in points:
            key = point.key
            if point.stale:
                if series.pop(key, None) is not None:
                    self._forget(point.name)
                continue
            known = self._types.get(point.name)
            if known is not None and known is not point.type:
                self.refused_type_conflict += 1
                continue
            old = series.get(key)
            if old is None:
                if self.max_series and len(series) >= self.max_series:
                    self.refused_over_limit += 1
                    continue
                self._types[point.name] = point.type
                self._names[point.name] = self._names.get(point.name, 0) + 1
            elif point.time_ns < old.time_ns:
                continue  # an older point of the series arrived late
            else:
                del series[key]  # re-inserted below, at the end: the dict stays ordered by last update
                _assign(old, point)
                point = old
            point.updated = now
            series[key] = point
            accepted += 1
        return accepted

    def _forget(self, name: str) -> None:
        left = self._names[name] - 1
        if left:
            self._names[name] = left
        else:
            del self._names[name]
            self._types.pop(name, None)

    def expire(self, now: float | None = None, limit: int = 0) -> int:
        """Drop series not updated for ``expiration`` seconds, at most ``limit`` of them (0: all); returns how
        many were dropped. A caller on the event loop passes a limit and calls again while it returns ``limit``."""
        cutoff = (time.monotonic() if now is None else now) - self.expiration
        stale: list[tuple[str, Labels]] = []
        for key, point in self._series.items():
            if point.updated >= cutoff or (limit and len(stale) >= limit):
                break  # ordered by last update: every later series is younger
            stale.append(key)
        for key in stale:
            del self._series[key]
            self._forget(key[0])
        return len(stale)

    def snapshot(self) -> list[Point]:
        """The current points, taken at once (a C-level copy of the dict's values): the series a page rendered
        in slices shows, while updates go on between the slices (a point's values may then be newer ones)."""
        return list(self._series.values())

    def collect(self) -> Iterator[Metric]:
        """One family per name, its samples grouped together (the exposition formats require it)."""
        self.expire()
        yield from self.families(self.snapshot())

    def families(self, points: list[Point]) -> Iterator[Metric]:
        """The metric families of ``points``, in the order of each name's first point."""
        for members in group_by_name(points).values():
            yield self.family(members)

    def family(self, members: Sequence[Point]) -> Metric:
        """One family: its header from the first of ``members`` (all of one name), a sample per their samples."""
        family = self._family(members[0])
        for point in members:
            labels = dict(point.labels)
            timestamp = point.time_ns / 1e9 if self.send_timestamps and point.time_ns else None
            for sample in point.samples():
                sample_labels = labels if sample.extra is None else {**labels, sample.extra[0]: sample.extra[1]}
                exemplar = None
                if sample.exemplar is not None:
                    e = sample.exemplar
                    exemplar = ClientExemplar(e.labels, e.value,
                                              e.timestamp_ms / 1000 if e.timestamp_ms is not None else None)
                family.add_sample(sample.name, sample_labels, sample.value, timestamp, exemplar)
        return family

    def exposition(self, encoder: Callable[[Collector], bytes], points: list[Point],
                   slice_points: int = 1000) -> Iterator[bytes]:
        """The page ``encoder`` makes of ``points``, in pieces of at most ``slice_points`` points, byte for byte the
        same as one call of the encoder over :meth:`families`. A piece may be empty: the caller can let the event
        loop run after each piece, so a page of a million series never holds it for long.

        Each slice of a family is encoded as a family of its own, and the header lines the encoder writes for it
        again are cut off: they are exactly what the encoder writes for the family without samples. The
        encoder's closing text (OpenMetrics' ``# EOF``, the text format's nothing) comes once, at the end.
        """
        tail = encoder(Families([]))
        groups: dict[str, list[Point]] = {}
        for start in range(0, len(points), 50 * slice_points):
            _group(points[start:start + 50 * slice_points], groups)
            yield b""
        for members in groups.values():
            empty = encoder(Families([self._family(members[0])]))
            head = len(empty) - len(tail)
            for start in range(0, len(members), slice_points):
                page = encoder(Families([self.family(members[start:start + slice_points])]))
                yield page[0 if start == 0 else head:len(page) - len(tail)]
        yield tail

    @staticmethod
    def _family(point: Point) -> Metric:
        """The family of ``point``'s name, without samples."""
        name = point.name
        if point.type is MetricType.COUNTER:
            name = name[: -len("_total")]
        elif point.type is MetricType.INFO:
            name = name[: -len("_info")]
        unit = point.unit if point.unit and name.endswith("_" + point.unit) else ""
        return Metric(name, point.help or name, _CLIENT_TYPES[point.type], unit)


class Families:
    """What the prometheus-client encoders take: an object whose ``collect`` gives the metric families."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def group_by_name(points: list[Point]) -> dict[str, list[Point]]:
    """``points`` by name, names in the order of their first point, points in their order.

    Grouped in a Python loop rather than sorted: a C-level sort of a million keys holds the event loop for as
    long as it runs, and the store's order (last update) is kept within a family."""
    return _group(points, {})


def _group(points: Sequence[Point], groups: dict[str, list[Point]]) -> dict[str, list[Point]]:
    for point in points:
        members = groups.get(point.name)
        if members is None:
            groups[point.name] = [point]
        else:
            members.append(point)
    return groups


#: What an update changes in a stored point: every field but the series' identity (name, type, labels and the key
#: made of them) and the store's own ``updated``.
_VALUE_FIELDS = tuple(name for name in Point.__dataclass_fields__
                      if name not in ("name", "type", "labels", "key", "updated"))


def _assign(stored: Point, new: Point) -> None:
    """The values of ``new`` into ``stored``: same name, labels and type (the store's key and type check)."""
    for name in _VALUE_FIELDS:
        setattr(stored, name, getattr(new, name))
