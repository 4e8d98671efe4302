"""Forward batches as they are, same signal in and out."""

from __future__ import annotations

from typing import Any

from gateway import BatchConsumer, ComponentSettings, Consumer, Host, Signal, WireBatch, consume, hand_on

from .config import Config

__all__ = ["ForwardConnector"]


class ForwardConnector(BatchConsumer):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer, signal: Signal) -> None:
        self.settings = settings
        self.next = next_consumer
        self.signal = signal

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume_batch(self, batch: Any) -> None:
        await consume(self.next, self.signal, batch)

    async def consume_wire(self, batch: WireBatch) -> None:
        """Bytes stay bytes: the next consumer gets them as they are, or parsed if it needs the message."""
        await hand_on(self.next, batch)
