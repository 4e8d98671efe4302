"""Every error otelgw raises, and the one place where they become gRPC and HTTP statuses.

The tree::

    OtelgwError
    ├── ConfigError            the configuration is wrong; carries every message, each with its key path
    ├── PluginError            a plugin fails to load, implements an unknown hook, or clashes with another
    └── ConsumeError           a batch could not be taken by the next stage
        ├── RetryableError     transient: try again later (gRPC UNAVAILABLE, HTTP 503)
        │   └── OverloadedError  the gateway sheds load (gRPC RESOURCE_EXHAUSTED + RetryInfo, HTTP 429 + Retry-After)
        ├── PermanentError     the data itself is bad: never retry (gRPC INVALID_ARGUMENT, HTTP 400)
        │   ├── InvalidDataError  a destination refused the content: a part of the batch may still be taken
        │   └── TooLargeError  over the configured size limit (gRPC RESOURCE_EXHAUSTED, HTTP 413)
        └── SkipBatchError     a processor decided to drop this batch on purpose; not an error to the sender

Receivers translate with :func:`status_for`, so the mapping of
the OTLP specification's status-code table lives here and nowhere else. Anything that is not a ``ConsumeError``
(a bug in a component) is answered as retryable: the client keeps its data and the gateway keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc

__all__ = [
    "ConfigError",
    "ConsumeError",
    "InvalidDataError",
    "OtelgwError",
    "OverloadedError",
    "PermanentError",
    "PluginError",
    "RetryableError",
    "SkipBatchError",
    "StatusMapping",
    "TooLargeError",
    "status_for",
]


class OtelgwError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(OtelgwError):
    """One or more configuration errors, each message starting with its YAML key path."""

    def __init__(self, messages: str | Iterable[str]) -> None:
        self.messages: list[str] = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("\n".join(self.messages))

    def prefixed(self, path: str) -> ConfigError:
        """The same errors under ``path`` (``processors::batch``), joined with the Collector's ``::``."""
        return ConfigError(f"{path}::{m}" if path else m for m in self.messages)


class PluginError(OtelgwError):
    """Plugins could not be loaded or registered consistently."""


class ConsumeError(OtelgwError):
    """A stage refused a batch."""


class RetryableError(ConsumeError):
    """Transient failure; the sender should retry after ``retry_after`` seconds (or its own backoff)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OverloadedError(RetryableError):
    """The gateway is over a limit it will recover from (memory, full queue)."""


class PermanentError(ConsumeError):
    """The data is bad and resending it cannot help."""


class InvalidDataError(PermanentError):
    """A destination refused what the batch holds (gRPC INVALID_ARGUMENT, HTTP 400), not how it was sent.

    Exporters bisect a batch refused with this error or with ``TooLargeError``: the refusal may be about a
    single item, and the other items of the batch are then still taken.
    """


class TooLargeError(PermanentError):
    """A request over the configured maximum size."""


class SkipBatchError(ConsumeError):
    """A processor dropped the batch deliberately; receivers answer success."""


@dataclass(frozen=True)
class StatusMapping:
    """How one error is answered: gRPC code, HTTP status, message, and an optional retry delay in seconds."""

    grpc_code: grpc.StatusCode
    http_status: int
    message: str
    retry_after: float | None = None


def status_for(exc: BaseException) -> StatusMapping:
    """The gRPC and HTTP answer to a failed ``consume_*`` call (see module docstring)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, TooLargeError):
        return StatusMapping(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, message)
    if isinstance(exc, PermanentError):
        return StatusMapping(grpc.StatusCode.INVALID_ARGUMENT, 400, message)
    if isinstance(exc, OverloadedError):
        # RESOURCE_EXHAUSTED is only retryable with RetryInfo, so an overload always carries a delay.
        delay = exc.retry_after if exc.retry_after is not None else 1.0
        return StatusMapping(grpc.StatusCode.RESOURCE_EXHAUSTED, 429, message, delay)
    if isinstance(exc, RetryableError):
        return StatusMapping(grpc.StatusCode.UNAVAILABLE, 503, message, exc.retry_after)
    if isinstance(exc, SkipBatchError):
        return StatusMapping(grpc.StatusCode.OK, 200, message)
    return StatusMapping(grpc.StatusCode.UNAVAILABLE, 503, f"internal error: {message}")

