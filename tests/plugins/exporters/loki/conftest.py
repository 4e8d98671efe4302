"""A Loki stand-in: ``POST /loki/api/v1/push`` on 127.0.0.1, decoding snappy+protobuf pushes with the project's
own protos (gateway.protos.loki) and JSON pushes, validating them as Loki does, failing on demand."""

from __future__ import annotations

import json
import re
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import cramjam
import pytest
from aiohttp import web

from gateway.protos.loki import push_pb2

PATH = "/loki/api/v1/push"
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass
class Stream:
    labels: dict[str, str]
    #: (timestamp ns, line, structured metadata)
    entries: list[tuple[int, str, dict[str, str]]]
    text: str = ""  # the label-set text, for protobuf pushes


@dataclass
class Push:
    tenant: str | None
    content_type: str
    content_encoding: str
    headers: dict[str, str]
    streams: list[Stream]
    at: float
    status: int = 204

    @property
    def accepted(self) -> bool:
        return self.status == 204


@dataclass
class LokiServer:
    pushes: list[Push] = field(default_factory=list)
    port: int = 0
    _script: deque[tuple[int, str, str | None]] = field(default_factory=deque)
    _runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(PATH, self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, n: int = 1, status: int = 503, message: str = "scripted failure",
                  retry_after: str | None = None) -> None:
        self._script.extend((status, message, retry_after) for _ in range(n))

    def accepted(self) -> list[Push]:
        return [p for p in self.pushes if p.accepted]

    def streams(self) -> list[Stream]:
        return [s for p in self.accepted() for s in p.streams]

    def entries(self) -> list[tuple[int, str, dict[str, str]]]:
        return [e for s in self.streams() for e in s.entries]

    async def _push(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp has undone Content-Encoding: gzip
        try:
            streams = self._decode(request.content_type, body)
        except ValueError as exc:
            return web.Response(status=400, text=str(exc))
        push = Push(request.headers.get("X-Scope-OrgID"), request.content_type,
                    request.headers.get("Content-Encoding", ""), dict(request.headers), streams, time.monotonic())
        self.pushes.append(push)
        if self._script:
            push.status, message, retry_after = self._script.popleft()
            headers = {"Retry-After": retry_after} if retry_after is not None else None
            return web.Response(status=push.status, text=message, headers=headers)
        return web.Response(status=204)

    @staticmethod
    def _decode(content_type: str, body: bytes) -> list[Stream]:
        if content_type == "application/json":
            document = json.loads(body)
            streams = []
            for stream in document["streams"]:
                entries = []
                for value in stream["values"]:
                    if not isinstance(value[0], str):
                        raise ValueError("timestamps must be strings of nanoseconds")
                    entries.append((int(value[0]), value[1], value[2] if len(value) > 2 else {}))
                streams.append(Stream(_valid(stream["stream"]), entries))
            return streams
        if content_type != "application/x-protobuf":
            raise ValueError(f"unsupported Content-Type {content_type!r}")
        request = push_pb2.PushRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
        return [Stream(_valid(parse_labels(s.labels)),
                       [(e.timestamp.seconds * 10**9 + e.timestamp.nanos, e.line,
                         {p.name: p.value for p in e.structuredMetadata}) for e in s.entries], s.labels)
                for s in request.streams]


def parse_labels(text: str) -> dict[str, str]:
    """``{a="x", b="y"}`` as Loki's parser reads it; duplicates are an error."""
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"labels {text!r}: not a label set")
    pairs = _LABEL.findall(text)
    rebuilt = "{" + ", ".join(f'{n}="{v}"' for n, v in pairs) + "}"
    if rebuilt != text:
        raise ValueError(f"labels {text!r}: cannot parse")
    labels: dict[str, str] = {}
    for name, value in pairs:
        if name in labels:
            raise ValueError(f"duplicate label name {name!r}")
        labels[name] = re.sub(r"\\(.)", lambda m: _UNESCAPE[m.group(1)], value)
    return labels


def _valid(labels: dict[str, str]) -> dict[str, str]:
    """Loki's checks: at least one label, valid names, none reserved, at most 15 (the default limit)."""
    if not labels:
        raise ValueError("error at least one label pair is required per stream")
    for name in labels:
        if not _NAME.match(name) or name.startswith("__"):
            raise ValueError(f"invalid label name {name!r}")
    if len(labels) > 15:
        raise ValueError(f"entry has {len(labels)} label names; limit 15")
    return labels


@pytest.fixture
async def loki() -> AsyncIterator[LokiServer]:
    server = LokiServer()
    await server.start()
    yield server
    await server.stop()
