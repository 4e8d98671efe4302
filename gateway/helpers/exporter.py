"""The exporter helper, as the Collector's exporterhelper: timeout, sending queue, retry with backoff.

A concrete exporter writes only ``send(batch)``: encode, transmit, and raise ``RetryableError`` (with the
server's ``retry_after`` when it gave one) or ``PermanentError``. Anything else it raises
(``aiohttp.ClientError``, ``OSError``, a timeout) counts as retryable. It composes an ``ExporterHelper`` and
delegates to it::

    class MyExporter(BatchConsumer):     # consume_traces/metrics/logs call consume_batch
        def __init__(self, settings, config):
            self._helper = ExporterHelper(settings, self._send, timeout=config.timeout,
                                          queue=config.sending_queue, retry=config.retry_on_failure)

        async def consume_batch(self, batch):
            await self._helper.consume(batch)

        async def start(self, host):     # open connections, then
            await self._helper.start(host)

        async def shutdown(self):        # drain first, then close connections
            await self._helper.shutdown()

The path of a batch: ``consume`` puts it in the queue and returns (a full queue refuses it with
``OverloadedError``); ``num_consumers`` workers take batches out and send each with ``timeout`` per attempt;
a retryable failure sleeps a jittered exponential backoff, at least the server's ``retry_after``, and tries
again until ``max_elapsed_time``. A batch of several items refused for its content (``InvalidDataError``:
gRPC INVALID_ARGUMENT, HTTP 400; ``TooLargeError``: RESOURCE_EXHAUSTED without RetryInfo, HTTP 413) is
bisected: the halves are sent again, each on its own, until only the items the destination refuses are left
(at most ``_BisectBudget.SPLITS`` splits per batch), so one sender's invalid item never costs other senders the
items merged with it. Other permanent refusals (401, 404, PERMISSION_DENIED...) are about the request, not the
items, and drop the batch at once. Those items are dropped, logged and counted in
``otelgw_component_dropped_items_total{reason="rejected"}``. With the queue disabled ``consume`` does the same
inline and raises the final error to its caller (a permanent one only when nothing of the batch got through).

The module also holds the client side of docs/protocols.md §1.2 (which gRPC and HTTP answers are retryable), for
every exporter that speaks OTLP or a protocol with the same rules.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.metadata
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from gateway import client
from gateway.component import Batch, ComponentID, ComponentSettings, Signal, Storage, count_items
from gateway.configtypes import Duration
from gateway.errors import (
    ConfigError,
    ConsumeError,
    InvalidDataError,
    OverloadedError,
    PermanentError,
    RetryableError,
    TooLargeError,
)
from gateway.helpers.batching import cut, join, measure
from gateway.helpers.persistent_queue import (
    MemoryQueue,
    PersistentQueue,
    QueueFull,
    SendingQueue,
    StorageUnavailable,
)
from gateway.helpers.split import split
from gateway.wirebytes import WireBatch, message_of

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = [
    "USER_AGENT",
    "Backoff",
    "ExporterHelper",
    "PartialSuccess",
    "QueueConfig",
    "RetryConfig",
    "SendFn",
    "grpc_error",
    "http_error",
    "parse_retry_after",
    "permanent_http_error",
    "retry_info_delay",
]


def _version() -> str:
    try:
        return importlib.metadata.version("otelgw")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


#: What exporters send as User-Agent (HTTP) or primary user agent (gRPC).
USER_AGENT = f"otelgw/{_version()}"


@dataclass(frozen=True)
class QueueBatchConfig:
    """``sending_queue::batch``: the queue's workers join queued requests into batches before sending (the
    Collector's replacement for the batch processor). Batching happens after the queue, so what was
    acknowledged is already queued (on disk, with ``storage``) before it waits for its batch."""

    #: Send what was gathered this long after the first request of the batch was taken from the queue.
    flush_timeout: Duration = 0.2
    #: Send as soon as the batch holds this much (in ``sizer`` units).
    min_size: int = 8192
    #: Larger batches are cut into pieces of at most this much; 0 = no limit.
    max_size: int = 0
    #: What min_size and max_size count: items (spans, data points, log records) or bytes.
    sizer: str = "items"

    def validate(self) -> None:
        errors = []
        if self.flush_timeout <= 0:
            errors.append("flush_timeout: must be > 0")
        if self.min_size < 0:
            errors.append(f"min_size: must be >= 0, got {self.min_size}")
        if self.max_size < 0:
            errors.append(f"max_size: must be >= 0 (0 = no limit), got {self.max_size}")
        elif 0 < self.max_size < self.min_size:
            errors.append(f"max_size: must be 0 (no limit) or >= min_size ({self.min_size}), got {self.max_size}")
        if self.sizer not in ("items", "bytes"):
            errors.append(f"sizer: must be items or bytes, got {self.sizer!r}")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class QueueConfig:
    """The Collector's ``sending_queue`` block: in memory, or on disk through a ``file_storage`` extension."""

    #: false sends inline: consume waits for the send, retries included, and raises its final error.
    enabled: bool = True
    #: Workers sending from the queue concurrently.
    num_consumers: int = 10
    #: Capacity, in the unit of ``sizer``; when full, new batches are refused with a retryable overload error.
    queue_size: int = 1000
    #: What queue_size counts: ``requests`` (batches), ``items`` (in memory only) or ``bytes`` (their
    #: serialized size, the cap on disk).
    sizer: str = "requests"
    #: Id of a file_storage extension (``file_storage/queue``): the queue is then a write-ahead log on disk that
    #: survives restarts and crashes (at-least-once). Empty keeps the queue in memory.
    storage: str | None = None
    #: When the queue is full, wait for room instead of refusing the request (the sender waits, as backpressure).
    block_on_overflow: bool = False
    #: Answer the sender only once its request was exported (or dropped, with the error), not once it was queued.
    #: With storage too: the request waits on disk meanwhile, and a crash before it was sent leaves the sender
    #: unanswered (it retries) while the request is sent after the next start (at least once).
    wait_for_result: bool = False
    #: Join queued requests into batches before sending (see QueueBatchConfig); unset sends each as queued.
    batch: QueueBatchConfig | None = None

    def validate(self) -> None:
        errors = []
        if self.storage:
            try:
                ComponentID.parse(self.storage)
            except ValueError as exc:
                errors.append(f"storage: {exc}")
            if not self.enabled:
                errors.append("storage: needs enabled: true (a persistent queue is a queue)")
        if self.sizer not in ("requests", "items", "bytes"):
            errors.append(f"sizer: must be requests, items or bytes, got {self.sizer!r}")
        elif self.sizer == "items" and self.storage:
            errors.append("sizer: items is not available with storage (the queue on disk counts requests or "
                          "bytes); use requests or bytes")
        if self.batch is not None and not self.enabled:
            errors.append("batch: needs enabled: true (batches are joined by the queue's workers)")
        if self.enabled and self.num_consumers < 1:
            errors.append(f"num_consumers: must be >= 1, got {self.num_consumers}")
        if self.enabled and self.queue_size < 1:
            errors.append(f"queue_size: must be >= 1, got {self.queue_size}")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class RetryConfig:
    """The Collector's ``retry_on_failure`` block: exponential backoff with jitter."""

    #: false drops a batch after its first failed attempt.
    enabled: bool = True
    #: Wait before the first retry.
    initial_interval: Duration = 5.0
    #: Each wait is drawn from interval * [1 - factor, 1 + factor], so senders that failed together spread.
    randomization_factor: float = 0.5
    #: The interval grows by this factor after every retry.
    multiplier: float = 1.5
    #: Upper bound of the interval.
    max_interval: Duration = 30.0
    #: Give up on a batch once this much time has passed since its first attempt; 0 retries forever.
    max_elapsed_time: Duration = 300.0

    def validate(self) -> None:
        if not self.enabled:
            return
        errors = []
        if self.initial_interval <= 0:
            errors.append("initial_interval: must be > 0")
        if not 0 <= self.randomization_factor <= 1:
            errors.append(f"randomization_factor: must be between 0 and 1, got {self.randomization_factor:g}")
        if self.multiplier < 1:
            errors.append(f"multiplier: must be >= 1, got {self.multiplier:g}")
        if self.max_interval < self.initial_interval:
            errors.append("max_interval: must be >= initial_interval")
        if 0 < self.max_elapsed_time < self.initial_interval:
            errors.append("max_elapsed_time: must be 0 (retry forever) or >= initial_interval")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class PartialSuccess:
    """What ``send`` returns when the destination accepted the request but rejected some of its items."""

    rejected: int
    message: str = ""


