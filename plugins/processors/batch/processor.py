"""The batch processor: merges incoming requests and sends them on by size, by timeout, and at shutdown.

**No producer is answered before its items are handed on.** Every producer waits for the outcome of the send
its items joined, and gets that outcome: OK once the next component took the batch (an exporter's persistent
queue has it on disk, or a backend has it), or the error the batch was refused with. That is the Collector's
``wait_for_result`` semantics. A batch processor that answers at once (the Collector's ``batch`` processor)
loses everything it holds on a crash, and turns a refusal downstream into silent loss; this one cannot.

Incoming requests are held as the bytes they were received as (``gateway.wirebytes``): a batch is their
concatenation, a ``WireBatch``, so batching costs neither a parse nor a serialize, and an OTLP exporter sends
those bytes as they are. A request without such bytes (OTLP/JSON, or one a mutating processor changed) is
serialized once when it joins. What needs the message downstream parses the batch once (``hand_on``); a batch
above ``send_batch_max_size`` is parsed and split. ``consume_*`` does its bookkeeping synchronously, so the
event loop itself serialises producers and no lock is held across an ``await``. Sends run in their own tasks
and producers wait behind ``asyncio.shield``: a batch carries other producers' items, so a cancelled caller (a
client that hung up) must not take them down with it.

Timer-driven sends run in the background, one at a time. If one is still in flight when the next timeout
comes, the batch keeps filling instead, until the size trigger sends it. Memory held is bounded by what the
receivers let in: every held item belongs to a request that is still waiting for its answer.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Coroutine
from typing import Any

from gateway import (
    Batch,
    BatchConsumer,
    ComponentSettings,
    ConsumeError,
    Consumer,
    Host,
    RetryableError,
    Signal,
    SkipBatchError,
    WireBatch,
    count_items,
    hand_on,
    message_of,
    split,
    wire_bytes,
)

from .config import Config
from .metrics import batch_metrics

__all__ = ["BatchProcessor"]

_SIZE, _TIMEOUT, _SHUTDOWN = "size", "timeout", "shutdown"


class _Held:
    """The batch being filled (serialized requests and their item counts), and the outcome every producer with
    items in it waits for.

    The outcome is a future that resolves to ``None`` (delivered) or to the error the batch was refused with.
    It never holds an exception itself, so a batch whose producers all hung up leaves no "exception was never
    retrieved" behind.
    """

    __slots__ = ("counts", "items", "message", "outcome", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.counts: list[int] = []
        self.items = 0
        #: The message of the only part, while there is one: handed on as it is, with no parse.
        self.message: Batch | None = None
        self.outcome: asyncio.Future[ConsumeError | None] = asyncio.get_running_loop().create_future()

    def add(self, batch: Batch | WireBatch, items: int) -> None:
        if isinstance(batch, WireBatch):  # already serialized requests: joined as they are
            self.parts.extend(batch.parts)
            self.counts.extend(batch.counts)
            self.items += items
            self.message = None
            return
        data = wire_bytes(batch)
        self.parts.append(data if data is not None else batch.SerializeToString())
        self.counts.append(items)
        self.items += items
        self.message = batch if len(self.parts) == 1 and data is not None else None

    def wire(self, signal: Signal) -> WireBatch:
        return WireBatch(signal, self.parts, self.counts, self.message)


class BatchProcessor(BatchConsumer):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        if settings.signal is None:
            raise ValueError("the batch processor is created per signal; settings.signal is required")
        self.settings = settings
        self.config = config
        self.signal: Signal = settings.signal
        self.logger = settings.telemetry.logger
        self._next = next_consumer
        self._forward = getattr(next_consumer, f"consume_{self.signal.value}")
        name, signal_name = str(settings.id), self.signal.value
        root = settings.telemetry.root
        self._incoming = root.processor_incoming.labels(name, signal_name)
        self._outgoing = root.processor_outgoing.labels(name, signal_name)
        metrics = batch_metrics(settings.telemetry.registry)
        self._send_size = metrics.send_size.labels(name)
        self._triggers = {_SIZE: metrics.size_trigger.labels(name),
                          _TIMEOUT: metrics.timeout_trigger.labels(name)}
        self._send_failed = metrics.send_failed.labels(name, signal_name)
        # A permanent refusal loses its items for good (their producers are told not to retry); a retryable one
        # loses nothing, since every producer of the batch is asked to send again.
        self._rejected = settings.telemetry.dropped("rejected", self.signal)
        self._held: _Held | None = None  # created on first use: it needs the running loop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_send: asyncio.Task[Any] | None = None
        self._sends: set[asyncio.Task[Any]] = set()
        self._stopped = False

    @property
    def pending_items(self) -> int:
        """Items held, waiting for the size or timeout trigger."""
        return self._held.items if self._held is not None else 0

    async def start(self, host: Host) -> None:
        pass

    def begin_shutdown(self) -> None:
        """Stop holding: send what is held now, and every later request as it comes (see ``Draining``).

        What is held goes out without waiting for the sends in flight: one of those may be waiting for the
        outcome of a tail it left behind in the held batch.
        """
        self._stopped = True
        self._cancel_timer()
        if self.pending_items:
            held = self._take_held()
            self._spawn(self._send(held, self._chunks(held.wire(self.signal), held.items), _SHUTDOWN))

    async def shutdown(self) -> None:
        """Send what is held and wait for every send in flight; the next consumer is still running."""
        self.begin_shutdown()
        if self._sends:
            await asyncio.gather(*self._sends)

    async def consume_wire(self, batch: WireBatch) -> None:
        """Serialized requests (tail_sampling's kept traces, a transform's result): held as the bytes they are, so
        nothing parses them on the way to an exporter that sends bytes."""
        await self.consume_batch(batch)

    async def consume_batch(self, batch: Batch | WireBatch) -> None:
        items = count_items(self.signal, batch)
        if items == 0:
            return  # empty envelopes carry nothing; the OTLP specification lets a receiver drop them
        self._incoming.inc(items)
        if self.config.timeout <= 0 or self.config.send_batch_size == 0 or self._stopped:
            # Not buffered (size 0 triggers on every request, as in the Collector): the chunks hold only this
            # caller's items, so a plain await is the right coupling.
            error = await self._send_chunks(self._chunks(batch, items), _SIZE)
            if error is not None:
                raise error
            return
        held = self._held if self._held is not None else self._new_held()
        held.add(batch, items)
        if held.items >= self.config.send_batch_size:
            self._send_on_size(held)
        elif self._timer is None:
            self._arm_timer()
        await _wait_for(held.outcome)

    # ------------------------------------------------------------------ batches

    def _new_held(self) -> _Held:
        self._held = _Held()
        return self._held

    def _take_held(self) -> _Held:
        held = self._held
        assert held is not None
        self._held = None
        return held

    def _send_on_size(self, held: _Held) -> None:
        self._cancel_timer()
        self._take_held()
        chunks = self._chunks(held.wire(self.signal), held.items)
        carried: _Held | None = None
        # As in the Collector: after splitting, a tail below send_batch_size keeps waiting for more items. The
        # producers of the sent part may own items in that tail, so their outcome waits for the tail's too.
        if len(chunks) > 1 and chunks[-1][1] < self.config.send_batch_size:
            carried = self._new_held()
            tail, tail_items = chunks.pop()
            carried.add(message_of(tail), tail_items)  # a piece of a split: a message, serialized again
            self._arm_timer()
        self._spawn(self._send(held, chunks, _SIZE, carried))

    def _chunks(self, batch: Batch | WireBatch, items: int) -> list[tuple[Batch | WireBatch, int]]:
        """``batch`` as it is, or parsed and split when it holds more than ``send_batch_max_size`` items."""
        limit = self.config.send_batch_max_size
        if limit and items > limit:
            return list(split(self.signal, message_of(batch), limit))
        return [(batch, items)]

    async def _send(self, held: _Held, chunks: list[tuple[Batch | WireBatch, int]], trigger: str,
                    carried: _Held | None = None) -> None:
        """Send ``held``'s chunks, then resolve its outcome (after ``carried``'s, when part of it went there)."""
        error = await self._send_chunks(chunks, trigger)
        if error is None and carried is not None:
            error = await asyncio.shield(carried.outcome)
        if not held.outcome.done():
            held.outcome.set_result(error)

    async def _send_chunks(self, chunks: list[tuple[Batch | WireBatch, int]], trigger: str) -> ConsumeError | None:
        """Send every chunk in order. Never raises: returns the error the producers are to be answered with.

        A retryable refusal stops the send: every producer of this batch is told to retry, so sending the
        remaining chunks would only deliver them twice. A permanent refusal of one chunk does not stop the
        others; the producers hear about it, since their batch was (partly) refused as invalid.
        """
        outcome: ConsumeError | None = None
        for chunk, items in chunks:
            self._outgoing.inc(items)
            self._send_size.observe(items)
            if trigger in self._triggers:
                self._triggers[trigger].inc()
            try:
                if isinstance(chunk, WireBatch):
                    await hand_on(self._next, chunk)
                else:
                    await self._forward(chunk)
            except SkipBatchError:
                continue
            except RetryableError as exc:
                self._send_failed.inc(items)
                return exc
            except ConsumeError as exc:
                self._send_failed.inc(items)
                self._rejected.inc(items)
                outcome = outcome or exc
            except Exception as exc:  # a bug downstream: the producers keep their data and retry
                self._send_failed.inc(items)
                self.logger.exception("the next component failed on a batch; its producers are asked to retry",
                                      extra={"trigger": trigger})
                return RetryableError(f"{type(exc).__name__} in the pipeline")
        return outcome

    # ------------------------------------------------------------------ timer

    def _arm_timer(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.config.timeout, self._on_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self) -> None:
        self._timer = None
        if self.pending_items == 0 or self._stopped:
            return
        if self._timer_send is not None and not self._timer_send.done():
            self._arm_timer()  # the previous timeout send is still in flight: keep filling (see module doc)
            return
        held = self._take_held()
        self._timer_send = self._spawn(self._send(held, self._chunks(held.wire(self.signal), held.items), _TIMEOUT))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        return task


async def _wait_for(outcome: asyncio.Future[ConsumeError | None]) -> None:
    """Wait for a batch's outcome and raise its error, as this producer's own copy (producers share one)."""
    error = await asyncio.shield(outcome)
    if error is not None:
        own = copy.copy(error)
        raise own.with_traceback(None)


