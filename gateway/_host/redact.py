"""One redaction mechanism for every place a configuration value can be printed.

``SECRET_KEYS`` lists the configuration keys that hold secrets (tokens, passwords, HMAC keys, inline htpasswd,
credential headers). Every time a configuration is read (``otelgw validate``, start-up, reload), the values under
those keys are registered here; from then on they are replaced by ``<redacted>`` in:

- configuration error messages (``otelgw validate``, the reload answer, the reload log line),
- every log line the gateway writes (``configure_logging`` installs :class:`RedactingFilter`), debug included,
- admin answers built from error text.

Values are only ever added while the process runs: a secret replaced by a reload may still sit in a message
about the old configuration. Values shorter than ``MIN_LENGTH`` are not registered: replacing every ``a`` would
ruin the log and such a value protects nothing. Credentials a *client* sends are not known in advance, so log
lines are also scrubbed of anything after an ``Authorization``-like header name.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "SECRET_HEADER", "SECRET_KEYS", "RedactingFilter", "is_secret_key", "redact", "register",
           "register_config", "secret_values"]

MASK = "<redacted>"
MIN_LENGTH = 4

#: Configuration keys (the last part of a key path) whose values are secrets, wherever they appear.
SECRET_KEYS = frozenset({
    "token",          # service::admin, bearertokenauth
    "tokens",         # bearertokenauth
    "password",       # any client block with basic credentials
    "hmac_key",       # redaction processor
    "inline",         # basicauth htpasswd::inline (user:password lines)
    "api_key", "apikey",
    "secret", "client_secret",
    "bearer_token",
})

#: Header names (under any ``headers`` mapping) whose values are secrets.
SECRET_HEADER = re.compile(r"(?i)^(authorization|proxy-authorization|cookie|x-api-key|api-key|.*token.*|.*secret.*"
                           r"|.*password.*|.*api[-_]?key.*)$")

# Client-sent credentials inside a log message (aiohttp's "invalid header" errors print the header line).
_HEADER_IN_TEXT = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|x-api-key)(\W{1,4})[^\r\n'\",}]*")


def is_secret_key(path: tuple[str, ...]) -> bool:
    """``path``: the key path as a tuple; true when the value under it is a secret."""
    if not path:
        return False
    last = str(path[-1]).lower()
    if len(path) >= 2 and str(path[-2]).lower() == "detectors":
        return False  # redaction's detectors: `api_key: mask` names an action, and "mask" is no secret
    if last in SECRET_KEYS:
        return True
    return len(path) >= 2 and str(path[-2]).lower() == "headers" and bool(SECRET_HEADER.match(last))


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str]) -> None:
        new = {v for v in values if len(v) >= MIN_LENGTH} - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            # Longest first, so a secret that contains another is replaced whole.
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _HEADER_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)

    def values(self) -> frozenset[str]:
        return frozenset(self._values)


_registry = _Registry()


def _pieces(value: str) -> list[str]:
    """A secret and the parts of it that are secrets on their own (``Bearer x`` → x; ``user:pw`` lines → pw)."""
    pieces = [value]
    for line in value.splitlines():
        line = line.strip()
        pieces.append(line)
        _, sep, password = line.partition(":")
        if sep:
            pieces.append(password)
        _, sep, credential = line.partition(" ")
        if sep:
            pieces.append(credential.strip())
    return pieces


def secret_values(node: Any, path: tuple[str, ...] = ()) -> set[str]:
    """Every secret string in a raw configuration tree (values under ``SECRET_KEYS``), with their parts."""
    found: set[str] = set()
    if isinstance(node, Mapping):
        for key, value in node.items():
            found |= secret_values(value, (*path, str(key)))
    elif isinstance(node, list | tuple):
        secret_list = is_secret_key(path)
        for item in node:
            if secret_list and isinstance(item, str | int | float):
                found.update(_pieces(str(item)))
            else:
                found |= secret_values(item, path)
    elif is_secret_key(path) and isinstance(node, str | int | float) and not isinstance(node, bool):
        found.update(_pieces(str(node)))
    return found


def register(values: Iterable[str]) -> None:
    _registry.add(values)


def register_config(raw: Any) -> None:
    """Register every secret of a raw (merged, env-expanded) configuration."""
    _registry.add(secret_values(raw))


def redact(text: str) -> str:
    """``text`` with every registered secret, and any header credential, replaced by ``<redacted>``."""
    return _registry.redact(text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, arguments and extra fields with ``redact`` before any handler formats it."""

    _PLAIN = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        for key, value in list(vars(record).items()):
            if key not in self._PLAIN and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
