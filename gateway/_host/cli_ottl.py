"""``otelgw ottl``: try OTTL statements (or filter conditions) on an OTLP/JSON sample before deploying them.

Prints every item the statements changed, before (``-``) and after (``+``), as OTLP/JSON; with ``--condition``
the expressions are filter conditions and the items they would drop are printed. ``--output`` writes the whole
result as an OTLP/JSON request. Exit status: 0, 1 when a statement failed on some item (each failure is printed
with the statement and the item), 2 when a statement does not compile or the input is not OTLP/JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import otlpjson
from gateway.errors import PermanentError

__all__ = ["add_parser", "run"]

_SIGNALS: dict[str, tuple[str, type[Any]]] = {
    "resourceSpans": ("traces", ExportTraceServiceRequest),
    "resourceMetrics": ("metrics", ExportMetricsServiceRequest),
    "resourceLogs": ("logs", ExportLogsServiceRequest),
}
_ITEMS = {"traces": ("resource_spans", "scope_spans", "spans"),
          "metrics": ("resource_metrics", "scope_metrics", "metrics"),
          "logs": ("resource_logs", "scope_logs", "log_records")}


def add_parser(commands: Any) -> None:
    ottl = commands.add_parser("ottl", help="try OTTL statements or conditions on an OTLP/JSON sample")
    ottl.add_argument("expressions", nargs="+", metavar="STATEMENT",
                      help="OTTL statements, applied in order (conditions with --condition)")
    ottl.add_argument("--context", default=None,
                      help="resource, scope, span, spanevent, metric, datapoint or log (default: inferred from "
                           "path prefixes such as span.name)")
    ottl.add_argument("--input", default="-", metavar="FILE", help="OTLP/JSON request (default: stdin)")
    ottl.add_argument("--condition", action="store_true",
                      help="the expressions are filter conditions: show the items they would drop")
    ottl.add_argument("--output", default=None, metavar="FILE", help="write the whole result as OTLP/JSON")
    ottl.add_argument("--all", action="store_true", help="print unchanged items too")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _items(signal: str, batch: Any) -> list[Any]:
    outer, middle, inner = _ITEMS[signal]
    return [item for r in getattr(batch, outer) for s in getattr(r, middle) for item in getattr(s, inner)]


def _label(signal: str, item: Any) -> str:
    if signal == "traces":
        return f"span {item.name!r} trace_id={item.trace_id.hex()} span_id={item.span_id.hex()}"
    if signal == "metrics":
        return f"metric {item.name!r}"
    body = item.body.string_value if item.body.WhichOneof("value") == "string_value" else ""
    return f"log record {body[:60]!r}"


def _dump(item: Any) -> str:
    return json.dumps(otlpjson.to_dict(item), ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    from gateway.ottl import (
        CompileError,
        ConditionSet,
        ErrorReporter,
        StatementGroup,
        compile_condition,
        compile_error,
        compile_statement,
        infer_context,
    )

    try:
        raw = sys.stdin.buffer.read() if args.input == "-" else open(args.input, "rb").read()  # noqa: SIM115
    except OSError as exc:
        print(f"cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    try:
        document = json.loads(raw)
    except ValueError as exc:
        print(f"{args.input}: invalid JSON: {exc}", file=sys.stderr)
        return 2
    kind = next((k for k in _SIGNALS if isinstance(document, dict) and k in document), None)
    if kind is None:
        print(f"{args.input}: not an OTLP/JSON request: expected resourceSpans, resourceMetrics or resourceLogs",
              file=sys.stderr)
        return 2
    signal, request_type = _SIGNALS[kind]
    try:
        batch = otlpjson.decode(raw, request_type)
    except PermanentError as exc:
        print(f"{args.input}: {exc}", file=sys.stderr)
        return 2
    try:
        context = args.context or infer_context(args.expressions, signal, conditions=args.condition)
    except CompileError as exc:
        print(f"cannot infer the context ({exc.message}); give --context", file=sys.stderr)
        return 2
    errors: list[str] = []
    compiled: list[Any] = []
    for i, text in enumerate(args.expressions):
        try:
            compiled.append(compile_condition(text, context) if args.condition else compile_statement(text, context))
        except CompileError as exc:
            errors.append(compile_error(f"statement {i + 1}", text, exc))
    if errors:
        print(f"{len(errors)} invalid statement(s) in the {context} context:", file=sys.stderr)
        for message in errors:
            print(f"  {message}", file=sys.stderr)
        return 2
    collector = _Collect()
    logger = logging.getLogger("otelgw.cli.ottl")
    logger.addHandler(collector)
    logger.propagate = False
    failures: dict[str, int] = {}

    def count(statement: str) -> None:
        failures[statement] = failures.get(statement, 0) + 1

    reporter = ErrorReporter(logger, count, interval=0.0)
    before = [_dump(item) for item in _items(signal, batch)]
    labels = [_label(signal, item) for item in _items(signal, batch)]
    if args.condition:
        dropped: list[str] = []
        conditions = ConditionSet(signal, context, compiled, "ignore", reporter,
                                  lambda text, n: dropped.append(f"{n} by {text}"))
        conditions.run(batch)
        # The survivors are told apart from the dropped items by their JSON (duplicates pair up in order).
        after = [_dump(item) for item in _items(signal, batch)]
        remaining = list(after)
        for label, text in zip(labels, before, strict=True):
            if text in remaining:
                remaining.remove(text)
                if args.all:
                    print(f"= {label}\n  {text}")
            else:
                print(f"dropped {label}\n- {text}")
        print(f"{len(before) - len(after)} of {len(before)} item(s) would be dropped"
              + (f" ({'; '.join(dropped)})" if dropped else ""))
    else:
        group = StatementGroup(signal, context, compiled, [], "ignore", reporter)
        group.run(batch)
        after = [_dump(item) for item in _items(signal, batch)]
        changed = 0
        for label, old, new in zip(labels, before, after, strict=True):
            if old != new:
                changed += 1
                print(f"{label}\n- {old}\n+ {new}")
            elif args.all:
                print(f"{label} (unchanged)\n  {old}")
        print(f"{changed} of {len(before)} item(s) changed")
    for message in collector.messages:
        print(f"error: {message}", file=sys.stderr)
    if args.output:
        with open(args.output, "wb") as out:
            out.write(otlpjson.encode(batch) + b"\n")
    return 1 if failures else 0
