"""The glue between components: ``FanOut`` hands one batch to several consumers, ``Inlet`` is a receiver's
fan-out that a reload can hold shut for a moment and point at new pipelines.

Read-only consumers share a batch; every consumer whose factory says ``mutates_data=True`` gets its own copy
(the last one may keep the original when nobody reads after it). Every consumer is called even when one fails;
the first failure is raised to the caller, so the sender is answered with it.

A batch of wire bytes (``gateway.wirebytes.WireBatch``: a request the otlp receiver took as bytes, what the
batch processor hands on) goes as it is to every consumer that takes one (``consume_wire``), parsed once for
the other read-only ones, and parsed again for each other mutating one (with the bytes attached, since that
parse is exactly them), so a change made there never reaches the bytes another consumer sends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway._host.workers import routing
from gateway.component import Batch, BatchConsumer, Signal, consume
from gateway.errors import RetryableError
from gateway.wirebytes import WireBatch, attached, hand_on

__all__ = ["FanOut", "Inlet"]


class FanOut(BatchConsumer):
    """Hands one batch to several consumers. Read-only consumers share it; each mutating one gets its own copy."""

    def __init__(self, signal: Signal, consumers: list[tuple[Any, bool]]) -> None:
        self.signal = signal
        self.readonly = [c for c, mutates in consumers if not mutates]
        self.mutating = [c for c, mutates in consumers if mutates]

    @property
    def mutates_data(self) -> bool:
        return False  # copies are made here, so upstream may share its batch with us

    async def consume_batch(self, batch: Batch) -> None:
        if len(self.readonly) + len(self.mutating) == 1:
            await consume((self.readonly or self.mutating)[0], self.signal, batch)
            return
        first_error: BaseException | None = None
        deliveries = [(c, batch) for c in self.readonly]
        for i, consumer in enumerate(self.mutating):
            last_owner = i == len(self.mutating) - 1 and not self.readonly
            copy = batch if last_owner else type(batch)()
            if not last_owner:
                copy.CopyFrom(batch)
            deliveries.append((consumer, copy))
        for consumer, item in deliveries:
            try:
                await consume(consumer, self.signal, item)
            except Exception as exc:  # deliver to the others, then report the first failure
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    async def consume_wire(self, batch: WireBatch) -> None:
        consumers = len(self.readonly) + len(self.mutating)
        if consumers == 1 and self.readonly:
            await hand_on(self.readonly[0], batch, shared=True)
            return
        first_error: BaseException | None = None
        for consumer in self.readonly:
            try:
                await hand_on(consumer, batch, shared=True)  # the message, when needed, is parsed once for all
            except Exception as exc:
                first_error = first_error or exc
        for consumer in self.mutating:
            try:
                if getattr(consumer, "consume_wire", None) is not None:
                    # A wire batch never changes: a consumer that takes one and changes data makes its own
                    # (``WireBatch.fresh`` or new bytes), so every consumer may be given the same one.
                    await consumer.consume_wire(batch)
                else:
                    # A parse of its own (the batch's own parse is for readers), with the bytes it is exactly,
                    # for byte scanners; the ForgetWireBytes behind the consumer forgets them if it changes it.
                    message = batch.fresh()
                    with attached(message, batch.data):
                        await consume(consumer, self.signal, message)
            except Exception as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error


class Inlet(FanOut):
    """A receiver's fan-out, which a reload can hold shut for a moment and point at new pipelines.

    In a worker of ``otelgw run --workers N``, what the receiver hands in first goes through the worker router
    (``gateway._host.workers.routing``), which gives each part to the worker owning it; this worker's part, and
    what other workers route to this receiver here, enter through ``consume_here``."""

    #: How long a request waits at a held inlet before it is refused as retryable.
    HOLD_TIMEOUT_S = 10.0

    def __init__(self, signal: Signal, consumers: list[tuple[Any, bool]], receiver: str = "") -> None:
        super().__init__(signal, consumers)
        self.receiver = receiver
        self._open = asyncio.Event()
        self._open.set()

    def hold(self) -> None:
        self._open.clear()

    def retarget(self, consumers: list[tuple[Any, bool]]) -> None:
        self.readonly = [c for c, mutates in consumers if not mutates]
        self.mutating = [c for c, mutates in consumers if mutates]
        self._open.set()

    def release(self) -> None:
        self._open.set()

    async def consume_batch(self, batch: Batch) -> None:
        router = routing.active()
        if router is not None and router.routed(self.signal):
            await router.route(self.receiver, self.signal, batch, self.consume_here)
        else:
            await self.consume_here(batch)

    async def consume_wire(self, batch: WireBatch) -> None:
        """A request the receiver took as bytes (``gateway.wirebytes``). Routed between workers as a message (the
        router splits it by trace); otherwise it goes on as bytes, parsed only where a consumer needs it."""
        router = routing.active()
        if router is not None and router.routed(self.signal):
            message = batch.message()
            with attached(message, batch.data):
                await router.route(self.receiver, self.signal, message, self.consume_here)
            return
        await self._wait_open()
        await super().consume_wire(batch)

    async def consume_here(self, batch: Batch) -> None:
        await self._wait_open()
        await super().consume_batch(batch)

    async def _wait_open(self) -> None:
        if not self._open.is_set():
            try:
                await asyncio.wait_for(self._open.wait(), self.HOLD_TIMEOUT_S)
            except TimeoutError:
                raise RetryableError("the gateway is reloading its configuration", retry_after=1.0) from None
