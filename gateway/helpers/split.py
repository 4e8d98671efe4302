"""Split one OTLP request into requests of at most ``limit`` items, keeping order and every envelope header.

Whole envelopes (resource, scope, metric) that fit are copied with one C-level ``append``; only the envelope
that straddles a chunk boundary is opened up, its header copied and its items sliced. Metrics are split at
data point level, so one metric with many points can end up in several chunks, each carrying the metric's
header.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from gateway.component import Batch, Signal

__all__ = ["envelope_items", "split"]

#: (resource list field, scope list field, item list field) of each signal's request.
_LAYOUT = {
    Signal.TRACES: ("resource_spans", "scope_spans", "spans"),
    Signal.METRICS: ("resource_metrics", "scope_metrics", "metrics"),
    Signal.LOGS: ("resource_logs", "scope_logs", "log_records"),
}


def _is_repeated(field: Any) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5; older runtimes only have ``label``
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def _copy_header(source: Message, target: Message, skip: str) -> None:
    """Copy every set field of ``source`` except the ``skip`` list (or oneof member) into ``target``."""
    for field, value in source.ListFields():
        if field.name == skip:
            continue
        if _is_repeated(field):
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


def _metric_points(metric: Any) -> tuple[str | None, Any]:
    data = metric.WhichOneof("data")
    return data, (getattr(metric, data).data_points if data is not None else ())


def envelope_items(signal: Signal, scope: Any) -> int:
    """Items held by one scope envelope (ScopeSpans / ScopeMetrics / ScopeLogs)."""
    if signal is Signal.METRICS:
        return sum(len(_metric_points(m)[1]) for m in scope.metrics)
    return len(getattr(scope, _LAYOUT[signal][2]))


class _Splitter:
    def __init__(self, signal: Signal, limit: int) -> None:
        self.signal = signal
        self.limit = limit
        self.resource_field, self.scope_field, self.item_field = _LAYOUT[signal]
        self.chunks: list[tuple[Batch, int]] = []
        self._open()

    def _open(self) -> None:
        self.chunk = self.signal.request_type()
        self.room = self.limit
        self.chunks.append((self.chunk, 0))
        # (source envelope, its header copy in this chunk). The source is held, not its id(): protobuf
        # wrappers are recreated on access, so a freed wrapper's id could come back for another envelope.
        self._resource: tuple[Any, Any] | None = None
        self._scope: tuple[Any, Any] | None = None

    def _take(self, n: int) -> None:
        self.room -= n
        chunk, items = self.chunks[-1]
        self.chunks[-1] = (chunk, items + n)

    def _ensure_room(self) -> None:
        if self.room == 0:
            self._open()

    def _resource_out(self, resource: Any) -> Any:
        if self._resource is None or self._resource[0] is not resource:
            out = getattr(self.chunk, self.resource_field).add()
            _copy_header(resource, out, self.scope_field)
            self._resource, self._scope = (resource, out), None
        return self._resource[1]

    def _scope_out(self, resource: Any, scope: Any) -> Any:
        if self._scope is None or self._scope[0] is not scope:
            out = getattr(self._resource_out(resource), self.scope_field).add()
            _copy_header(scope, out, self.item_field)
            self._scope = (scope, out)
        return self._scope[1]

    def run(self, batch: Batch) -> list[tuple[Batch, int]]:
        for resource in getattr(batch, self.resource_field):
            scopes = getattr(resource, self.scope_field)
            counts = [envelope_items(self.signal, s) for s in scopes]
            total = sum(counts)
            if total <= self.room:
                getattr(self.chunk, self.resource_field).append(resource)
                self._take(total)
                continue
            for scope, count in zip(scopes, counts, strict=True):
                if count <= self.room:
                    getattr(self._resource_out(resource), self.scope_field).append(scope)
                    self._take(count)
                elif self.signal is Signal.METRICS:
                    self._split_metrics(resource, scope)
                else:
                    self._split_items(resource, scope)
        return self.chunks

    def _split_items(self, resource: Any, scope: Any) -> None:
        items = getattr(scope, self.item_field)
        start = 0
        while start < len(items):
            self._ensure_room()
            end = min(len(items), start + self.room)
            getattr(self._scope_out(resource, scope), self.item_field).extend(items[start:end])
            self._take(end - start)
            start = end

    def _split_metrics(self, resource: Any, scope: Any) -> None:
        for metric in scope.metrics:
            data, points = _metric_points(metric)
            if len(points) <= self.room:
                self._scope_out(resource, scope).metrics.append(metric)
                self._take(len(points))
                continue
            start = 0
            while start < len(points):
                self._ensure_room()
                end = min(len(points), start + self.room)
                out = self._scope_out(resource, scope).metrics.add()
                _copy_header(metric, out, data)  # type: ignore[arg-type]
                out_data = getattr(out, data)  # type: ignore[arg-type]
                _copy_header(getattr(metric, data), out_data, "data_points")  # type: ignore[arg-type]
                out_data.data_points.extend(points[start:end])
                self._take(end - start)
                start = end


def split(signal: Signal, batch: Batch, limit: int) -> list[tuple[Batch, int]]:
    """``batch`` cut into ``(request, item count)`` chunks of ``limit`` items, the last one possibly smaller.

    ``batch`` itself is never modified. Envelopes without items travel with the chunk they fall in.
    """
    if limit <= 0:
        raise ValueError("limit must be > 0")
    return _Splitter(signal, limit).run(batch)
