"""The ``dns`` resolver: one name → the sorted, de-duplicated ``ip:port`` endpoints of the backends.

The IPs come from an injectable coroutine (``getaddrinfo_ips`` by default, so tests can feed their own lists).
A resolution that fails, times out or finds no address returns None: the caller keeps its last backends. Its
warning is logged once per distinct error, not once per interval, so a DNS outage does not flood the log.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .config import DnsResolverConfig

__all__ = ["DnsResolver", "ResolveFn", "format_endpoint", "getaddrinfo_ips"]

#: (hostname, port) → IP addresses.
ResolveFn = Callable[[str, int], Awaitable[Iterable[str]]]


async def getaddrinfo_ips(hostname: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def format_endpoint(ip: str, port: int) -> str:
    """``10.0.0.5:4317``, or ``[fd00::5]:4317`` for IPv6, as the Collector names its backends."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class DnsResolver:
    def __init__(self, config: DnsResolverConfig, logger: logging.LoggerAdapter[Any],
                 outcome: Callable[[bool], None]) -> None:
        self.config = config
        self.hostname = config.hostname.strip()
        self.port = int(config.port)
        self._logger = logger
        self._outcome = outcome
        self._last_error: str | None = None

    async def endpoints(self, resolve: ResolveFn) -> list[str] | None:
        """The backends' endpoints now, or None if this resolution failed (counted and, once per error, logged)."""
        try:
            async with asyncio.timeout(self.config.timeout):  # not wait_for: see the prometheus receiver's fetch
                ips = await resolve(self.hostname, self.port)
            endpoints = sorted({format_endpoint(ip, self.port) for ip in ips})
            if not endpoints:
                raise LookupError("the name resolved to no address")
        except Exception as exc:
            self._outcome(False)
            error = _describe(exc, self.config.timeout)
            if error != self._last_error:
                self._logger.warning("Could not resolve the backends; keeping the last known ones.",
                                     extra={"hostname": self.hostname, "error": error})
                self._last_error = error
            return None
        self._outcome(True)
        if self._last_error is not None:
            self._logger.info("Resolving the backends works again.",
                              extra={"hostname": self.hostname, "backends": len(endpoints)})
            self._last_error = None
        return endpoints


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
