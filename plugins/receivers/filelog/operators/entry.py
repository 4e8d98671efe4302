"""The stanza entry an operator sees, and field paths into it (``body.a``, ``attributes["k.8s"]``, ``resource.x``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["Entry", "Field", "FieldError"]


class Entry:
    """One log record on its way through the operators; becomes a ``LogRecord`` at the end of the pipeline.

    ``source`` and ``offset`` say where it came from (the file reader, the byte offset of its first byte), so a
    stateful operator that holds entries back (the container operator's partial lines) can tell the reader how
    far it may checkpoint.
    """

    __slots__ = ("attributes", "body", "observed", "offset", "resource", "severity", "severity_text", "source",
                 "timestamp")

    def __init__(self, body: Any, attributes: dict[str, Any], observed: int, source: Any = None,
                 offset: int = 0) -> None:
        self.body = body
        self.attributes = attributes
        #: Resource attributes; None (the common case) or a dict shared by the entries of one file.
        self.resource: dict[str, Any] | None = None
        self.timestamp = 0
        self.observed = observed
        self.severity = 0
        self.severity_text = ""
        self.source = source
        self.offset = offset

    def copy(self) -> Entry:
        other = Entry(_deep(self.body), _deep(self.attributes), self.observed, self.source, self.offset)
        other.resource = None if self.resource is None else _deep(self.resource)
        other.timestamp, other.severity, other.severity_text = self.timestamp, self.severity, self.severity_text
        return other

    def __repr__(self) -> str:
        return (f"Entry(body={self.body!r}, attributes={self.attributes!r}, resource={self.resource!r}, "
                f"timestamp={self.timestamp}, severity={self.severity}, severity_text={self.severity_text!r})")


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


class FieldError(ValueError):
    """A field path that cannot be parsed."""


_ROOTS = ("body", "attributes", "resource")
_PART = re.compile(r"""\.([^.\[\]"]+)|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*'([^']*)'\s*\]""")


class Field:
    """A path into an entry: a root (``body``, ``attributes``, ``resource``) and keys into nested maps."""

    __slots__ = ("keys", "root")

    def __init__(self, root: str, keys: tuple[str, ...]) -> None:
        self.root = root
        self.keys = keys

    @classmethod
    def parse(cls, text: str) -> Field:
        text = str(text).strip()
        root = next((r for r in _ROOTS if text == r or text.startswith((r + ".", r + "["))), None)
        if root is None:
            raise FieldError(f"{text!r} is not a field: it must start with body, attributes or resource")
        keys: list[str] = []
        pos = len(root)
        while pos < len(text):
            match = _PART.match(text, pos)
            if match is None:
                raise FieldError(f"{text!r} is not a field: cannot read it from position {pos}")
            keys.append(next(g for g in match.groups() if g is not None).replace('\\"', '"'))
            pos = match.end()
        return cls(root, tuple(keys))

    def __str__(self) -> str:
        return self.root + "".join(f".{k}" if re.fullmatch(r"[A-Za-z0-9_]+", k) else f'["{k}"]' for k in self.keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and (self.root, self.keys) == (other.root, other.keys)

    def __hash__(self) -> int:
        return hash((self.root, self.keys))

    def _container(self, entry: Entry) -> Any:
        if self.root == "body":
            return entry.body
        if self.root == "attributes":
            return entry.attributes
        return entry.resource

    def getter(self) -> Callable[[Entry], Any]:
        """``get`` specialised for this path (one call per entry on hot paths)."""
        keys = self.keys
        if self.root == "body" and not keys:
            return lambda e: e.body
        if self.root == "attributes" and len(keys) == 1:
            key = keys[0]
            return lambda e: e.attributes.get(key)
        if self.root == "body" and len(keys) == 1:
            key = keys[0]
            return lambda e: e.body.get(key) if type(e.body) is dict else None
        return self.get

    def get(self, entry: Entry) -> Any:
        """The value, or None where the path does not exist."""
        value = self._container(entry)
        for key in self.keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    def exists(self, entry: Entry) -> bool:
        value = self._container(entry)
        for key in self.keys:
            if not isinstance(value, dict) or key not in value:
                return False
            value = value[key]
        return value is not None or self.root != "body" or bool(self.keys)

    def set(self, entry: Entry, value: Any) -> None:
        """Set the value, creating maps on the way (a non-map in the way is replaced by a map, as in stanza)."""
        if not self.keys:
            if self.root == "body":
                entry.body = value
            elif not isinstance(value, dict):
                raise TypeError(f"{self.root} can only be set to a map, got {type(value).__name__}")
            elif self.root == "attributes":
                entry.attributes = dict(value)
            else:
                entry.resource = dict(value)
            return
        if self.root == "body":
            if not isinstance(entry.body, dict):
                entry.body = {}
            target = entry.body
        elif self.root == "attributes":
            target = entry.attributes
        else:
            if entry.resource is None:
                entry.resource = {}
            else:
                entry.resource = dict(entry.resource)  # resource dicts are shared per file: copy on write
            target = entry.resource
        for key in self.keys[:-1]:
            nxt = target.get(key)
            if not isinstance(nxt, dict):
                nxt = target[key] = {}
            target = nxt
        target[self.keys[-1]] = value

    def delete(self, entry: Entry) -> Any:
        """Remove the value and return it (None when absent)."""
        if not self.keys:
            if self.root == "body":
                value, entry.body = entry.body, None
            elif self.root == "attributes":
                value, entry.attributes = entry.attributes, {}
            else:
                value, entry.resource = entry.resource, None
            return value
        target = self._container(entry)
        for key in self.keys[:-1]:
            if not isinstance(target, dict):
                return None
            target = target.get(key)
        if not isinstance(target, dict) or self.keys[-1] not in target:
            return None
        if self.root == "resource":
            entry.resource = dict(entry.resource or {})
            return Field("resource", self.keys)._delete_in(entry.resource)
        return target.pop(self.keys[-1])

    def _delete_in(self, root: dict[str, Any]) -> Any:
        target: Any = root
        for key in self.keys[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict):
            if len(self.keys) > 1:
                # copy the nested map too, so the shared original keeps its key
                parent: Any = root
                for key in self.keys[:-2]:
                    parent = parent[key]
                parent[self.keys[-2]] = target = dict(target)
            return target.pop(self.keys[-1], None)
        return None
