"""One component object behind several per-signal create calls, as the Collector's sharedcomponent.

The OTLP receiver serves traces, metrics and logs from one gRPC and one HTTP server, yet the host creates,
starts and shuts down receivers once per signal. Each create call gets its own handle on the same object: the
first handle started starts it, and it is shut down when the last handle is, so no signal loses its server
(or its open file) while another is still draining.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["SharedComponent", "SharedComponents"]

T = TypeVar("T")


class _Entry(Generic[T]):
    def __init__(self, component: T) -> None:
        self.component = component
        self.handles = 0
        self.started = False


class SharedComponent(Generic[T]):
    """One create call's handle; ``component`` is the shared object."""

    def __init__(self, entry: _Entry[T], release: Callable[[], None]) -> None:
        self._entry = entry
        self._release = release
        self._stopped = False
        entry.handles += 1

    @property
    def component(self) -> T:
        return self._entry.component

    async def start(self, host: Host) -> None:
        if not self._entry.started:
            self._entry.started = True
            await self._entry.component.start(host)  # type: ignore[attr-defined]

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._entry.handles -= 1
        if self._entry.handles == 0:
            self._release()
            await self._entry.component.shutdown()  # type: ignore[attr-defined]


class SharedComponents(Generic[T]):
    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry[T]] = {}

    def _forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def get_or_create(self, key: Hashable, create: Callable[[], T]) -> SharedComponent[T]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(create())
        return SharedComponent(entry, lambda: self._forget(key))
