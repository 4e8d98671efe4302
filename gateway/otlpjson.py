"""OTLP/JSON (docs/protocols.md §1.3): the proto3 JSON mapping, except that trace and span ids are hex strings.

Every other bytes field (``bytesValue``) stays base64, enums are integers, keys are lowerCamelCase, unknown keys
are ignored and 64-bit integers may arrive as strings or numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from gateway.errors import PermanentError

__all__ = ["decode", "encode", "to_dict"]

M = TypeVar("M", bound=Message)

# Only Span, Span.Link, LogRecord and Exemplar have keys of these names; attributes are {"key":..,"value":..}
# lists, so a user's attribute called "traceId" can never be mistaken for one.
# Their sizes are not checked here: a receiver refuses just the items with ids of the wrong size.
_ID_KEYS = frozenset({"traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"})


def _hex_to_b64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise PermanentError(f"{key} must be a hex string, got {value[:64]!r}") from None
                node[key] = base64.b64encode(raw).decode("ascii")
            elif isinstance(value, dict | list):
                _hex_to_b64(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _hex_to_b64(item)


def _b64_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            elif isinstance(value, dict | list):
                _b64_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _b64_to_hex(item)


def decode(data: bytes | str, message_type: type[M]) -> M:
    """Parse an OTLP/JSON body; raises ``PermanentError`` with a readable reason on any malformed input."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PermanentError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise PermanentError("invalid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise PermanentError(f"invalid OTLP/JSON: the top level must be an object, got {type(document).__name__}")
    try:
        _hex_to_b64(document)
    except RecursionError:
        raise PermanentError("invalid OTLP/JSON: nested too deeply") from None
    message = message_type()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, ValueError, TypeError, RecursionError) as exc:
        raise PermanentError(f"invalid OTLP/JSON: {exc}") from None
    return message


def to_dict(message: Message) -> dict[str, Any]:
    """The OTLP/JSON object for ``message`` (hex ids, integer enums, lowerCamelCase keys)."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    _b64_to_hex(document)
    return document


def encode(message: Message) -> bytes:
    """Compact OTLP/JSON bytes for ``message``."""
    return json.dumps(to_dict(message), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
