"""One component object behind several per-signal create calls, as the Collector's sharedcomponent.

The OTLP receiver serves traces, metrics and logs from one gRPC and one HTTP server, yet the host creates,
starts and shuts down receivers once per signal. Each create call returns the same ``SharedComponent``; its
start and shutdown run the real ones exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SharedComponent", "SharedComponents"]

T = TypeVar("T")


class SharedComponent(Generic[T]):
    def __init__(self, component: T, release: Callable[[], None]) -> None:
        self.component = component
        self._release = release
        self._started = False
        self._stopped = False

    async def start(self, host: Any) -> None:
        if not self._started:
            self._started = True
            await self.component.start(host)  # type: ignore[attr-defined]

    async def shutdown(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._release()
            await self.component.shutdown()  # type: ignore[attr-defined]


class SharedComponents(Generic[T]):
    def __init__(self) -> None:
        self._items: dict[Hashable, SharedComponent[T]] = {}

    def get_or_create(self, key: Hashable, create: Callable[[], T]) -> SharedComponent[T]:
        shared = self._items.get(key)
        if shared is None:
            shared = SharedComponent(create(), lambda: self._items.pop(key, None))
            self._items[key] = shared
        return shared
