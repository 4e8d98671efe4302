"""Joining requests into one batch and cutting a batch to a size: the one place that does it for the exporter
helper's ``sending_queue::batch`` (and any other component that merges requests).

Joining batches of wire bytes (``gateway.wirebytes.WireBatch``) concatenates their bytes; joining messages
appends envelopes with protobuf ``MergeFrom`` (C code; items are never touched in Python). Cutting goes through
``helpers.split``, which copies envelope headers and moves whole items (a batch of bytes is parsed first).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.component import Batch, Signal, count_items
from gateway.helpers.split import split
from gateway.wirebytes import WireBatch, message_of

__all__ = ["SIZERS", "cut", "join", "measure"]

#: What a batch size counts.
SIZERS = ("items", "bytes", "requests")


def measure(signal: Signal, batch: Batch | WireBatch, sizer: str) -> int:
    """The size of ``batch`` in ``sizer`` units: items (spans, data points, log records), bytes, or 1 request."""
    if sizer == "bytes":
        return batch.ByteSize()
    if sizer == "requests":
        return 1
    return count_items(signal, batch)


def join(signal: Signal, batches: Sequence[Batch | WireBatch]) -> Batch | WireBatch:
    """One batch holding every envelope of ``batches``, in order (the batch itself when there is one): their bytes
    joined when every one is a ``WireBatch``, else a message."""
    if len(batches) == 1:
        return batches[0]
    wire = [batch for batch in batches if isinstance(batch, WireBatch)]
    if len(wire) == len(batches):
        return WireBatch.join(signal, wire)
    joined = signal.request_type()
    for batch in batches:
        joined.MergeFrom(message_of(batch))
    return joined


def cut(signal: Signal, batch: Batch | WireBatch, sizer: str, max_size: int) -> list[Batch | WireBatch]:
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
    return [piece for piece, _ in split(signal, message_of(batch), limit)]
