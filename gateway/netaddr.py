"""Parsing ``host:port`` endpoints as the Collector writes them."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

__all__ = ["ListenError", "format_addresses", "host_name", "is_ip", "listen_error", "split_host_port"]


def host_name(header: str) -> str:
    """The host part of a Host header or URL authority: ``[::1]:80`` → ``::1``, ``Example.COM:1`` → ``example.com``."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


def is_ip(name: str) -> bool:
    """True when ``name`` is an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def split_host_port(address: str) -> tuple[str, int]:
    """``"0.0.0.0:4317"`` → ``("0.0.0.0", 4317)``; ``"[::1]:80"`` → ``("::1", 80)``; ``":4317"`` → all interfaces."""
    text = address.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid endpoint {address!r}: expected host:port, e.g. 0.0.0.0:4317")
    return host or "0.0.0.0", int(port)


class ListenError(OSError):
    """A server could not bind its endpoint; the message is one line naming the component and the endpoint."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _probe(endpoint: str) -> int | None:
    """The errno binding ``endpoint`` gives now (grpc only says "Failed to bind"), or None when it binds."""
    try:
        host, port = split_host_port(endpoint)
        with socket.create_server((host, port)):
            return None
    except (OSError, ValueError) as exc:
        return getattr(exc, "errno", None)


def listen_error(component: str, endpoint: str, exc: BaseException) -> ListenError:
    """``health_check cannot listen on 0.0.0.0:13133: address already in use``, whatever raised it."""
    errno = getattr(exc, "errno", None)
    if not isinstance(errno, int) or not errno:
        errno = _probe(endpoint)
    reason = os.strerror(errno).lower() if errno else str(exc)
    error = ListenError(f"{component} cannot listen on {endpoint}: {reason}")
    error.errno = errno
    return error


def format_addresses(addresses: list[Any]) -> str:
    """The addresses an aiohttp runner bound (``runner.addresses``), as ``host:port`` joined with commas."""
    return ", ".join(f"[{a[0]}]:{a[1]}" if ":" in str(a[0]) else f"{a[0]}:{a[1]}" for a in addresses)
