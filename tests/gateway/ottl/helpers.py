"""Builds OTLP messages for the OTTL tests and runs one statement or condition on them."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.ottl import Ctx, compile_condition, compile_statement, from_any, set_any
from gateway.ottl.values import to_dict

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def attrs(message: Any, values: dict[str, Any]) -> Any:
    for key, value in values.items():
        set_any(message.attributes.add(key=key).value, value)
    return message


def make_span(**extra: Any) -> Span:
    span = Span(trace_id=TRACE_ID, span_id=SPAN_ID, name="GET /api/orders", kind=2,
                start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_250_000_000)
    span.status.code = 2
    span.status.message = "boom"
    attrs(span, {"http.route": "/api/orders/{id}", "http.url": "https://shop/api/orders/42?token=s3cret",
                 "code": 200, "ratio": 0.5, "ok": True, "user.email": "ann@example.com",
                 "payload": '{"a": {"b": [1, 2]}, "c": "d"}', "kv": "a=1 b='two words'",
                 "nested": {"inner": {"leaf": "x"}, "list": [1, "two"]}})
    for key, value in extra.items():
        set_any(span.attributes.add(key=key).value, value)
    return span


def make_resource() -> Resource:
    return attrs(Resource(), {"service.name": "checkout", "deployment.environment": "prod"})


def make_scope() -> InstrumentationScope:
    return attrs(InstrumentationScope(name="io.opentelemetry.flask", version="1.2"), {"scope.attr": "s"})


def span_ctx(span: Span | None = None) -> Ctx:
    return Ctx("span", resource=make_resource(), scope=make_scope(), item=span or make_span())


def log_ctx() -> Ctx:
    record = LogRecord(time_unix_nano=1_700_000_000_000_000_000, severity_number=17, severity_text="ERROR",
                       trace_id=TRACE_ID, span_id=SPAN_ID)
    record.body.string_value = '{"msg": "failed", "user": "ann"}'
    attrs(record, {"log.file.name": "app.log"})
    return Ctx("log", resource=make_resource(), scope=make_scope(), item=record)


def datapoint_ctx() -> Ctx:
    metric = Metric(name="http.server.duration", unit="ms", description="d")
    point = metric.sum.data_points.add(as_double=12.5, time_unix_nano=5, start_time_unix_nano=1)
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = 2
    attrs(point, {"http.route": "/a"})
    return Ctx("datapoint", resource=make_resource(), scope=make_scope(), item=point, parent=metric)


def run(statement: str, ctx: Ctx) -> Ctx:
    compiled = compile_statement(statement, ctx.context)
    if compiled.condition is None or compiled.condition.fn(ctx):
        compiled.run(ctx)
    return ctx


def value(expression: str, ctx: Ctx) -> Any:
    """The value of an expression, read back through a cache entry the statement sets."""
    ctx.cache.pop("v", None)
    run(f'set(cache["v"], {expression})', ctx)
    return ctx.cache.get("v")


def check(condition: str, ctx: Ctx) -> bool:
    return bool(compile_condition(condition, ctx.context).fn(ctx))


def attributes_of(message: Any) -> dict[str, Any]:
    return to_dict(message.attributes)


__all__ = ["attributes_of", "check", "datapoint_ctx", "from_any", "log_ctx", "make_span", "run", "span_ctx",
           "value"]
