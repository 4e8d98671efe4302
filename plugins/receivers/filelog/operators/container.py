"""The ``container`` operator: Docker json-file, CRI-O and containerd lines, partial-line reassembly, and the
k8s resource attributes of the ``/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`` path."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from .base import ErrorSink, Operator
from .config import ContainerConfig, parse_byte_size
from .entry import Entry
from .ops import ParseError, _SeverityStep, condition_of
from .timeparse import parse_rfc3339

__all__ = ["ContainerOp"]

#: CRI-O and containerd: "<RFC3339 time> <stream> <P|F> <log>"; they differ only in the time zone spelling.
_CRI = re.compile(r"(\S+) (stdout|stderr) ([^ ]*) ?(.*)", re.DOTALL)
_POD_PATH = re.compile(r"^.*/([^_/]+)_([^_/]+)_([a-f0-9\-]+)/([^._/]+)/(\d+)\.log$")
_FILE_PATH = "log.file.path"
#: Resources cached per file path; bounded because pods come and go.
_MAX_CACHED_PATHS = 10_000


class _Held:
    __slots__ = ("entry", "parts", "since", "size")

    def __init__(self, entry: Entry, part: str) -> None:
        self.entry = entry
        self.parts = [part]
        self.size = len(part)
        self.since = time.monotonic()


class ContainerOp(Operator):
    def __init__(self, config: ContainerConfig, outputs: tuple[str, ...], errors: ErrorSink) -> None:
        super().__init__(config.id, outputs, errors, condition_of(config.if_), config.on_error)
        self.format = config.format
        self.add_metadata = config.add_metadata_from_filepath
        self.max_log_size = parse_byte_size(config.max_log_size)
        self.severity = _SeverityStep(config.severity) if config.severity else None
        self._resources: dict[str, dict[str, Any]] = {}
        #: partial lines waiting for their final part, by (file path, stream)
        self._held: dict[tuple[Any, str], _Held] = {}

    def run(self, entries: list[Entry]) -> list[Entry]:
        out: list[Entry] = []
        condition = self.condition
        for entry in entries:
            if condition is not None and not condition.true_for(entry):
                out.append(entry)
                continue
            try:
                complete = self._parse(entry)
            except Exception as exc:
                self.errors.report(self.id, exc, entry, self.quiet, self.keep_on_error)
                if self.keep_on_error:
                    out.append(entry)
                continue
            if complete is not None:
                out.append(complete)
        return out

    def _parse(self, entry: Entry) -> Entry | None:
        """The entry to pass on now, or None while a partial line is held."""
        body = entry.body
        if not isinstance(body, str):
            raise ParseError(f"container expects a string body, got {type(body).__name__}")
        fmt = self.format or ("docker" if body.startswith("{") else "cri")
        if fmt == "docker":
            try:
                record = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise ParseError(f"not a docker json-file line: {exc}") from None
            if not isinstance(record, dict) or not isinstance(record.get("log"), str):
                raise ParseError("not a docker json-file line: no log field")
            log, stream, stamp = record["log"], str(record.get("stream", "")), record.get("time")
            partial = not log.endswith("\n")
            if not partial:
                log = log[:-1]
            tag = None
        else:
            match = _CRI.fullmatch(body)
            if match is None:
                raise ParseError("not a CRI-O or containerd line (<time> <stream> <P|F> <log>)")
            stamp, stream, tag, log = match.groups()
            partial = tag == "P"
        nanos = parse_rfc3339(stamp, None) if isinstance(stamp, str) else None
        if nanos is None:
            raise ParseError(f"time {stamp!r} is not RFC 3339")
        attributes = entry.attributes
        attributes["log.iostream"] = stream
        if tag is not None:
            attributes["logtag"] = tag
        if self.add_metadata:
            self._add_metadata(entry)
        key = (attributes.get(_FILE_PATH, entry.source), stream)
        held = self._held.get(key)
        if held is None and not partial:
            entry.body = log
            entry.timestamp = nanos
            return self._severity(entry)
        if held is None:
            entry.timestamp = nanos
            held = self._held[key] = _Held(entry, log)
        else:
            held.parts.append(log)
            held.size += len(log)
        if partial and (self.max_log_size <= 0 or held.size < self.max_log_size):
            return None
        del self._held[key]
        first = held.entry
        first.body = "".join(held.parts)
        if tag is not None:
            first.attributes["logtag"] = tag
        return self._severity(first)

    def _severity(self, entry: Entry) -> Entry:
        if self.severity is not None:
            self.severity.apply(entry)
        return entry

    def _add_metadata(self, entry: Entry) -> None:
        path = entry.attributes.get(_FILE_PATH)
        if not isinstance(path, str):
            raise ParseError("add_metadata_from_filepath needs the log.file.path attribute: set include_file_path: "
                             "true on the receiver, or add_metadata_from_filepath: false")
        resource = self._resources.get(path)
        if resource is None:
            match = _POD_PATH.match(path)
            if match is None:
                raise ParseError(f"{path} is not a /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log path")
            namespace, pod, uid, container, restarts = match.groups()
            resource = {"k8s.pod.name": pod, "k8s.pod.uid": uid, "k8s.container.name": container,
                        "k8s.container.restart_count": restarts, "k8s.namespace.name": namespace}
            if len(self._resources) >= _MAX_CACHED_PATHS:
                self._resources.clear()
            self._resources[path] = resource
        entry.resource = resource if not entry.resource else {**entry.resource, **resource}

    def held_offset(self, source: Any) -> int | None:
        offsets = [h.entry.offset for h in self._held.values() if h.entry.source is source]
        return min(offsets) if offsets else None

    def flush(self, older_than: float | None) -> list[Entry]:
        """Pass on partial lines whose final part has not come for ``older_than`` seconds (None: all)."""
        now = time.monotonic()
        out: list[Entry] = []
        for key, held in list(self._held.items()):
            if older_than is None or now - held.since >= older_than:
                del self._held[key]
                held.entry.body = "".join(held.parts)
                out.append(self._severity(held.entry))
        return out
