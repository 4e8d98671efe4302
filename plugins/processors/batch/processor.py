"""The batch processor: merges incoming requests and sends them on by size, by timeout, and at shutdown.

Incoming requests are appended to the held batch with protobuf ``MergeFrom`` (C code, envelopes appended,
items never touched in Python). ``consume_*`` does its bookkeeping synchronously, so the event loop itself
serialises producers and no lock is held across an ``await``: a producer whose request does not fill the batch
returns at once; the one whose request fills it awaits the send, which is how downstream backpressure reaches
the receivers. That send runs in its own task behind ``asyncio.shield``: the batch carries other producers'
items, so a cancelled caller (a client that hung up) must not take them down with it.

Timer-driven sends run in the background, one at a time. If one is still in flight when the next timeout
comes, the batch keeps filling instead, until a size-triggered send makes a producer wait. Memory held is
therefore bounded by one in-flight timer send plus less than ``send_batch_size`` items.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.component import Batch, ComponentSettings, Signal, count_items
from gateway.errors import RetryableError, SkipBatchError

from .config import Config
from .metrics import batch_metrics
from .split import split

__all__ = ["BatchProcessor"]

_SIZE, _TIMEOUT, _SHUTDOWN = "size", "timeout", "shutdown"


class BatchProcessor:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Any) -> None:
        if settings.signal is None:
            raise ValueError("the batch processor is created per signal; settings.signal is required")
        self.settings = settings
        self.config = config
        self.signal: Signal = settings.signal
        self.logger = settings.telemetry.logger
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
        self._pending: Batch = self.signal.request_type()
        self._pending_items = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_send: asyncio.Task[Any] | None = None
        self._sends: set[asyncio.Task[Any]] = set()
        self._stopped = False
        setattr(self, f"consume_{signal_name}", self._consume)

    @property
    def pending_items(self) -> int:
        """Items held, waiting for the size or timeout trigger."""
        return self._pending_items

    async def start(self, host: Any) -> None:
        pass

    async def shutdown(self) -> None:
        """Wait for sends in flight, then send what is held; the next consumer is still running."""
        self._stopped = True
        self._cancel_timer()
        if self._sends:
            await asyncio.gather(*self._sends)
        if self._pending_items:
            await self._send_chunks(self._take(), _SHUTDOWN, propagate=False)

    async def _consume(self, batch: Batch) -> None:
        items = count_items(self.signal, batch)
        if items == 0:
            return  # empty envelopes carry nothing; protocols.md 1.1 allows dropping them
        self._incoming.inc(items)
        if self.config.timeout <= 0 or self.config.send_batch_size == 0 or self._stopped:
            # Not buffered (size 0 triggers on every request, as in the Collector): the chunks hold only this
            # caller's items, so a plain await is the right coupling.
            error = await self._send_chunks(self._chunks(batch, items), _SIZE, propagate=True)
            if error is not None:
                raise error
            return
        self._pending.MergeFrom(batch)
        self._pending_items += items
        if self._pending_items < self.config.send_batch_size:
            if self._timer is None:
                self._arm_timer()
            return
        chunks = self._take()
        # As in the Collector: after splitting, a tail below send_batch_size keeps waiting for more items.
        if len(chunks) > 1 and chunks[-1][1] < self.config.send_batch_size:
            self._pending, self._pending_items = chunks.pop()
            self._cancel_timer()
            self._arm_timer()
        else:
            self._cancel_timer()
        task = self._spawn(self._send_chunks(chunks, _SIZE, propagate=True))
        error = await asyncio.shield(task)
        if error is not None:
            raise error

    # ------------------------------------------------------------------ batches

    def _chunks(self, batch: Batch, items: int) -> list[tuple[Batch, int]]:
        limit = self.config.send_batch_max_size
        if limit and items > limit:
            return split(self.signal, batch, limit)
        return [(batch, items)]

    def _take(self) -> list[tuple[Batch, int]]:
        batch, items = self._pending, self._pending_items
        self._pending, self._pending_items = self.signal.request_type(), 0
        return self._chunks(batch, items)

    async def _send_chunks(self, chunks: list[tuple[Batch, int]], trigger: str,
                           propagate: bool) -> RetryableError | None:
        """Send every chunk in order. Never raises: returns the first retryable error for the caller."""
        first_retryable: RetryableError | None = None
        for chunk, items in chunks:
            self._outgoing.inc(items)
            self._send_size.observe(items)
            if trigger in self._triggers:
                self._triggers[trigger].inc()
            try:
                await self._forward(chunk)
            except SkipBatchError:
                continue
            except RetryableError as exc:
                self._send_failed.inc(items)
                if propagate:
                    first_retryable = first_retryable or exc
                else:
                    self._log_drop(items, trigger, exc)
            except Exception as exc:  # a permanent refusal or a bug downstream: not this producer's fault
                self._send_failed.inc(items)
                self._log_drop(items, trigger, exc)
        return first_retryable

    def _log_drop(self, items: int, trigger: str, exc: Exception) -> None:
        self.logger.warning(
            "dropped %d %s: the next component refused the batch: %s", items, self.signal.item_name, exc,
            extra={"trigger": trigger, "error_type": type(exc).__name__})

    # ------------------------------------------------------------------ timer

    def _arm_timer(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.config.timeout, self._on_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self) -> None:
        self._timer = None
        if self._pending_items == 0 or self._stopped:
            return
        if self._timer_send is not None and not self._timer_send.done():
            self._arm_timer()  # the previous timeout send is still in flight: keep filling (see module doc)
            return
        self._timer_send = self._spawn(self._send_chunks(self._take(), _TIMEOUT, propagate=False))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        return task
