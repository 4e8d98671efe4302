"""gRPC server ``keepalive`` takes effect on real connections, not only as channel arguments.

The client is a minimal HTTP/2 client on a real socket (preface, SETTINGS, PING, and reading what the server
sends), because pings and GOAWAY frames are what keepalive is about and a gRPC client library hides both. A grpc
client (the real OTLP exporter path) then shows that a connection closed by ``max_connection_age`` is replaced.
Pings are spaced by sleeping, so under load they only get further apart: each case is decided by an interval far
from the configured one in the direction that case needs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
import pytest

from gateway.component import Signal

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, PING, GOAWAY = 0x4, 0x6, 0x7
ACK = 0x1
ENHANCE_YOUR_CALM = 0xB
#: Generous bounds on waiting for the server, never asserted as durations: a hang fails instead of stalling.
WAIT_S = 30.0


def frame(kind: int, flags: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + (0).to_bytes(4, "big") + payload


@dataclass
class GoAway:
    error_code: int
    debug: bytes


@dataclass
class H2Client:
    """One HTTP/2 connection with no stream opened on it: an idle client connection as gRPC keepalive sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    goaway: GoAway | None = None
    acked: list[bytes] = field(default_factory=list)

    @classmethod
    async def connect(cls, address: str) -> H2Client:
        host, _, port = address.rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(PREFACE + frame(SETTINGS, 0))
        await writer.drain()
        return cls(reader, writer)

    async def _read_frame(self) -> tuple[int, int, bytes]:
        header = await self.reader.readexactly(9)
        kind, flags = header[3], header[4]
        payload = await self.reader.readexactly(int.from_bytes(header[:3], "big"))
        if kind == SETTINGS and not flags & ACK:
            self.writer.write(frame(SETTINGS, ACK))
            await self.writer.drain()
        elif kind == PING and flags & ACK:
            self.acked.append(payload)
        elif kind == GOAWAY:
            self.goaway = GoAway(int.from_bytes(payload[4:8], "big"), payload[8:])
        return kind, flags, payload

    async def ping(self, n: int) -> bool:
        """Send a PING; True once it is acknowledged, False when the server answers with GOAWAY instead."""
        payload = n.to_bytes(8, "big")
        self.writer.write(frame(PING, 0, payload))
        await self.writer.drain()
        async with asyncio.timeout(WAIT_S):
            while payload not in self.acked:
                try:
                    await self._read_frame()
                except asyncio.IncompleteReadError:
                    return False
                if self.goaway is not None:
                    return False
        return True

    async def until_closed(self) -> None:
        """Read until the server closes the connection."""
        async with asyncio.timeout(WAIT_S):
            while True:
                try:
                    await self._read_frame()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return

    def close(self) -> None:
        self.writer.close()


async def pings(address: str, count: int, spacing_s: float) -> H2Client:
    """``count`` pings on one idle connection, ``spacing_s`` apart or more; stops at a GOAWAY."""
    client = await H2Client.connect(address)
    for n in range(count):
        if not await client.ping(n):
            break
        await asyncio.sleep(spacing_s)
    return client


def keepalive(**policy: object) -> dict[str, object]:
    return {"keepalive": {"enforcement_policy": policy}}


async def test_pings_without_a_call_are_refused_when_permit_without_stream_is_false(start_receiver,
                                                                                     config_for) -> None:
    # min_time allows a ping every 10 ms, but only while a call is in flight: an idle client that pings is
    # abusive, and after grpc's allowance of strikes it is sent GOAWAY too_many_pings.
    rx = await start_receiver(config=config_for(keepalive(min_time="10ms", permit_without_stream=False),
                                                protocols=("grpc",)))
    client = await pings(rx.receiver.grpc_address, count=10, spacing_s=0.05)
    try:
        assert client.goaway == GoAway(ENHANCE_YOUR_CALM, b"too_many_pings")
        await client.until_closed()
    finally:
        client.close()
    await rx.send_valid("grpc")  # the server itself is unharmed


async def test_the_same_pings_are_fine_with_permit_without_stream(start_receiver, config_for) -> None:
    rx = await start_receiver(config=config_for(keepalive(min_time="10ms", permit_without_stream=True),
                                                protocols=("grpc",)))
    client = await pings(rx.receiver.grpc_address, count=10, spacing_s=0.05)
    try:
        assert client.goaway is None and len(client.acked) == 10
    finally:
        client.close()


async def test_pings_more_often_than_min_time_get_too_many_pings(start_receiver, config_for) -> None:
    rx = await start_receiver(config=config_for(keepalive(min_time="1h", permit_without_stream=True),
                                                protocols=("grpc",)))
    client = await pings(rx.receiver.grpc_address, count=10, spacing_s=0.01)
    try:
        assert client.goaway == GoAway(ENHANCE_YOUR_CALM, b"too_many_pings")
    finally:
        client.close()


@pytest.mark.parametrize(("parameter", "reason"), [("max_connection_age", b"max connection age"),
                                                   ("max_connection_idle", b"connection idle")])
async def test_the_server_closes_a_connection_after_max_connection_age_or_idle(start_receiver, config_for,
                                                                               parameter, reason) -> None:
    settings = {"keepalive": {"server_parameters": {parameter: "200ms", "max_connection_age_grace": "100ms"}}}
    rx = await start_receiver(config=config_for(settings, protocols=("grpc",)))
    client = await H2Client.connect(rx.receiver.grpc_address)
    try:
        # Without the setting the connection stays open (the ping tests above keep theirs for their pings).
        await client.until_closed()
        # grpc names the reason in the GOAWAY's debug data (its error code is not NO_ERROR).
        assert client.goaway is not None and client.goaway.debug == reason, client.goaway
    finally:
        client.close()


async def test_a_grpc_client_reconnects_after_max_connection_age(start_receiver, config_for) -> None:
    # A long grace: a call still in flight when the age passes (a slow machine) finishes on the old connection.
    settings = {"keepalive": {"server_parameters": {"max_connection_age": "200ms",
                                                    "max_connection_age_grace": "60s"}}}
    rx = await start_receiver(config=config_for(settings, protocols=("grpc",)))
    assert rx.channel is not None
    await rx.send_valid("grpc")
    # Wait for the server to close the channel's connection: the channel leaves READY.
    async with asyncio.timeout(WAIT_S):
        while rx.channel.get_state() is grpc.ChannelConnectivity.READY:
            await rx.channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
    await rx.send_valid("grpc")  # on a new connection
    assert len(rx.received(Signal.TRACES)) == 2
