"""Hostile OTLP/HTTP clients (slowloris): heads and bodies that never finish, and too many connections.

Real sockets against a real receiver; each case runs next to valid requests that must still arrive.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

HEAD = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"


async def closed_by_server(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, float]:
    """Read until the server closes the connection; what it sent, and after how long."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit)
    return data, time.monotonic() - started


async def open_to(rx) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:  # type: ignore[no-untyped-def]
    host, port = rx.receiver.http_address.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def test_a_head_that_never_finishes_is_cut_off(start_receiver, config_for):  # type: ignore[no-untyped-def]
    rx = await start_receiver(config=config_for(http_settings={"read_header_timeout": "300ms"}))

    async def dribble() -> float:
        reader, writer = await open_to(rx)
        writer.write(HEAD)  # and never the blank line that ends the head
        for _ in range(3):
            await asyncio.sleep(0.05)
            writer.write(b"X-Slow: 1\r\n")
        _, after = await closed_by_server(reader, 10)
        writer.close()
        return after

    after = await rx.still_serving("http", dribble)
    assert after < 5  # cut at read_header_timeout, not left open
    assert rx.bad_requests("http", "slow_header") == 1
    assert rx.all_bad_requests() == 1


async def test_a_connection_that_never_sends_a_byte_is_closed(start_receiver, config_for):  # type: ignore[no-untyped-def]
    rx = await start_receiver(config=config_for(http_settings={"idle_timeout": "300ms"}))
    reader, writer = await open_to(rx)
    data, after = await closed_by_server(reader, 10)
    writer.close()
    assert data == b"" and after < 5


async def test_a_body_that_trickles_gets_408_and_the_connection_closed(start_receiver, config_for):  # type: ignore[no-untyped-def]
    rx = await start_receiver(config=config_for(http_settings={"read_timeout": "300ms"}))

    async def trickle() -> bytes:
        reader, writer = await open_to(rx)
        writer.write(HEAD + b"Content-Length: 1000\r\n\r\n" + b"\x0a")
        answer, _ = await closed_by_server(reader, 10)
        writer.close()
        return answer

    answer = await rx.still_serving("http", trickle)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"read_timeout" in answer
    assert rx.bad_requests("http", "slow_body") == 1
    assert rx.all_bad_requests() == 1


async def test_connections_over_the_bound_are_closed_logged_once_and_counted(
        start_receiver, config_for, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    rx = await start_receiver(config=config_for(http_settings={"max_connections": 3}))
    held = [await open_to(rx) for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="otelgw"):
        for _ in range(4):
            reader, writer = await open_to(rx)
            data, _ = await closed_by_server(reader, 5)
            assert data == b""
            writer.close()
    assert rx.bad_requests("http", "too_many_connections") == 4
    assert [r.getMessage() for r in caplog.records].count(
        "OTLP/HTTP connection refused: max_connections reached; raise it, or look for clients that hold "
        "connections open") == 1
    for _, writer in held:  # once they go, new connections are served again
        writer.close()
        await writer.wait_closed()
    for attempt in range(100):  # the server sees the hang-ups asynchronously
        try:
            await rx.send_valid("http")
            break
        except aiohttp.ClientError:
            assert attempt < 99, "still refusing after the held connections were closed"
            await asyncio.sleep(0.02)
