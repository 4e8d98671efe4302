"""Each server caps the bytes of requests in flight (``max_in_flight_size_mib``): a request that does not fit is
refused before it is decoded (before its HTTP body is read), retryable, and counted; once the requests in flight
are answered, the budget is free again."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from gateway.component import Signal
from gateway.testing import Sink, make_traces


class Holding(Sink):
    """Holds every batch until ``release`` is set: requests stay in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()

    async def consume_traces(self, batch: Any) -> None:
        self.arrived.set()
        await self.release.wait()
        await super().consume_traces(batch)


async def test_a_request_over_the_in_flight_budget_is_refused_retryable_and_the_budget_frees(
        start_receiver, config_for):
    sink = Holding()
    rx = await start_receiver(sink=sink, config=config_for(
        {"max_in_flight_size_mib": 1, "max_recv_msg_size_mib": 4},
        {"max_in_flight_size_mib": 1, "max_request_body_size": 4 << 20}))
    big = make_traces(3000, attributes={"note": "x" * 200})  # about 0.9 MB
    body = big.SerializeToString()
    assert 600_000 < len(body) < 1 << 20
    first = asyncio.create_task(rx.http("/v1/traces", body))
    await asyncio.wait_for(sink.arrived.wait(), 10)  # in flight, holding its reservation
    over = await rx.http("/v1/traces", body)
    assert over.status == 429 and over.headers["Retry-After"] == "1"
    assert "max_in_flight_size_mib" in over.message
    other_server = asyncio.create_task(rx.grpc(Signal.TRACES, body))  # its own budget, still free: admitted
    await asyncio.sleep(0.2)
    sink.release.set()
    assert (await first).status == 200
    assert (await other_server).code is grpc.StatusCode.OK
    assert (await rx.http("/v1/traces", body)).status == 200  # answered: the budget is free again
    assert rx.bad_requests("http", "overloaded") == 1
    assert sink.item_count(Signal.TRACES) == 3 * 3000
