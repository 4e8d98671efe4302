"""A Jaeger collector stand-in: api_v2 ``CollectorService/PostSpans`` over gRPC on 127.0.0.1, implemented with
the project's own generated protos (gateway.protos.jaeger), recording every request and failing on demand."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway.protos.jaeger.api_v2 import collector_pb2, collector_pb2_grpc, model_pb2


@dataclass
class PostSpans:
    batch: model_pb2.Batch
    metadata: dict[str, str]
    at: float
    accepted: bool


class JaegerCollector(collector_pb2_grpc.CollectorServiceServicer):
    def __init__(self) -> None:
        self.requests: list[PostSpans] = []
        self.port = 0
        self._script: deque[tuple[grpc.StatusCode, str, float | None]] = deque()
        self._server: grpc.aio.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = grpc.aio.server()
        collector_pb2_grpc.add_CollectorServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)

    def fail_next(self, n: int = 1, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
                  message: str = "scripted failure", retry_delay: float | None = None) -> None:
        self._script.extend((code, message, retry_delay) for _ in range(n))

    async def PostSpans(self, request: collector_pb2.PostSpansRequest,  # the generated servicer's name
                        context: Any) -> collector_pb2.PostSpansResponse:
        failure = self._script.popleft() if self._script else None
        metadata = {m.key: m.value for m in context.invocation_metadata() or ()}
        self.requests.append(PostSpans(request.batch, metadata, time.monotonic(), failure is None))
        if failure is not None:
            code, message, retry_delay = failure
            trailers: tuple[tuple[str, bytes], ...] = ()
            if retry_delay is not None:
                delay = duration_pb2.Duration()
                delay.FromNanoseconds(int(retry_delay * 1e9))
                detail = any_pb2.Any()
                detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
                status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
                trailers = (("grpc-status-details-bin", status.SerializeToString()),)
            await context.abort(code, message, trailing_metadata=trailers)
        return collector_pb2.PostSpansResponse()

    def batches(self) -> list[model_pb2.Batch]:
        return [r.batch for r in self.requests if r.accepted]

    def spans(self) -> list[model_pb2.Span]:
        return [span for batch in self.batches() for span in batch.spans]


@pytest.fixture
async def collector() -> AsyncIterator[JaegerCollector]:
    server = JaegerCollector()
    await server.start()
    yield server
    await server.stop()
