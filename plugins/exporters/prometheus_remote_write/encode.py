"""Translated points → remote-write requests that Prometheus accepts in any interleaving (docs/protocols.md §4.3).

Every sample carries its series' complete label set, ``__name__`` included, sorted by name, with no empty value.
Samples are grouped per series and sorted by time. A series is sent at most once per batch, in one shard chosen by
its labels, and the encoder remembers the last timestamp sent for each series: a sample that is not newer is
dropped here (and counted) instead of making Prometheus reject the whole request as out of order.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import cramjam

from gateway.prometheus import Exemplar, Labels, MetricType, Point
from gateway.protos.prometheus import remote_pb2, types_pb2

__all__ = ["Encoder", "Shard"]

_METADATA_TYPES = {
    MetricType.COUNTER: types_pb2.MetricMetadata.COUNTER, MetricType.GAUGE: types_pb2.MetricMetadata.GAUGE,
    MetricType.HISTOGRAM: types_pb2.MetricMetadata.HISTOGRAM, MetricType.SUMMARY: types_pb2.MetricMetadata.SUMMARY,
    MetricType.INFO: types_pb2.MetricMetadata.INFO, MetricType.UNKNOWN: types_pb2.MetricMetadata.UNKNOWN,
}


@dataclass
class Shard:
    """The requests of one shard, in the order they must be sent (snappy-compressed bodies)."""

    bodies: list[bytes]
    samples: int


class Encoder:
    def __init__(self, *, shards: int, max_request_bytes: int, send_metadata: bool = False,
                 max_tracked_series: int = 500_000) -> None:
        self.shards = shards
        self.max_request_bytes = max_request_bytes
        self.send_metadata = send_metadata
        self.max_tracked_series = max_tracked_series
        #: Last timestamp sent per series (labels with __name__).
        self._last_ms: dict[Labels, int] = {}
        #: Samples dropped because their series already had a sample at that time or later.
        self.dropped_out_of_order = 0
        #: The points those samples came from (a histogram point is several samples): what the gateway's drop
        #: accounting counts, in the data points the pipeline counts everywhere else.
        self.dropped_points_out_of_order = 0

    def encode(self, points: Iterable[Point]) -> list[Shard]:
        """The requests for these points, one ``Shard`` per non-empty shard; each shard's requests in order."""
        series: dict[Labels, list[tuple[int, float, Exemplar | None, int]]] = {}
        names: dict[Labels, str] = {}
        families: dict[str, Point] = {}
        dropped: set[int] = set()  # the numbers of the points with a sample dropped
        for number, point in enumerate(points):
            families.setdefault(point.name, point)
            for sample in point.samples():
                labels = (("__name__", sample.name), *point.labels)
                if sample.extra is not None:
                    labels += (sample.extra,)
                key = tuple(sorted(labels))
                entries = series.get(key)
                if entries is None:
                    entries = series[key] = []
                    names[key] = sample.name
                entries.append((point.timestamp_ms, sample.value, sample.exemplar, number))
        pending: list[list[tuple[str, types_pb2.TimeSeries]]] = [[] for _ in range(self.shards)]
        for key, samples in series.items():
            timeseries = self._timeseries(key, samples, dropped)
            if timeseries is not None:
                shard = zlib.crc32("\xff".join(f"{n}\xfe{v}" for n, v in key).encode()) % self.shards
                pending[shard].append((names[key], timeseries))
        self.dropped_points_out_of_order += len(dropped)
        return [self._requests(group, families) for group in pending if group]

    def _timeseries(self, key: Labels, samples: list[tuple[int, float, Exemplar | None, int]],
                    dropped: set[int]) -> types_pb2.TimeSeries | None:
        samples.sort(key=lambda s: s[0])
        previous = self._last_ms.get(key)
        timeseries = types_pb2.TimeSeries()
        for ms, value, exemplar, number in samples:
            if previous is not None and ms <= previous:
                self.dropped_out_of_order += 1
                dropped.add(number)
                continue
            previous = ms
            timeseries.samples.add(value=value, timestamp=ms)
            if exemplar is not None:
                out = timeseries.exemplars.add(value=exemplar.value, timestamp=exemplar.timestamp_ms or ms)
                for name, text in sorted(exemplar.labels.items()):
                    out.labels.add(name=name, value=text)
        if previous is None or not timeseries.samples:
            return None
        for name, text in key:
            timeseries.labels.add(name=name, value=text)
        self._remember(key, previous)
        return timeseries

    def _remember(self, key: Labels, ms: int) -> None:
        last = self._last_ms
        last.pop(key, None)  # re-inserted last: the dict's order is least recently sent first
        last[key] = ms
        if len(last) > self.max_tracked_series:
            del last[next(iter(last))]

    def _requests(self, group: list[tuple[str, types_pb2.TimeSeries]], families: dict[str, Point]) -> Shard:
        bodies: list[bytes] = []
        request = remote_pb2.WriteRequest()
        size = 0
        samples = 0
        names: set[str] = set()
        for name, timeseries in group:
            timeseries_size = timeseries.ByteSize() + 5
            if request.timeseries and size + timeseries_size > self.max_request_bytes:
                bodies.append(self._finish(request, names, families))
                request, size, names = remote_pb2.WriteRequest(), 0, set()
            request.timeseries.append(timeseries)
            size += timeseries_size
            samples += len(timeseries.samples)
            names.add(name)
        bodies.append(self._finish(request, names, families))
        return Shard(bodies, samples)

    def _finish(self, request: remote_pb2.WriteRequest, names: set[str], families: dict[str, Point]) -> bytes:
        if self.send_metadata:
            for family in sorted({f for f in (self._family_of(n, families) for n in names) if f is not None}):
                point = families[family]
                request.metadata.add(type=_METADATA_TYPES[point.type], metric_family_name=family,
                                     help=point.help, unit=point.unit)
        return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))

    @staticmethod
    def _family_of(sample_name: str, families: dict[str, Point]) -> str | None:
        if sample_name in families:
            return sample_name
        for suffix in ("_bucket", "_count", "_sum"):
            if sample_name.endswith(suffix) and sample_name[: -len(suffix)] in families:
                return sample_name[: -len(suffix)]
        return None
