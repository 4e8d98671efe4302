"""The serialized bytes a batch was parsed from, handed along with it so byte scanners need not re-serialize.

Contract: while ``wire_bytes(batch)`` returns ``data``, ``data`` is exactly what ``batch`` was parsed from and
nothing has changed ``batch`` since. Every string of the batch therefore appears verbatim in ``data``; ``data``
may hold more than the batch (unknown fields, an earlier copy of a singular field that a later one replaced),
so a pre-filter on it may see false positives but never misses. When there are no bytes (``None``), scan a
serialization of your own.

- Who attaches: the otlp receiver, around its hand-over to the pipelines (``Route.deliver``), with the gRPC
  request bytes or the (decompressed) HTTP protobuf body; never for JSON, which has no such bytes.
- Who forgets: the graph puts a ``ForgetWireBytes`` after every processor whose factory has
  ``mutates_data=True``, so whatever it hands on has no bytes. Fan-outs give mutating consumers copies, which
  are new objects and so have no bytes either. Everything else passes batches on unchanged or builds new ones.
- Who reads: processors that scan serialized bytes (redaction today; tail_sampling could later), at the start
  of their ``consume_*``, before they change anything.
- Unchanged: a mutating component that changed nothing in a batch calls ``unchanged(batch)`` before handing it
  on; the ``ForgetWireBytes`` right after it then keeps the bytes (transform and filter, when no statement ran and
  nothing was dropped), so a byte scanner further on need not serialize the batch again.
- Lifetime: the receiver removes the entry when its hand-over returns, so a batch buffered for later (batch
  processor, tail_sampling) has no bytes by the time it is sent on. Entries hold their batch, so an id in the
  registry cannot be taken by another object while the entry exists; lookups still check identity.

Nesting: attaching a batch that already has bytes keeps the first bytes, and the inner exit leaves them in place.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from gateway.component import Batch, Consumer

__all__ = ["ForgetWireBytes", "attached", "forget", "unchanged", "wire_bytes"]

#: id(batch) → (batch, data).
_registry: dict[int, tuple[Batch, bytes]] = {}
#: id(batch) → batch, for batches a mutating component handed on unchanged (see ``unchanged``).
_unchanged: dict[int, Batch] = {}


class attached:  # lower case: used as ``with attached(batch, data):``, like a contextmanager function
    """While inside, ``wire_bytes(batch)`` returns ``data`` (unless a mutating component forgets it first)."""

    __slots__ = ("_batch", "_data", "_entry")

    def __init__(self, batch: Batch, data: bytes) -> None:
        self._batch = batch
        self._data = data
        self._entry: tuple[Batch, bytes] | None = None

    def __enter__(self) -> None:
        key = id(self._batch)
        current = _registry.get(key)
        if current is not None and current[0] is self._batch:
            return  # nested: the outer attachment stays, and so do its bytes
        self._entry = (self._batch, self._data)
        _registry[key] = self._entry

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            key = id(entry[0])
            if _registry.get(key) is entry:  # not forgotten (or replaced) meanwhile
                del _registry[key]
            if _unchanged.get(key) is entry[0]:
                del _unchanged[key]


def wire_bytes(batch: Batch) -> bytes | None:
    """The bytes ``batch`` was parsed from, or None when there are none or they may no longer describe it."""
    entry = _registry.get(id(batch))
    if entry is None or entry[0] is not batch:
        return None
    return entry[1]


def forget(batch: Batch) -> None:
    """Drop ``batch``'s bytes: call before handing on a batch that was, or may have been, changed."""
    entry = _registry.get(id(batch))
    if entry is not None and entry[0] is batch:
        del _registry[id(batch)]
    if _unchanged.get(id(batch)) is batch:
        del _unchanged[id(batch)]


def unchanged(batch: Batch) -> None:
    """Called by a mutating component that changed nothing in ``batch``: the next ``ForgetWireBytes`` keeps its bytes.

    Only batches that have bytes are remembered, and only until the receiver's hand-over returns.
    """
    if wire_bytes(batch) is not None:
        _unchanged[id(batch)] = batch


def _forget_unless_unchanged(batch: Batch) -> None:
    if _unchanged.pop(id(batch), None) is not batch:
        forget(batch)


class ForgetWireBytes:
    """Next consumer of a mutating component: forgets the batch's bytes, then hands it to ``next``."""

    __slots__ = ("next",)

    def __init__(self, next_consumer: Consumer) -> None:
        self.next: Any = next_consumer  # has the method of the one signal it is created for

    async def consume_traces(self, batch: Any) -> None:
        _forget_unless_unchanged(batch)
        await self.next.consume_traces(batch)

    async def consume_metrics(self, batch: Any) -> None:
        _forget_unless_unchanged(batch)
        await self.next.consume_metrics(batch)

    async def consume_logs(self, batch: Any) -> None:
        _forget_unless_unchanged(batch)
        await self.next.consume_logs(batch)