SendFn: TypeAlias = Callable[[Any], Awaitable[PartialSuccess | None]]  # a Batch, or a WireBatch with wire=True


class Backoff:
    """The Collector's (cenkalti) exponential backoff: randomized around an interval that grows to a cap.

    The one retry policy of the SDK: the exporter helper waits with it between attempts, and so does anything
    else that retries a destination (the alerts processor's notifiers). One per thing retried::

        backoff = Backoff(RetryConfig(initial_interval=1.0, max_interval=30.0))
        delay = backoff.next_delay(error.retry_after)   # at least what the destination asked for
    """

    def __init__(self, config: RetryConfig) -> None:
        self._config = config
        self._interval = config.initial_interval

    def next_delay(self, retry_after: float | None = None) -> float:
        """The wait before the next attempt: the randomized interval, or the server's ``retry_after`` if longer
        (a rate limit wins over our own pace)."""
        spread = self._config.randomization_factor * (2 * random.random() - 1)
        delay = self._interval * (1 + spread)
        self._interval = min(self._interval * self._config.multiplier, self._config.max_interval)
        return delay if retry_after is None else max(delay, retry_after)


class _BisectBudget:
    """Bounds the extra requests spent bisecting one refused batch.

    One bad item among n costs about 2·log2(n) requests to find; a batch whose every item is refused (a backend
    that refuses everything older than a day) would cost 2n. Past the budget, what is left is dropped whole.
    """

    SPLITS = 32

    def __init__(self) -> None:
        self.remaining = self.SPLITS

    def take(self) -> bool:
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


