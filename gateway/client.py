"""Who sent a batch: the request's metadata, as the Collector's ``client.Info`` travels in its context.

A receiver with ``include_metadata: true`` attaches the request's headers (gRPC metadata) while it hands the batch
on; everything awaited inside the hand-over sees them through :func:`current`, as asyncio passes a task's context
down the awaits. Components that keep a batch for later carry the info with it and attach it again when they
hand the batch on: the exporter helper's in-memory queue does; the batch processor does with ``metadata_keys``
(a batch merged from several clients without them has no single sender, so it carries none, as in the
Collector). Readers: the attributes and resource processors' ``from_context``, ``headers_setter``, batch
``metadata_keys``.

    with client.attached(ClientInfo.of(headers, peer)):
        await next_consumer.consume_traces(batch)
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["ClientInfo", "attached", "current", "from_context"]

#: Headers not kept as metadata: they describe this hop's transport, not the sender. (Credentials are kept, as
#: in the Collector, so headers_setter can pass a tenant's token on; metadata is never logged.)
_TRANSPORT_HEADERS = frozenset({"content-length", "content-type", "content-encoding", "accept-encoding",
                                "connection", "host", "transfer-encoding", "te", "grpc-accept-encoding",
                                "grpc-encoding", "grpc-timeout"})


@dataclass(frozen=True)
class ClientInfo:
    #: Header (metadata) name, lower-case → its values in the order received.
    metadata: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The sender's address as the transport saw it (``127.0.0.1:50512``); empty when unknown.
    address: str = ""

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str | bytes]], address: str = "") -> ClientInfo:
        """From (name, value) pairs as a transport hands them over; binary and transport headers are left out."""
        metadata: dict[str, list[str]] = {}
        for name, value in pairs:
            key = name.lower()
            if isinstance(value, str) and key not in _TRANSPORT_HEADERS and not key.startswith(":"):
                metadata.setdefault(key, []).append(value)
        return cls({key: tuple(values) for key, values in metadata.items()}, address)

    def get(self, key: str) -> tuple[str, ...]:
        return self.metadata.get(key.lower(), ())


_CURRENT: contextvars.ContextVar[ClientInfo | None] = contextvars.ContextVar("otelgw_client_info", default=None)


def current() -> ClientInfo | None:
    """The sender of the batch being handled, or None (no include_metadata, or a batch of several senders)."""
    return _CURRENT.get()


@contextmanager
def attached(info: ClientInfo | None) -> Iterator[None]:
    """Make ``info`` the current sender for what runs inside (None: no sender)."""
    token = _CURRENT.set(info)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def from_context(key: str) -> str | None:
    """A ``from_context`` value as the Collector's processors read it: ``metadata.<name>`` (or a bare header
    name) from the request's metadata, several values joined with ``;``; ``client.address``. None when absent."""
    info = _CURRENT.get()
    if info is None:
        return None
    if key == "client.address":
        return info.address or None
    name = key[len("metadata."):] if key.startswith("metadata.") else key
    values = info.get(name)
    return ";".join(values) if values else None
