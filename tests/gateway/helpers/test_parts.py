"""PartSender: a batch sent as several requests, where a retry resends only what has not arrived."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import PermanentError, RetryableError
from gateway.helpers.exporter import PartialSuccess
from gateway.helpers.parts import Part, PartSender, Split
from gateway.testing import make_traces


class Destination:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.fail: dict[str, list[Exception]] = {}
        self.hang: set[str] = set()

    async def post(self, payload: str) -> None:
        errors = self.fail.get(payload)
        if errors:
            raise errors.pop(0)
        if payload in self.hang:
            self.hang.discard(payload)
            await asyncio.sleep(10)
        self.received.append(payload)


def splitter(*names: str, rejected: int = 0):  # type: ignore[no-untyped-def]
    async def split(batch: object) -> Split[str]:
        return Split([Part(name, 2) for name in names], rejected, "bad ids" if rejected else "")

    return split


async def test_a_retry_sends_only_the_parts_that_failed() -> None:
    destination = Destination()
    destination.fail["b"] = [RetryableError("busy", retry_after=0.5), RetryableError("busy")]
    sender = PartSender(splitter("a", "b", "c"), destination.post)
    batch = make_traces(1)
    for _ in range(2):
        with pytest.raises(RetryableError, match="busy"):
            await sender.send(batch)
    assert await sender.send(batch) is None
    assert sorted(destination.received) == ["a", "b", "c"]
    assert sender.pending == 0


async def test_the_longest_retry_after_wins() -> None:
    destination = Destination()
    destination.fail = {"a": [RetryableError("a", retry_after=1)], "b": [RetryableError("b", retry_after=3)]}
    sender = PartSender(splitter("a", "b"), destination.post)
    with pytest.raises(RetryableError) as info:
        await sender.send(make_traces(1))
    assert info.value.retry_after == 3


async def test_refused_parts_and_left_out_items_are_rejected_not_retried() -> None:
    destination = Destination()
    destination.fail["a"] = [PermanentError("HTTP 400: too old")]
    sender = PartSender(splitter("a", "b", rejected=1), destination.post)
    assert await sender.send(make_traces(1)) == PartialSuccess(3, "HTTP 400: too old")
    assert destination.received == ["b"]
    destination.fail["a"] = [PermanentError("no")]
    with pytest.raises(PermanentError, match="no"):
        await PartSender(splitter("a"), destination.post).send(make_traces(1))


async def test_a_timeout_keeps_the_parts_not_yet_sent() -> None:
    destination = Destination()
    destination.hang.add("b")
    sender = PartSender(splitter("a", "b"), destination.post)
    batch = make_traces(1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sender.send(batch), 0.2)
    assert destination.received == ["a"] and sender.pending == 1
    await sender.send(batch)
    assert destination.received == ["a", "b"]


async def test_batches_given_up_on_are_forgotten_beyond_capacity() -> None:
    destination = Destination()
    sender = PartSender(splitter("a"), destination.post, capacity=2)
    batches = [make_traces(1) for _ in range(4)]
    for batch in batches:
        destination.fail["a"] = [RetryableError("down")]
        with pytest.raises(RetryableError):
            await sender.send(batch)
    assert sender.pending == 2
