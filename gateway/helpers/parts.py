"""Sending one batch as several requests, so that a retry resends only the requests that failed.

The jaeger exporter sends one PostSpans per process (resource) and the loki exporter one push per tenant. The
exporter helper retries a whole batch; without this, a batch whose second request failed would send its first
request again on every retry, and the destination would store it twice.

State is kept per batch object between attempts, for at most ``capacity`` batches (more than the helper ever
has in flight; what goes beyond is a batch the helper gave up on). A batch is never changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gateway.component import Batch
from gateway.errors import PermanentError, RetryableError
from gateway.helpers.exporter import PartialSuccess

__all__ = ["OFFLOAD_BYTES", "Part", "PartSender", "Split", "offloaded"]

P = TypeVar("P")

#: Batches larger than this (serialized) are translated in a worker thread. Translation is Python and holds the
#: GIL, so this buys no throughput; it keeps the event loop (receivers, other exporters) running every GIL switch
#: interval instead of stalling for the tens of milliseconds a batch of thousands of items takes.
OFFLOAD_BYTES = 256 * 1024


@dataclass(frozen=True, eq=False)
class Part(Generic[P]):
    """One request: what the post function sends, and how many items (spans, log records) it carries."""

    payload: P
    items: int


@dataclass
class Split(Generic[P]):
    """A batch as requests, plus the items translation had to leave out (counted as rejected)."""

    parts: Sequence[Part[P]]
    rejected: int = 0
    reason: str = ""


@dataclass(eq=False)
class _Pending(Generic[P]):
    batch: Batch
    parts: list[Part[P]]
    total: int
    rejected: int
    reason: str
    failures: list[BaseException] = field(default_factory=list)
    #: The kind of the last permanent refusal of a part (the translation's own rejections are plain ones).
    refusal: type[PermanentError] = PermanentError


def offloaded(split: Callable[[Batch], Split[P]]) -> Callable[[Batch], Awaitable[Split[P]]]:
    """``split`` as a coroutine that runs it in a thread when the batch is large (see OFFLOAD_BYTES)."""

    async def run(batch: Batch) -> Split[P]:
        if batch.ByteSize() > OFFLOAD_BYTES:
            return await asyncio.to_thread(split, batch)
        return split(batch)

    return run


class PartSender(Generic[P]):
    """``send(batch)`` for the exporter helper: ``split`` the batch into parts once, ``post`` each part
    concurrently, and remember the parts still to send until the helper's retry comes back for them."""

    def __init__(self, split: Callable[[Batch], Awaitable[Split[P]]], post: Callable[[P], Awaitable[Any]],
                 capacity: int = 64) -> None:
        self._split = split
        self._post = post
        self._capacity = capacity
        self._pending: dict[int, _Pending[P]] = {}

    @property
    def pending(self) -> int:
        """Batches with requests still to send (for tests and debugging)."""
        return len(self._pending)

    async def send(self, batch: Batch) -> PartialSuccess | None:
        """Send what is left of ``batch``. While parts remain, raises their retryable error (the one asking for
        the longest wait); parts the destination refused for good count as rejected (all: PermanentError)."""
        key = id(batch)
        state = self._pending.pop(key, None)
        if state is None or state.batch is not batch:
            split = await self._split(batch)
            total = sum(part.items for part in split.parts) + split.rejected
            state = _Pending(batch, list(split.parts), total, split.rejected, split.reason)
        self._pending[key] = state  # (re)inserted last: the oldest entries are the abandoned ones
        while len(self._pending) > self._capacity:
            del self._pending[next(iter(self._pending))]
        state.failures = []
        await asyncio.gather(*(self._send_part(state, part) for part in list(state.parts)))
        if state.parts:
            if not state.failures:
                raise RetryableError(f"{len(state.parts)} request(s) of the batch are still to be sent")
            raise max(state.failures, key=lambda e: getattr(e, "retry_after", None) or 0.0)
        self._pending.pop(key, None)
        if state.total and state.rejected >= state.total:
            # The same kind of refusal the destination gave, so a refusal of the content is still bisected.
            raise state.refusal(state.reason)
        return PartialSuccess(state.rejected, state.reason) if state.rejected else None

    async def _send_part(self, state: _Pending[P], part: Part[P]) -> None:
        try:
            await self._post(part.payload)
        except PermanentError as exc:
            state.rejected += part.items
            state.reason = str(exc)
            state.refusal = type(exc)
        except Exception as exc:  # retryable, or unknown (the helper treats that as retryable): keep the part
            state.failures.append(exc)
            return
        state.parts.remove(part)
