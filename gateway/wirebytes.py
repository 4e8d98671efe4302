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
  A mutating component that edits the bytes themselves (transform, see gateway/ottl/wire.py) hands on a
  ``WireBatch`` of its result (``hand_on``): those bytes are its change, and ``ForgetWireBytes`` passes them on.
- Who reads: processors that scan serialized bytes (redaction today; tail_sampling could later), at the start
  of their ``consume_*``, before they change anything.
- Unchanged: a mutating component that changed nothing in a batch calls ``unchanged(batch)`` before handing it
  on; the ``ForgetWireBytes`` right after it then keeps the bytes (transform and filter, when no statement ran and
  nothing was dropped), so a byte scanner further on need not serialize the batch again.
- Rewritten: a mutating component that knows the exact bytes of what it changed calls ``rewritten(batch, data)``
  before handing it on, where ``FromString(data)`` equals the batch as it now is; the ``ForgetWireBytes`` right
  after it then puts ``data`` in place of the old bytes (redaction, which splices the items it changed into the
  received bytes). Like ``unchanged``, only for a batch that has bytes, and the same entry is replaced, so the
  receiver's exit removes it as it would have removed the old bytes.
- Lifetime: the receiver removes the entry when its hand-over returns, so a batch buffered for later (batch
  processor, tail_sampling) has no bytes by the time it is sent on. Entries hold their batch, so an id in the
  registry cannot be taken by another object while the entry exists; lookups still check identity.

Nesting: attaching a batch that already has bytes keeps the first bytes, and the inner exit leaves them in place.

Batches of bytes (``WireBatch``): the batch processor and the exporters' sending queues keep what they hold as
the serialized requests it came as. Concatenated serialized ``Export*ServiceRequest`` messages are themselves one
serialized request holding every envelope (field 1 is repeated, and protobuf appends a repeated field wherever
it occurs), so joining is ``b"".join(parts)``: no parse, no serialize. A ``WireBatch`` parses when something
first asks for its message, once. Who takes a ``WireBatch`` says so with a ``consume_wire(batch)`` method (the
fan-outs, the OTLP exporters, a tap, and the components that work on bytes: memory_limiter, redaction for
traces, span_metrics, forward, tail_sampling); everything else is handed a parse by ``hand_on`` (its own, unless
a fan-out knows it only reads), with the bytes attached as above, so a byte scanner further on still need not
serialize, and a mutating component's ``ForgetWireBytes`` takes them away, so its change is what is sent.

The otlp receiver hands requests on as a ``WireBatch`` when it could check them without a parse
(``gateway.check_request``, in C): then nothing parses a request that only flows through components that work
on bytes.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from gateway.component import Batch, Consumer, Signal, consume, count_items

__all__ = ["ForgetWireBytes", "WireBatch", "attached", "forget", "hand_on", "message_of", "rewritten", "unchanged",
           "wire_bytes"]


class _Entry:
    """A batch and its bytes. Mutable, so ``rewritten`` bytes replace the old ones in the entry the receiver's
    ``attached`` owns and removes on exit (identity of the entry says whose it is)."""

    __slots__ = ("batch", "data")

    def __init__(self, batch: Batch, data: bytes) -> None:
        self.batch = batch
        self.data = data


#: id(batch) → its entry.
_registry: dict[int, _Entry] = {}
#: id(batch) → (batch, its new bytes or None when they stay) for batches a mutating component handed on with
#: exact bytes (see ``unchanged`` and ``rewritten``).
_unchanged: dict[int, tuple[Batch, bytes | None]] = {}


class attached:  # lower case: used as ``with attached(batch, data):``, like a contextmanager function
    """While inside, ``wire_bytes(batch)`` returns ``data`` (unless a mutating component forgets it first)."""

    __slots__ = ("_batch", "_data", "_entry")

    def __init__(self, batch: Batch, data: bytes) -> None:
        self._batch = batch
        self._data = data
        self._entry: _Entry | None = None

    def __enter__(self) -> None:
        key = id(self._batch)
        current = _registry.get(key)
        if current is not None and current.batch is self._batch:
            return  # nested: the outer attachment stays, and so do its bytes
        self._entry = _Entry(self._batch, self._data)
        _registry[key] = self._entry

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            key = id(entry.batch)
            if _registry.get(key) is entry:  # not forgotten (or replaced) meanwhile
                del _registry[key]
            kept = _unchanged.get(key)
            if kept is not None and kept[0] is entry.batch:
                del _unchanged[key]


def wire_bytes(batch: Batch) -> bytes | None:
    """The bytes ``batch`` was parsed from, or None when there are none or they may no longer describe it."""
    entry = _registry.get(id(batch))
    if entry is None or entry.batch is not batch:
        return None
    return entry.data


def forget(batch: Batch) -> None:
    """Drop ``batch``'s bytes: call before handing on a batch that was, or may have been, changed."""
    entry = _registry.get(id(batch))
    if entry is not None and entry.batch is batch:
        del _registry[id(batch)]
    kept = _unchanged.get(id(batch))
    if kept is not None and kept[0] is batch:
        del _unchanged[id(batch)]


