"""Forward batches as they are, same signal in and out."""

from __future__ import annotations

from typing import Any

from gateway import ComponentSettings, Signal, consume

from .config import Config

__all__ = ["ForwardConnector"]


class ForwardConnector:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Any, signal: Signal) -> None:
        self.settings = settings
        self.next = next_consumer
        self.signal = signal
        setattr(self, f"consume_{signal.value}", self._forward)

    async def start(self, host: Any) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def _forward(self, batch: Any) -> None:
        await consume(self.next, self.signal, batch)