#: First wait before a sending-queue worker that raised is started again (doubling to 5 s while it keeps failing).
WORKER_RESTART_DELAY = 0.1


class _LeaveQueued(Exception):
    """Shutdown's deadline stops the retries of a batch that a persistent queue keeps for the next start."""


class ExporterHelper:
    """Queue, workers, timeout and retry around one exporter's ``send``, with the Collector's metrics."""

    def __init__(self, settings: ComponentSettings, send: SendFn, *, timeout: float, queue: QueueConfig,
                 retry: RetryConfig, drain_timeout: float | None = None, wire: bool = False) -> None:
        self.signal = settings.signal or Signal.TRACES
        #: ``send`` takes a ``WireBatch`` (it sends serialized requests as they are): a batch that comes with
        #: the bytes it was received as is queued as those bytes, and queued batches are joined as bytes.
        self.wire = wire
        self.logger = settings.telemetry.logger
        self._send = send
        self._timeout = timeout
        self._retry = retry
        self._num_consumers = queue.num_consumers
        #: How long shutdown keeps sending what is queued (and retrying) before it drops the rest, at least: up to
        #: the end of the gateway's grace period when it has one (``Host.drain_deadline``) and what is queued
        #: would be lost (a persistent queue keeps it for the next start instead).
        self.drain_timeout = drain_timeout if drain_timeout is not None else max(timeout, 5.0)
        self._host: Host | None = None
        root, name, data_type = settings.telemetry.root, str(settings.id), self.signal.value
        self._task_name = f"exporter {name} {data_type} sender"
        item = self.signal.item_name
        self._sent = root.exporter_sent[item].labels(name)
        self._failed = root.exporter_send_failed[item].labels(name)
        self._enqueue_failed = root.exporter_enqueue_failed[item].labels(name)
        self._retries = root.exporter_retries.labels(name, data_type)
        self._latency = root.exporter_send_latency.labels(name, data_type)
        self._dropped = {reason: root.component_dropped.labels(name, data_type, reason)
                         for reason in ("rejected", "retries_exhausted", "shutdown")}
        self._worker_restarts = root.exporter_queue_worker_restarts.labels(name, data_type)
        self._root = root
        self._queue_config = queue
        self._queue: SendingQueue | None = None
        if queue.enabled:
            if not queue.storage:
                self._queue = MemoryQueue(queue.queue_size, queue.sizer, self.signal)
            root.exporter_queue_size.labels(name, data_type).set_function(lambda: self.queue_size)
            root.exporter_queue_capacity.labels(name, data_type).set(queue.queue_size)
        self._id = name
        self._workers: list[asyncio.Task[None]] = []
        #: The queue's key of a batch (``put``'s answer) → the outcome its sender waits on (``wait_for_result``).
        #: Client metadata (``gateway.client``) travels in the queue with the batch, on disk too, and a worker
        #: sends each batch with its sender current, for headers_setter and the like.
        self._outcomes: dict[int, asyncio.Future[ConsumeError | None]] = {}
        #: Set when a worker finished a request (room in the queue) or at shutdown: ``block_on_overflow`` waits.
        self._room = asyncio.Event()
        self._closing = asyncio.Event()
        self._deadline: float | None = None  # loop time at which shutdown stops waiting for sends

    @property
    def queue_size(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def consume(self, batch: Batch | WireBatch) -> None:
        if self.wire and not isinstance(batch, WireBatch):
            batch = WireBatch.of(self.signal, batch) or batch  # its bytes are exact only during this call
        if self._closing.is_set():
            raise RetryableError("exporter is shutting down")
        if not self._queue_config.enabled:
            await self._export(batch, inline=True)
            return
        if self._queue is None:
            raise RetryableError("exporter is not started: its persistent queue is not open yet")
        sender = client.current()
        while True:
            try:
                key = self._queue.put(batch, sender)
                break
            except QueueFull:
                if not self._queue_config.block_on_overflow or self._closing.is_set():
                    self._enqueue_failed.inc(count_items(self.signal, batch))
                    raise OverloadedError("sending queue is full", retry_after=1.0) from None
                self._room.clear()
                await self._room.wait()  # backpressure: the sender waits until a worker made room
            except StorageUnavailable:  # disk full or I/O error: retryable, and what is queued keeps draining
                self._enqueue_failed.inc(count_items(self.signal, batch))
                raise
        if self._queue_config.wait_for_result:
            # Registered before any await, so no worker can finish the batch before its sender waits on it.
            outcome: asyncio.Future[ConsumeError | None] = asyncio.get_running_loop().create_future()
            self._outcomes[key] = outcome
            error = await asyncio.shield(outcome)  # a sender that hangs up does not cancel the export
            if error is not None:
                raise error

    async def start(self, host: Host) -> None:
        self._host = host
        if self._queue_config.storage and self._queue is None:
            self._queue = self._open_persistent_queue(host)
        if self._queue is not None and not self._workers and not self._closing.is_set():
            self._workers = [asyncio.create_task(self._supervise(), name=f"{self._task_name} {i}")
                             for i in range(self._num_consumers)]

    def _open_persistent_queue(self, host: Host) -> PersistentQueue:
        extension = host.extension(self._queue_config.storage or "", Storage, "sending_queue::storage")
        directory, fsync = extension.queue_directory(f"exporter_{self._id}_{self.signal.value}")
        parse: Callable[[bytes], Any] = (self._parse_wire if self.wire else self.signal.request_type.FromString)
        queue = PersistentQueue(directory, parse, capacity=self._queue_config.queue_size,
                                sizer=self._queue_config.sizer, fsync=fsync, logger=self.logger)
        recovered = queue.open()
        if recovered:
            self.logger.info("Recovered requests from the persistent queue.",
                             extra={"requests": recovered, "directory": str(directory)})
        root, labels = self._root, (self._id, self.signal.value)
        root.exporter_queue_recovery_dropped_records.labels(*labels).inc(queue.dropped_records)
        root.exporter_queue_recovery_dropped_bytes.labels(*labels).inc(queue.dropped_bytes)
        return queue

    def _parse_wire(self, payload: bytes) -> WireBatch:
        """A request read back from disk, kept with its bytes, which are sent as they are."""
        return WireBatch.parsed(self.signal, payload)

    async def shutdown(self) -> None:
        """Stop accepting, send what is queued until the drain deadline, then drop (and count) the rest.

        A persistent queue keeps the rest on disk instead, for the next start.
        """
        if self._closing.is_set():
            return
        loop = asyncio.get_running_loop()
        drain = self.drain_timeout
        # getattr: a host written before Host.drain_deadline existed (a plugin's own test host) has none.
        grace_ends = getattr(self._host, "drain_deadline", None)
        if grace_ends is not None and not (self._queue is not None and self._queue.persistent):
            drain = max(drain, grace_ends - time.monotonic())
        self.drain_timeout = drain
        self._deadline = loop.time() + drain
        self._closing.set()  # wakes retries that are sleeping, so they can check the deadline
        self._room.set()  # and senders blocked on a full queue, which are now refused
        if self._queue is None:
            return
        try:
            if self._workers:
                # Workers of a persistent queue stop early when the rest must wait on disk for the next start.
                joined = asyncio.ensure_future(self._queue.join())
                await asyncio.wait([joined, *self._workers], timeout=self.drain_timeout,
                                   return_when=asyncio.FIRST_COMPLETED if not self._queue.persistent
                                   else asyncio.ALL_COMPLETED)
                joined.cancel()
        finally:
            # Cancel until every worker is gone: on Python 3.11 asyncio.wait_for can swallow a cancellation that
            # races with its inner wait (cpython#86296), which would leave a worker waiting forever.
            while pending := [task for task in self._workers if not task.done()]:
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=0.1)
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers.clear()
            self._drop_queued()

    def _drop_queued(self) -> None:
        assert self._queue is not None
        if isinstance(self._queue, PersistentQueue):
            if self._queue.unfinished:
                self.logger.warning("Requests left in the persistent queue at shutdown are sent after the next "
                                    "start.", extra={"requests": self._queue.unfinished})
            self._queue.close()
            # Senders still waiting (wait_for_result) were not delivered: told to retry, while their requests
            # stay on disk for the next start (at least once).
            for key in list(self._outcomes):
                self._settle(key, RetryableError("exporter shut down before the request was sent; it stays in "
                                                 "the persistent queue and is sent after the next start"))
            return
        remaining = self._queue.take_remaining()
        for batch in remaining:
            self._settle(id(batch), RetryableError("exporter shut down before the request was sent"))
        dropped = sum(count_items(self.signal, batch) for batch in remaining)
        if dropped:
            self._failed.inc(dropped)
            self._dropped["shutdown"].inc(dropped)
            self.logger.error("Dropping data left in the sending queue at shutdown.",
                              extra={"dropped_items": dropped, "drain_timeout_s": self.drain_timeout})

    async def _supervise(self) -> None:
        """Run one worker; one that raises is logged, counted and started again, so the queue always drains."""
        delay = WORKER_RESTART_DELAY
        while True:
            started = time.monotonic()
            try:
                await self._work()
                return  # left on purpose (shutdown)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._worker_restarts.inc()
                self.logger.exception("Sending-queue worker failed; restarting it.",
                                      extra={"restart_in_s": delay})
            # Back off while it keeps failing (a broken disk), but start at once again after a healthy stretch.
            delay = WORKER_RESTART_DELAY if time.monotonic() - started > 10 else min(delay * 2, 5.0)
            await asyncio.sleep(delay)

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            entries = [await queue.get()]  # (token, batch): one request, or those joined into one batch
            try:
                if self._queue_config.batch is not None:
                    await self._gather(entries)
                error = await self._send_entries(entries)
            except _LeaveQueued:
                return  # shutting down; not acknowledged, so it is sent after the next start
            except asyncio.CancelledError:
                if queue.persistent:
                    raise  # not acknowledged: it stays on disk and is sent after the next start
                items = sum(count_items(self.signal, batch) for _, batch in entries)
                self._failed.inc(items)
                self._dropped["shutdown"].inc(items)
                self.logger.error("Exporting failed. Shutdown deadline passed. Dropping data.",
                                  extra={"dropped_items": items})
                self._finish(entries, RetryableError("exporter shut down before the request was sent"))
                raise
            except Exception:  # a bug: the batch is dropped and counted, the supervisor logs and restarts us
                self._failed.inc(sum(count_items(self.signal, batch) for _, batch in entries))
                self._finish(entries, RetryableError("exporter failed unexpectedly"))
                raise
            self._finish(entries, error)

    async def _gather(self, entries: list[tuple[Any, Batch | WireBatch]]) -> None:
        """Take more requests from the queue into ``entries`` until they reach ``batch::min_size`` or
        ``flush_timeout`` passed since the first. What was taken is in ``entries`` even when cancelled."""
        assert self._queue is not None and self._queue_config.batch is not None
        config, queue, loop = self._queue_config.batch, self._queue, asyncio.get_running_loop()
        size = measure(self.signal, entries[0][1], config.sizer)
        deadline = loop.time() + config.flush_timeout
        while size < config.min_size and not self._closing.is_set() and (remaining := deadline - loop.time()) > 0:
            getter = asyncio.ensure_future(queue.get())
            closing = asyncio.ensure_future(self._closing.wait())  # shutdown sends what was gathered at once
            try:
                await asyncio.wait({getter, closing}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closing.cancel()
                if not getter.done():
                    getter.cancel()
                    await asyncio.wait({getter})
                if not getter.cancelled():  # taken, maybe while being cancelled: it must not get lost
                    entries.append(getter.result())
            if getter.cancelled():
                return
            size += measure(self.signal, entries[-1][1], config.sizer)

    async def _send_entries(self, entries: list[tuple[Any, Batch | WireBatch]]) -> ConsumeError | None:
        """Send the batches of ``entries`` as one (cut to ``batch::max_size``), with their sender current when
        they share one (a batch joined from several senders has none, as in the Collector)."""
        assert self._queue is not None
        senders = [self._queue.sender(token) for token, _ in entries]
        common = senders[0] if all(s == senders[0] for s in senders) else None
        joined = join(self.signal, [batch for _, batch in entries])
        config = self._queue_config.batch
        pieces = cut(self.signal, joined, config.sizer, config.max_size) if config is not None else [joined]
        error: ConsumeError | None = None
        with client.attached(common):
            for piece in pieces:
                error = await self._export(piece, inline=False) or error
        return error

    def _finish(self, entries: list[tuple[Any, Batch | WireBatch]], error: ConsumeError | None) -> None:
        assert self._queue is not None
        for token, _ in entries:
            self._settle(self._queue.key(token), error)
            self._queue.done(token)
        self._room.set()

    def _settle(self, key: int, error: ConsumeError | None) -> None:
        """Answer a sender waiting on the batch the queue knows as ``key`` (``wait_for_result``)."""
        outcome = self._outcomes.pop(key, None)
        if outcome is not None and not outcome.done():
            outcome.set_result(error)

    async def _export(self, batch: Batch | WireBatch, *, inline: bool,
                      budget: _BisectBudget | None = None) -> ConsumeError | None:
        """Send with retries; count the outcome. Raises the final error when ``inline``; queued, returns the
        error the batch was dropped with (None when it was sent, or bisected)."""
        items = count_items(self.signal, batch)
        budget = budget or _BisectBudget()
        backoff = Backoff(self._retry)
        first_attempt = time.monotonic()
        while True:
            try:
                result = await self._attempt(batch)
            except Exception as exc:
                error = exc if isinstance(exc, ConsumeError) else RetryableError(_describe(exc))
                if not isinstance(error, RetryableError):
                    if items > 1 and isinstance(error, InvalidDataError | TooLargeError) and budget.take():
                        return await self._bisect(batch, items, inline=inline, budget=budget)
                    self._failed.inc(items)
                    self._dropped["rejected"].inc(items)
                    self.logger.error("Exporting failed. The error is not retryable. Dropping data.",
                                      extra={"error": str(error), "dropped_items": items})
                    if inline:
                        raise
                    return error
                delay = self._retry_delay(backoff, error, first_attempt)
                if delay is not None:
                    self.logger.info("Exporting failed. Will retry the request after interval.",
                                     extra={"error": str(error), "interval_s": round(delay, 3)})
                slept = delay is not None and await self._sleep(delay)
                if not slept and delay is not None and not inline and self._queue is not None \
                        and self._queue.persistent:
                    raise _LeaveQueued from None  # shutdown cut the retries short: the batch waits on disk
                if not slept:
                    self._failed.inc(items)
                    self._dropped["shutdown" if self._closing.is_set() else "retries_exhausted"].inc(items)
                    reason = "No more retries left" if self._retry.enabled else "Retries are disabled"
                    self.logger.error(f"Exporting failed. {reason}. Dropping data.",
                                      extra={"error": str(error), "dropped_items": items})
                    if inline and error is exc:
                        raise
                    if inline:
                        raise error from exc
                    return error
                self._retries.inc()
                continue
            rejected = min(result.rejected, items) if result is not None else 0
            if result is not None and (rejected or result.message):
                self.logger.warning("Partial success response: the destination rejected some items.",
                                    extra={"rejected_items": rejected, "error": result.message})
            self._sent.inc(items - rejected)
            if rejected:
                self._failed.inc(rejected)
                self._dropped["rejected"].inc(rejected)
            return None

    async def _bisect(self, batch: Batch | WireBatch, items: int, *, inline: bool,
                      budget: _BisectBudget) -> ConsumeError | None:
        """Send the two halves of a permanently refused batch on their own (recursively, through ``_export``).

        Every outcome is counted where it happens. The caller learns of a retryable failure of either half (it
        resends the whole batch: at least once), and of a permanent one only when no half got through: raised
        when ``inline``, returned when queued (for a sender waiting with ``wait_for_result``).
        """
        retryable: RetryableError | None = None
        permanent: ConsumeError | None = None
        delivered = False
        for half, _ in split(self.signal, message_of(batch), (items + 1) // 2):
            try:
                error = await self._export(half, inline=inline, budget=budget)
            except ConsumeError as exc:
                error = exc
            if error is None:
                delivered = True
            elif isinstance(error, RetryableError):
                retryable = retryable or error
            else:
                permanent = permanent or error
        outcome = retryable or (permanent if not delivered else None)
        if inline and outcome is not None:
            raise outcome
        return outcome

    async def _attempt(self, batch: Batch | WireBatch) -> PartialSuccess | None:
        started = time.perf_counter()
        try:
            if isinstance(batch, WireBatch) and not self.wire:
                batch = batch.message()
            return await asyncio.wait_for(self._send(batch), self._timeout)
        except TimeoutError as exc:
            raise RetryableError(str(exc) or f"send timed out after {self._timeout:g}s") from None
        finally:
            self._latency.observe(time.perf_counter() - started)

    def _retry_delay(self, backoff: Backoff, error: RetryableError, first_attempt: float) -> float | None:
        """The wait before the next attempt, or None to give up."""
        if not self._retry.enabled:
            return None
        delay = backoff.next_delay(error.retry_after)
        max_elapsed = self._retry.max_elapsed_time
        if max_elapsed > 0 and time.monotonic() - first_attempt + delay > max_elapsed:
            return None
        return delay

    async def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds; False when shutdown's drain deadline would pass first."""
        loop = asyncio.get_running_loop()
        wake_at = loop.time() + delay
        if not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), delay)
            except TimeoutError:
                return True
        if self._deadline is None or wake_at > self._deadline:
            return False
        await asyncio.sleep(max(wake_at - loop.time(), 0.0))
        return True


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------ docs/protocols.md §1.2, client side

