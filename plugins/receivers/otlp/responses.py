"""What both servers answer: Export*ServiceResponse types, google.rpc.Status bodies, dialable addresses."""

from __future__ import annotations

from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from gateway import Signal

RESPONSE_TYPES: dict[Signal, type[Message]] = {
    Signal.TRACES: ExportTraceServiceResponse,
    Signal.METRICS: ExportMetricsServiceResponse,
    Signal.LOGS: ExportLogsServiceResponse,
}


def status_message(code: int, message: str, retry_after: float | None = None) -> status_pb2.Status:
    """A google.rpc.Status; a retry delay becomes a RetryInfo detail (making RESOURCE_EXHAUSTED retryable)."""
    status = status_pb2.Status(code=code, message=message)
    if retry_after is not None:
        retry_info = error_details_pb2.RetryInfo()
        retry_info.retry_delay.FromNanoseconds(round(retry_after * 1e9))
        detail = AnyProto()
        detail.Pack(retry_info)
        status.details.append(detail)
    return status


def dialable(host: str, port: int) -> str:
    """``host:port`` a local client can connect to: a wildcard listen address becomes loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
