"""Hostile HTTP clients: a bound on open connections, and deadlines for request heads and bodies.

A client that opens connections and never finishes a request (slowloris) would otherwise hold sockets,
buffers and handler tasks for as long as it likes. Three bounds apply to every OTLP/HTTP connection:

- ``max_connections``: a connection over the bound is closed as soon as it is accepted. The first refusal of a
  burst is logged (then at most once a minute) and each one counts as a bad request ``too_many_connections``.
- ``read_header_timeout``: once the first byte of a request head has arrived, the whole head must arrive within
  this long, else the connection is closed (counted as ``slow_header``).
- ``idle_timeout``: a connection with no request under way is closed after this long (aiohttp's keep-alive
  timer, which runs from the connection's start and from each answer), so one that never sends a byte goes too.
- ``read_timeout``: the body must have arrived this long after its head; the server reads it under this
  deadline (``HttpServer._read_body``) and answers ``408`` and closes the connection when it passes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["GuardedServer"]

#: A refusal is logged at most this often while refusals go on.
_LOG_EVERY_S = 60.0


class GuardedServer(web.Server):
    """An aiohttp low-level server that closes connections over ``max_connections`` (0 = no bound)."""

    def __init__(self, handler: Any, *, max_connections: int, read_header_timeout: float, idle_timeout: float,
                 on_refused: Callable[[], None], on_slow_header: Callable[[], None],
                 guard_logger: logging.LoggerAdapter[Any], **kwargs: Any) -> None:
        super().__init__(handler, keepalive_timeout=idle_timeout, **kwargs)
        self.max_connections = max_connections
        self.read_header_timeout = read_header_timeout
        self.on_slow_header = on_slow_header
        self.open_connections = 0
        self._on_refused = on_refused
        self._guard_logger = guard_logger
        self._logged_at = float("-inf")

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)

    def admit(self) -> bool:
        if self.max_connections and self.open_connections >= self.max_connections:
            self._on_refused()
            now = time.monotonic()
            if now - self._logged_at >= _LOG_EVERY_S:
                self._logged_at = now
                self._guard_logger.warning(
                    "OTLP/HTTP connection refused: max_connections reached; raise it, or look for clients that "
                    "hold connections open", extra={"max_connections": self.max_connections})
            return False
        self.open_connections += 1
        return True


class _GuardedHandler(RequestHandler):
    _refused = False
    _head_deadline: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        server = self._manager
        starts_head = self._head_deadline is None and self._current_request is None
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # a whole head arrived: its deadline is met
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None
        elif starts_head and isinstance(server, GuardedServer) and not self._force_close:
            self._head_deadline = self._loop.call_later(server.read_header_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        server = self._manager
        if isinstance(server, GuardedServer):
            server.on_slow_header()
        self.force_close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._manager
        assert isinstance(server, GuardedServer)
        if not server.admit():
            self._refused = True
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        server = self._manager
        if isinstance(server, GuardedServer):
            server.open_connections -= 1
        super().connection_lost(exc)
