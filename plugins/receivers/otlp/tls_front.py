"""TLS in Python in front of the gRPC server, for TLS version bounds grpcio cannot set.

grpcio's server credentials take no minimum or maximum TLS version (grpc core always offers 1.2 and 1.3). When
``tls::min_version: "1.3"`` or ``tls::max_version: "1.2"`` narrows that, the receiver terminates TLS here with
Python's ``ssl`` (which honours both, plus the receiver's certificate rotation and client CA) and pipes the
decrypted HTTP/2 to the gRPC server, which then listens in plaintext on a loopback port only this process knows.
Every byte crosses Python once more, so this is used only when the bounds ask for it; gRPC's own TLS otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from gateway import ReloadingServerTLS, format_addresses, listen_error, shared_ports, split_host_port

__all__ = ["TlsFront", "needs_front"]

_CHUNK = 256 * 1024


def needs_front(tls: ReloadingServerTLS | None) -> bool:
    """True when the configured TLS versions are narrower than what grpc core always offers."""
    return tls is not None and (tls.config.min_version == "1.3" or tls.config.max_version == "1.2")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # either side hung up: the other is closed below
    finally:
        writer.close()


class TlsFront:
    """Accepts TLS on ``endpoint`` and forwards each connection to ``127.0.0.1:<backend_port>``."""

    def __init__(self, endpoint: str, tls: ReloadingServerTLS, backend_port: int) -> None:
        self.endpoint = endpoint
        self.tls = tls
        self.backend_port = backend_port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        #: Every address bound.
        self.listening = ""

    async def start(self) -> int:
        host, port = split_host_port(self.endpoint)
        try:
            self._server = await asyncio.start_server(self._accept, host, port, ssl=self.tls.ssl_context,
                                                      ssl_handshake_timeout=10.0, reuse_port=shared_ports() or None)
        except OSError as exc:
            raise listen_error("otlp receiver (gRPC)", self.endpoint, exc) from None
        addresses = [s.getsockname() for s in self._server.sockets]
        self.listening = format_addresses(addresses)
        return int(addresses[0][1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        except OSError:
            writer.close()
            self._connections.discard(task)
            return
        try:
            await asyncio.gather(_pipe(reader, backend_writer), _pipe(backend_reader, writer))
        finally:
            self._connections.discard(task)

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        """After the gRPC server has drained: end the connections still open."""
        self.stop_accepting()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
