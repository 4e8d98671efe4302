"""Connectors with one owner among the workers (``Factory.single_owner``): their state is the whole gateway's.

Routing by trace id gives each worker whole traces, which is what tail sampling needs, but a KPI such as "agents
available" adds and subtracts over events of many traces: split over two workers, each would hold a partial sum,
and an alert on it would page while agents are free. So such a connector runs in worker 0 only. In the other
workers the graph holds an ``OwnerRouted`` in its place: it is never started, and what reaches it (the part the
connector's ``owner_share`` keeps) travels as OTLP bytes over the router to worker 0's connector, which answers
before this worker answers its sender. In a gateway on its own, and in worker 0, it is the connector itself.
"""

from __future__ import annotations

from typing import Any

from gateway.component import Batch, Signal, consume, count_items
from gateway.errors import RetryableError
from gateway.wirebytes import wire_bytes

from . import context, routing

__all__ = ["OWNER", "OwnerRouted", "target"]

#: The worker that runs single-owner connectors.
OWNER = 0


def target(connector_id: str) -> str:
    """The router's name for a connector's intake (receivers are named by their id alone)."""
    return f"connector:{connector_id}"


def _here() -> int | None:
    """This worker's index when other workers exist, else None."""
    current = context.current()
    return current.index if current is not None and current.count > 1 else None


class OwnerRouted:
    """Stands in for a single-owner connector in the graph (see the module docstring)."""

    def __init__(self, connector: Any, connector_id: str, signal: Signal) -> None:
        self.connector = connector
        self.connector_id = connector_id
        self.signal = signal
        here = _here()
        #: True in worker 0 and in a gateway on its own: the connector runs here.
        self.local = here is None or here == OWNER

    @property
    def component(self) -> Any:
        """The component tools and tests look at (a shared connector's runner, as ``Graph.find`` unwraps)."""
        return getattr(self.connector, "component", self.connector)

    @property
    def mutates_data(self) -> bool:
        return bool(getattr(self.connector, "mutates_data", False))

    async def start(self, host: Any) -> None:
        if self.local:
            await self.connector.start(host)

    async def shutdown(self) -> None:
        if self.local:
            await self.connector.shutdown()

    async def consume_here(self, batch: Batch) -> None:
        """What another worker handed over: straight to the connector."""
        if not self.local:
            raise RetryableError(f"connector {self.connector_id} runs in worker {OWNER}, not here", retry_after=1.0)
        await consume(self.connector, self.signal, batch)

    async def _hand_over(self, batch: Batch) -> None:
        if self.local:
            await consume(self.connector, self.signal, batch)
            return
        share = getattr(self.connector, "owner_share", None)
        part = share(self.signal, batch) if share is not None else batch
        if part is None:
            return
        router = routing.active()
        if router is None:
            raise RetryableError("this worker's router is not running yet", retry_after=1.0)
        data = wire_bytes(part)
        await router.hand_to(OWNER, target(self.connector_id), self.signal,
                             data if data is not None else part.SerializeToString(), count_items(self.signal, part))

    async def consume_traces(self, batch: Batch) -> None:
        await self._hand_over(batch)

    async def consume_metrics(self, batch: Batch) -> None:
        await self._hand_over(batch)

    async def consume_logs(self, batch: Batch) -> None:
        await self._hand_over(batch)
