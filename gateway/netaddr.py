"""Parsing ``host:port`` endpoints as the Collector writes them."""

from __future__ import annotations

__all__ = ["split_host_port"]


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
