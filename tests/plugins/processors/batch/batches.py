"""Multi-envelope batches and a flattening showing every item with its envelope headers, for exact checks."""

from __future__ import annotations

from typing import Any

from gateway.component import Batch, Signal
from gateway.testing import make_logs, make_metrics, make_traces


def mixed(signal: Signal) -> Batch:
    """Several resources, several scopes per resource, an empty resource; metrics of several types."""
    if signal is Signal.TRACES:
        batch: Any = make_traces(4, service="a")
        batch.MergeFrom(make_traces(9, service="b"))
        extra = batch.resource_spans[1].scope_spans.add()
        extra.scope.name = "second-scope"
        extra.schema_url = "https://example.com/schema"
        extra.spans.extend(make_traces(6).resource_spans[0].scope_spans[0].spans)
        batch.MergeFrom(make_traces(0, service="empty"))
        batch.MergeFrom(make_traces(7, service="c"))
        return batch  # 26 spans
    if signal is Signal.LOGS:
        batch = make_logs(5, service="a")
        batch.MergeFrom(make_logs(12, service="b", body={"k": [1, 2]}))
        extra = batch.resource_logs[0].scope_logs.add()
        extra.scope.name = "second-scope"
        extra.log_records.extend(make_logs(3, body="x").resource_logs[0].scope_logs[0].log_records)
        batch.MergeFrom(make_logs(1, service="c"))
        return batch  # 21 records
    batch = make_metrics(5, service="a", name="first")
    scope = batch.resource_metrics[0].scope_metrics[0]
    gauge = scope.metrics.add()
    gauge.name, gauge.unit, gauge.description = "temperature", "Cel", "a gauge"
    for i in range(8):
        gauge.gauge.data_points.add(as_double=20.5 + i, time_unix_nano=i)
    histogram = scope.metrics.add()
    histogram.name = "latency"
    histogram.histogram.aggregation_temporality = 1
    for i in range(6):
        histogram.histogram.data_points.add(count=3, sum=1.5 * i, bucket_counts=[1, 2, 0],
                                            explicit_bounds=[1, 5])
    scope.metrics.add(name="no-data")
    batch.MergeFrom(make_metrics(11, service="b", name="second"))
    return batch  # 30 points


def _header(message: Any, child: str) -> bytes:
    copy = type(message)()
    copy.CopyFrom(message)
    copy.ClearField(child)
    return copy.SerializeToString(deterministic=True)


def flatten(signal: Signal, batches: list[Batch]) -> list[tuple[bytes, ...]]:
    """One tuple per item: the headers of every envelope around it, then the item itself."""
    out: list[tuple[bytes, ...]] = []
    for batch in batches:
        if signal is Signal.TRACES:
            for rs in batch.resource_spans:  # type: ignore[union-attr]
                for ss in rs.scope_spans:
                    out.extend((_header(rs, "scope_spans"), _header(ss, "spans"), s.SerializeToString())
                               for s in ss.spans)
        elif signal is Signal.LOGS:
            for rl in batch.resource_logs:  # type: ignore[union-attr]
                for sl in rl.scope_logs:
                    out.extend((_header(rl, "scope_logs"), _header(sl, "log_records"), r.SerializeToString())
                               for r in sl.log_records)
        else:
            for rm in batch.resource_metrics:  # type: ignore[union-attr]
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        data = m.WhichOneof("data")
                        if data is None:
                            continue
                        body = getattr(m, data)
                        header = _header(m, data) + _header(body, "data_points")
                        out.extend((_header(rm, "scope_metrics"), _header(sm, "metrics"), header,
                                    p.SerializeToString()) for p in body.data_points)
    return out


def span_ids(batches: list[Any]) -> list[bytes]:
    return [s.span_id for b in batches for rs in b.resource_spans for ss in rs.scope_spans for s in ss.spans]
