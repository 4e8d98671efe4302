"""Routing between workers: every trace (and every metric series) is handled by exactly one worker.

Contract:
- ``owner(key) = int.from_bytes(key[-8:]) % count`` for trace ids (their random part), a CRC32 of the resource
  and the metric name for metrics. Every worker computes the same owner for the same key.
- A receiver's batch is split by owner (spans and log records by trace id, metrics by resource and name; a log
  record without a trace id stays where it arrived). The part this worker owns enters its own pipelines; each
  other part travels as serialized OTLP bytes over the owner's unix socket and enters the owner's pipelines at
  the same receiver. A batch that is wholly one worker's is not copied: its own bytes travel, or it stays.
  Traces that came with their received bytes (``gateway.wirebytes``) are split as bytes: runs of spans of one
  trace are sliced out and joined under their envelopes, so the sender neither copies spans nor serializes.
- ``route`` returns only when every part was accepted by its owner's pipelines, and raises the first refusal
  otherwise (a worker that cannot be reached is a retryable refusal). So the sender is answered OK only once
  every owner holds its items, exactly as if one process had taken the whole request.
- Only signals whose pipelines hold a component that needs whole traces or series are routed
  (``STATEFUL_TYPES``); everything else stays in the worker that received it, at no cost.
- The same frames carry what a single-owner connector takes (``workers.owner``) to worker 0: the receiver id is
  then ``connector:<id>``.

Frames on a connection (one request at a time; a sender opens more connections for more concurrency):
request ``!IBH`` (payload length, signal, receiver id length), receiver id, payload; answer ``!BdI`` (outcome,
retry-after seconds or -1, message length), message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from gateway.component import Batch, Signal, count_items
from gateway.errors import OverloadedError, PermanentError, RetryableError
from gateway.helpers.trace_runs import Envelope, assemble, split_request
from gateway.wirebytes import attached, wire_bytes

from .context import WorkerContext

__all__ = ["STATEFUL_TYPES", "Router", "active", "split", "split_trace_bytes"]

log = logging.getLogger("otelgw.workers")

#: Component types whose state must see every item of a trace (or series): their signal is routed. (``kpi``
#: needs more, every item of the gateway: it runs in one worker, ``Factory.single_owner``, see ``workers.owner``.)
STATEFUL_TYPES = frozenset({"tail_sampling", "span_metrics", "alerts"})

_REQUEST = struct.Struct("!IBH")
_ANSWER = struct.Struct("!BdI")
_SIGNALS = list(Signal)
_OK, _RETRYABLE, _PERMANENT, _OVERLOADED = range(4)
#: Idle connections kept per peer.
_POOL = 32

Deliver = Callable[[str, Signal, Batch], Awaitable[None]]
Local = Callable[[Batch], Awaitable[None]]
#: ``counted(direction, signal, items)``: items this worker sent to ("sent") or took from ("received") others.
Counted = Callable[[str, Signal, int], None]

# (resource list, scope list, item list) field names per signal.
_FIELDS = {
    Signal.TRACES: ("resource_spans", "scope_spans", "spans"),
    Signal.LOGS: ("resource_logs", "scope_logs", "log_records"),
    Signal.METRICS: ("resource_metrics", "scope_metrics", "metrics"),
}


def _trace_owner(trace_id: bytes, count: int, here: int) -> int:
    return int.from_bytes(trace_id[-8:]) % count if trace_id else here


def split(signal: Signal, batch: Batch, count: int, here: int) -> dict[int, Batch]:
    """``batch`` by owning worker. One owner: ``{owner: batch}`` itself, uncopied."""
    outer, middle, inner = _FIELDS[signal]
    # First only the owners (one cheap field per item), so a batch of one owner costs no copy.
    plan: list[tuple[Any, list[tuple[Any, list[int]]]]] = []
    owners: set[int] = set()
    for resource in getattr(batch, outer):
        scopes = []
        if signal is Signal.METRICS:
            seed = zlib.crc32(resource.resource.SerializeToString())
            for scope in resource.scope_metrics:
                ids = [zlib.crc32(m.name.encode(), seed) % count for m in scope.metrics]
                owners.update(ids)
                scopes.append((scope, ids))
        else:
            for scope in getattr(resource, middle):
                ids = [_trace_owner(item.trace_id, count, here) for item in getattr(scope, inner)]
                owners.update(ids)
                scopes.append((scope, ids))
        plan.append((resource, scopes))
    if len(owners) <= 1:
        return {owners.pop() if owners else here: batch}
    parts: dict[int, Batch] = {}
    for resource, scopes in plan:
        copies: dict[int, Any] = {}  # owner → this resource's entry in the owner's part
        for scope, ids in scopes:
            items = getattr(scope, inner)
            by_owner: dict[int, list[Any]] = {}
            for item, owner in zip(items, ids, strict=True):
                by_owner.setdefault(owner, []).append(item)
            for owner, chosen in by_owner.items():
                target = copies.get(owner)
                if target is None:
                    part = parts.get(owner)
                    if part is None:
                        part = parts[owner] = type(batch)()
                    target = copies[owner] = getattr(part, outer).add()
                    target.resource.CopyFrom(resource.resource)
                    target.schema_url = resource.schema_url
                entry = getattr(target, middle).add()
                entry.scope.CopyFrom(scope.scope)
                entry.schema_url = scope.schema_url
                getattr(entry, inner).extend(chosen)
    return parts


def split_trace_bytes(data: bytes, count: int, here: int) -> dict[int, tuple[bytes, int]]:
    """The serialized traces request ``data`` by owning worker, as ``(request bytes, spans)``, without parsing it:
    runs of adjacent spans of one trace are sliced out of ``data`` and joined under their resource and scope
    headers (``gateway.helpers.trace_runs``). One owner: ``{owner: (data, spans)}``, the bytes themselves."""
    by_owner: dict[int, list[tuple[Envelope, bytes]]] = {}
    spans: dict[int, int] = {}
    for resource_header, scope_header, runs in split_request(data, None):
        envelope = Envelope(resource_header, scope_header)
        for trace_id, run, run_spans, *_ in runs:
            owner = _trace_owner(trace_id, count, here)
            by_owner.setdefault(owner, []).append((envelope, run))
            spans[owner] = spans.get(owner, 0) + run_spans
    if len(by_owner) <= 1:
        owner = next(iter(by_owner), here)
        return {owner: (data, spans.get(owner, 0))}
    return {owner: (assemble(items), spans[owner]) for owner, items in by_owner.items()}


def _answer_for(exc: BaseException) -> tuple[int, float, str]:
    if isinstance(exc, OverloadedError):
        return _OVERLOADED, exc.retry_after if exc.retry_after is not None else -1.0, str(exc)
    if isinstance(exc, RetryableError):
        return _RETRYABLE, exc.retry_after if exc.retry_after is not None else -1.0, str(exc)
    if isinstance(exc, PermanentError):
        return _PERMANENT, -1.0, str(exc)
    return _RETRYABLE, -1.0, f"the owning worker failed unexpectedly: {type(exc).__name__}"


def _raise_answer(outcome: int, retry_after: float, message: str) -> None:
    delay = retry_after if retry_after >= 0 else None
    if outcome == _OVERLOADED:
        raise OverloadedError(message, retry_after=delay)
    if outcome == _PERMANENT:
        raise PermanentError(message)
    raise RetryableError(message, retry_after=delay)


class Router:
    """This worker's end of the routing: splits what its receivers take and serves what the others route here.

    ``deliver(receiver, signal, batch)`` hands a routed-in batch to this worker's inlet of that receiver (without
    routing it again); ``routed(signal)`` says whether the running configuration routes a signal."""

    def __init__(self, context: WorkerContext, deliver: Deliver, routed: Callable[[Signal], bool],
                 counted: Counted) -> None:
        self.context = context
        self._deliver = deliver
        self.routed = routed
        self._counted = counted
        self._server: asyncio.AbstractServer | None = None
        self._idle: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
        self._accepting = False
        self._inbound: set[asyncio.Task[Any]] = set()
        self._in_flight = 0
        self._drained = asyncio.Event()
        self._drained.set()

    # ------------------------------------------------------------------ sending side

    async def route(self, receiver: str, signal: Signal, batch: Batch, local: Local) -> None:
        """Hand ``batch`` to its owners; returns when every part is accepted, raises the first refusal."""
        context, here = self.context, self.context.index
        data = wire_bytes(batch) if signal is Signal.TRACES else None
        sends: list[Awaitable[None]] = []
        if data is not None:  # the received bytes: sliced by trace, never parsed nor serialized again here
            pieces = split_trace_bytes(data, context.count, here)
            if len(pieces) == 1 and here in pieces:
                await local(batch)
                return
            for owner, (piece, spans) in pieces.items():
                sends.append(self._send(owner, receiver, signal, piece, spans) if owner != here
                             else self._local_piece(local, signal, piece))
        else:
            parts = split(signal, batch, context.count, here)
            if len(parts) == 1 and here in parts:
                await local(batch)
                return
            sends = [self._send(owner, receiver, signal, part.SerializeToString(), count_items(signal, part))
                     if owner != here else local(part) for owner, part in parts.items()]
        if len(sends) == 1:
            await sends[0]
            return
        results = await asyncio.gather(*sends, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def hand_to(self, owner: int, target: str, signal: Signal, payload: bytes, items: int) -> None:
        """Hand serialized ``payload`` to ``target`` in worker ``owner`` (a single-owner connector, see
        ``workers.owner``); returns once it was accepted there, raises its refusal otherwise."""
        await self._send(owner, target, signal, payload, items)

    @staticmethod
    async def _local_piece(local: Local, signal: Signal, piece: bytes) -> None:
        part = signal.request_type.FromString(piece)
        with attached(part, piece):  # exactly its bytes: byte scanners further on may use them
            await local(part)

    async def _send(self, owner: int, receiver: str, signal: Signal, payload: bytes, items: int) -> None:
        name = receiver.encode()
        frame = _REQUEST.pack(len(payload), _SIGNALS.index(signal), len(name)) + name
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await self._connection(owner)
            writer.write(frame)
            writer.write(payload)
            await writer.drain()
            outcome, retry_after, size = _ANSWER.unpack(await reader.readexactly(_ANSWER.size))
            message = (await reader.readexactly(size)).decode(errors="replace") if size else ""
        except BaseException as exc:
            if writer is not None:
                writer.close()  # left mid-request (cancelled, or broken): never reused
            if isinstance(exc, OSError | asyncio.IncompleteReadError):
                raise RetryableError(f"worker {owner}, which owns part of this request, cannot be reached "
                                     f"({type(exc).__name__}); it may be restarting", retry_after=1.0) from None
            raise
        idle = self._idle.setdefault(owner, [])
        if len(idle) < _POOL:
            idle.append((reader, writer))
        else:
            writer.close()
        if outcome != _OK:
            _raise_answer(outcome, retry_after, message)
        self._counted("sent", signal, items)

    async def _connection(self, owner: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        idle = self._idle.get(owner)
        while idle:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
        return await asyncio.open_unix_connection(str(self.context.socket_path(owner)))

    # ------------------------------------------------------------------ receiving side

    async def start(self) -> None:
        path = self.context.socket_path(self.context.index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by this worker's previous process
        self._accepting = True
        self._server = await asyncio.start_unix_server(self._serve, str(path))
        path.chmod(0o600)

    async def close_inbound(self) -> None:
        """Refuse (retryably) what other workers route here from now on, and wait for what is in flight: called
        when this worker's receivers have stopped and before its processors stop."""
        self._accepting = False
        if self._server is not None:
            self._server.close()
        await self._drained.wait()

    async def stop(self) -> None:
        await self.close_inbound()
        for task in list(self._inbound):
            task.cancel()
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
        self._idle.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(OSError):
            Path(self.context.socket_path(self.context.index)).unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inbound.add(task)
        try:
            while True:
                try:
                    size, signal_index, name_size = _REQUEST.unpack(await reader.readexactly(_REQUEST.size))
                    receiver = (await reader.readexactly(name_size)).decode()
                    payload = await reader.readexactly(size)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the sender closed its connection
                outcome, retry_after, message = await self._take(receiver, _SIGNALS[signal_index], payload)
                body = message.encode()
                writer.write(_ANSWER.pack(outcome, retry_after, len(body)) + body)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()
            if task is not None:
                self._inbound.discard(task)

    async def _take(self, receiver: str, signal: Signal, payload: bytes) -> tuple[int, float, str]:
        if not self._accepting:
            return _RETRYABLE, 1.0, f"worker {self.context.index} is shutting down"
        self._in_flight += 1
        self._drained.clear()
        try:
            batch = signal.request_type.FromString(payload)
            with attached(batch, payload):  # the payload is exactly this batch: byte scanners may use it
                await self._deliver(receiver, signal, batch)
        except Exception as exc:
            return _answer_for(exc)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._drained.set()
        self._counted("received", signal, count_items(signal, batch))
        return _OK, -1.0, ""


_ACTIVE: Router | None = None


def active() -> Router | None:
    """The router of this worker process; None in a gateway on its own."""
    return _ACTIVE


def activate(router: Router | None) -> None:
    global _ACTIVE
    _ACTIVE = router


def stateful_signals(pipelines: Iterable[tuple[Signal, Iterable[str]]]) -> set[Signal]:
    """The signals whose pipelines name a component of a ``STATEFUL_TYPES`` type (processor or connector)."""
    return {signal for signal, types in pipelines if STATEFUL_TYPES.intersection(types)}
