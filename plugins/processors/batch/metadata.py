"""Which sender a batch leaves with: ``metadata_keys`` keeps one batch per distinct sender, as the Collector does.

A batch merged from several requests has no single sender, so without ``metadata_keys`` the batch processor
hands its batches on with none (``gateway.client``): otherwise a timer's send would carry whichever request armed
it. With ``metadata_keys: [x-tenant]``, requests are batched apart per value of those client metadata keys (one
``BatchProcessor`` each, up to ``metadata_cardinality_limit``), and each batch leaves with those keys as its
sender, for headers_setter, ``from_context`` and exporters further on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway import (
    Batch,
    BatchConsumer,
    ClientInfo,
    ComponentSettings,
    Consumer,
    RetryableError,
    Signal,
    WireBatch,
    client,
    hand_on,
)

from .config import Config
from .processor import BatchProcessor


class WithSender(BatchConsumer):
    """The next consumer, called with ``sender`` as the current client (None: no sender)."""

    def __init__(self, next_consumer: Consumer, signal: Signal, sender: ClientInfo | None) -> None:
        self.signal = signal
        self._next = next_consumer
        self._forward = getattr(next_consumer, f"consume_{signal.value}")
        self._sender = sender

    async def consume_batch(self, batch: Batch) -> None:
        with client.attached(self._sender):
            await self._forward(batch)

    async def consume_wire(self, batch: WireBatch) -> None:
        with client.attached(self._sender):
            await hand_on(self._next, batch)


class MetadataBatcher(BatchConsumer):
    """One batch processor per combination of the ``metadata_keys`` values of the requests' senders."""

    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        assert settings.signal is not None
        self.settings = settings
        self.config = config
        self.signal = settings.signal
        self._next = next_consumer
        self._keys = tuple(key.lower() for key in config.metadata_keys)
        self._batchers: dict[tuple[tuple[str, ...], ...], BatchProcessor] = {}
        self._stopping = False

    @property
    def pending_items(self) -> int:
        return sum(batcher.pending_items for batcher in self._batchers.values())

    async def consume_batch(self, batch: Batch) -> None:
        sender = client.current()
        values = tuple(sender.get(key) if sender is not None else () for key in self._keys)
        batcher = self._batchers.get(values)
        if batcher is None:
            if len(self._batchers) >= self.config.metadata_cardinality_limit:
                raise RetryableError(f"batch: more than metadata_cardinality_limit "
                                     f"({self.config.metadata_cardinality_limit}) combinations of "
                                     f"{', '.join(self._keys)}; raise the limit or batch on fewer keys")
            kept = ClientInfo({key: value for key, value in zip(self._keys, values, strict=True) if value})
            batcher = BatchProcessor(self.settings, self.config, WithSender(self._next, self.signal, kept))
            if self._stopping:
                batcher.begin_shutdown()
            self._batchers[values] = batcher
        await getattr(batcher, f"consume_{self.signal.value}")(batch)

    async def start(self, host: Any) -> None:
        pass

    def begin_shutdown(self) -> None:
        self._stopping = True
        for batcher in self._batchers.values():
            batcher.begin_shutdown()

    async def shutdown(self) -> None:
        self._stopping = True
        await asyncio.gather(*(batcher.shutdown() for batcher in list(self._batchers.values())))
