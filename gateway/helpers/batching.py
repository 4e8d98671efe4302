"""Joining requests into one batch and cutting a batch to a size: the one place that does it for the exporter
helper's ``sending_queue::batch`` (and any other component that merges requests).

Joining appends envelopes with protobuf ``MergeFrom`` (C code; items are never touched in Python); cutting goes
through ``helpers.split``, which copies envelope headers and moves whole items.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.component import Batch, Signal, count_items
from gateway.helpers.split import split

__all__ = ["SIZERS", "cut", "join", "measure"]

#: What a batch size counts.
SIZERS = ("items", "bytes", "requests")


def measure(signal: Signal, batch: Batch, sizer: str) -> int:
    """The size of ``batch`` in ``sizer`` units: items (spans, data points, log records), bytes, or 1 request."""
    if sizer == "bytes":
        return batch.ByteSize()
    if sizer == "requests":
        return 1
    return count_items(signal, batch)


def join(signal: Signal, batches: Sequence[Batch]) -> Batch:
    """One batch holding every envelope of ``batches``, in order (the batch itself when there is one)."""
    if len(batches) == 1:
        return batches[0]
    joined = signal.request_type()
    for batch in batches:
        joined.MergeFrom(batch)
    return joined


def cut(signal: Signal, batch: Batch, sizer: str, max_size: int) -> list[Batch]:
    """``batch`` in pieces of at most ``max_size`` (0: no limit). By bytes, pieces are cut by item count in
    proportion, so a piece may pass the limit by the size of one item's share."""
    if not max_size or sizer == "requests":
        return [batch]
    items = count_items(signal, batch)
    limit = max_size
    if sizer == "bytes":
        size = batch.ByteSize()
        if size <= max_size:
            return [batch]
        limit = max(1, items * max_size // size)
    if items <= limit:
        return [batch]
    return [piece for piece, _ in split(signal, batch, limit)]
