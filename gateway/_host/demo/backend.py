"""The demo's trace backend: what ``tail_sampling`` keeps has to go somewhere a user can see it.

A small OTLP/gRPC server on a free loopback port that accepts every trace export and counts the spans and the
distinct traces it received, so the demo can say what tail sampling kept. It holds counts, never the data, so
a demo left running for hours stays small.
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

__all__ = ["TraceBackend"]

_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class TraceBackend:
    """Counts what arrives; ``take()`` returns (spans, traces, traces with an error) since the last call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans = 0
        self._traces: set[bytes] = set()
        self._failed: set[bytes] = set()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString)
        service, method = _METHOD.rsplit("/", 1)
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(service.lstrip("/"), {method: handler})])
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=1.0).wait()

    def take(self) -> tuple[int, int, int]:
        with self._lock:
            counts = (self._spans, len(self._traces), len(self._failed))
            self._spans = 0
            self._traces.clear()
            self._failed.clear()
        return counts

    def _export(self, request: trace_service_pb2.ExportTraceServiceRequest,
                _context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        spans = 0
        traces: set[bytes] = set()
        failed: set[bytes] = set()
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans += 1
                    traces.add(span.trace_id)
                    if span.status.code == span.status.STATUS_CODE_ERROR:
                        failed.add(span.trace_id)
        with self._lock:
            self._spans += spans
            self._traces |= traces
            self._failed |= failed
        return trace_service_pb2.ExportTraceServiceResponse()