_RETRYABLE_GRPC = frozenset({
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
})
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_SECONDS = re.compile(r"^\d+(\.\d+)?$")


def retry_info_delay(trailing_metadata: Iterable[tuple[str, str | bytes]] | None) -> float | None:
    """The ``google.rpc.RetryInfo`` delay in the ``grpc-status-details-bin`` trailer, in seconds, if any."""
    for key, value in trailing_metadata or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return None
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return max(info.retry_delay.seconds + info.retry_delay.nanos / 1e9, 0.0)
    return None


def grpc_error(code: grpc.StatusCode, details: str | None,
               trailing_metadata: Iterable[tuple[str, str | bytes]] | None = None) -> ConsumeError:
    """The error for a failed gRPC export: retryable per the OTLP table, permanent otherwise."""
    message = f"{code.name}: {details}" if details else code.name
    retry_after = retry_info_delay(trailing_metadata)
    if code in _RETRYABLE_GRPC:
        return RetryableError(message, retry_after)
    # RESOURCE_EXHAUSTED without RetryInfo is a size limit (or similar) that resending cannot fix.
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RetryableError(message, retry_after) if retry_after is not None else TooLargeError(message)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidDataError(message)
    return PermanentError(message)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` (delay-seconds or HTTP-date) as seconds from ``now``; None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    # HTTP allows whole seconds only; fractions cost nothing to accept and some servers send them.
    if _SECONDS.match(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def http_error(status: int, message: str = "", retry_after: str | None = None) -> ConsumeError:
    """The error for a failed HTTP export: 429, 502, 503 and 504 are retryable, every other status is not."""
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status in _RETRYABLE_HTTP:
        return RetryableError(text, parse_retry_after(retry_after))
    return permanent_http_error(status, text)


def permanent_http_error(status: int, text: str) -> PermanentError:
    """A non-retryable HTTP answer: 400 and 413 refuse the content (bisected), the rest refuse the request."""
    if status == 400:
        return InvalidDataError(text)
    if status == 413:
        return TooLargeError(text)
    return PermanentError(text)