def unchanged(batch: Batch) -> None:
    """Called by a mutating component that changed nothing in ``batch``: the next ``ForgetWireBytes`` keeps its bytes.

    Only batches that have bytes are remembered, and only until the receiver's hand-over returns.
    """
    if wire_bytes(batch) is not None:
        _unchanged[id(batch)] = (batch, None)


def rewritten(batch: Batch, data: bytes) -> None:
    """Called by a mutating component that changed ``batch`` and knows its exact serialization now: ``data``,
    with ``FromString(data) == batch``. The next ``ForgetWireBytes`` puts ``data`` in place of the old bytes.

    As for ``unchanged``: only a batch that has bytes, and only until the receiver's hand-over returns (the
    entry the receiver removes is the one that takes the new bytes).
    """
    if wire_bytes(batch) is not None:
        _unchanged[id(batch)] = (batch, data)


def _forget_unless_unchanged(batch: Batch) -> None:
    kept = _unchanged.pop(id(batch), None)
    if kept is None or kept[0] is not batch:
        forget(batch)
        return
    if kept[1] is not None:
        entry = _registry.get(id(batch))
        if entry is not None and entry.batch is batch:
            entry.data = kept[1]


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

    async def consume_wire(self, batch: WireBatch) -> None:
        """A component that hands on bytes it made (transform on received bytes): they are what it changed, so
        there is nothing to forget; they go on as they are to consumers that take them."""
        await hand_on(self.next, batch)


class WireBatch:
    """A batch held as serialized requests of one signal: joined without a parse, parsed at most once.

    ``parts`` are serialized requests, ``counts`` their items (spans, data points, log records). Nothing here
    changes after construction: ``data`` is what an exporter sends, and ``message()`` is the same request parsed.
    The message is for reading; a component that changes a batch is given its own parse (``fresh()``), never
    this one, so ``data`` and ``message()`` cannot disagree.
    """

    __slots__ = ("_data", "_message", "counts", "items", "parts", "signal")

    def __init__(self, signal: Signal, parts: list[bytes], counts: list[int], message: Batch | None = None) -> None:
        self.signal = signal
        self.parts = parts
        self.counts = counts
        self.items = sum(counts)
        self._data: bytes | None = parts[0] if len(parts) == 1 else None
        #: The parsed request: given (the message a single part was attached to), or parsed on first use.
        self._message = message

    @classmethod
    def of(cls, signal: Signal, batch: Batch) -> WireBatch | None:
        """``batch``'s bytes (``wire_bytes``) without the message, or None when it has none. The message is not
        kept: a queue holding the result holds the bytes only, and parses them again if it ever needs to."""
        data = wire_bytes(batch)
        if data is None:
            return None
        return cls(signal, [data], [count_items(signal, batch)])

    @classmethod
    def parsed(cls, signal: Signal, data: bytes) -> WireBatch:
        """``data`` (a serialized request, e.g. read back from disk), parsed once now to count its items."""
        message = signal.request_type.FromString(data)
        return cls(signal, [data], [count_items(signal, message)], message)

    @property
    def data(self) -> bytes:
        """The serialized request: the parts joined (once)."""
        if self._data is None:
            self._data = b"".join(self.parts)
            self.parts = [self._data]  # the join is kept; the parts are no longer needed apart
            self.counts = [self.items]
        return self._data

    def ByteSize(self) -> int:  # the protobuf message's name, so sizers treat both alike
        return len(self._data) if self._data is not None else sum(map(len, self.parts))

    def message(self) -> Batch:
        """The request parsed (once), for reading only: see the class docstring."""
        if self._message is None:
            self._message = self.signal.request_type.FromString(self.data)
        return self._message

    def fresh(self) -> Batch:
        """A parse of its own, for a component that may change it."""
        own: Batch = self.signal.request_type.FromString(self.data)
        return own

    @staticmethod
    def join(signal: Signal, batches: list[WireBatch]) -> WireBatch:
        """One batch of every part of ``batches``, in order."""
        if len(batches) == 1:
            return batches[0]
        parts: list[bytes] = []
        counts: list[int] = []
        for batch in batches:
            parts.extend(batch.parts)
            counts.extend(batch.counts)
        return WireBatch(signal, parts, counts)


def message_of(batch: Batch | WireBatch) -> Batch:
    """The message of ``batch``: itself, or a ``WireBatch``'s parse (for reading only)."""
    return batch.message() if isinstance(batch, WireBatch) else batch


async def hand_on(consumer: Any, batch: WireBatch, *, shared: bool = False) -> None:
    """Give ``batch`` to ``consumer``: as it is when it takes wire batches (``consume_wire``), else as a parse
    with the bytes attached while the call lasts (so byte scanners further on can read them). The parse is one
    of its own (``fresh``), since the consumer may change it; ``shared=True`` (a fan-out's read-only
    consumers) gives the batch's own parse, made once for all of them."""
    take = getattr(consumer, "consume_wire", None)
    if take is not None:
        await take(batch)
        return
    message = batch.message() if shared else batch.fresh()
    with attached(message, batch.data):
        await consume(consumer, batch.signal, message)
