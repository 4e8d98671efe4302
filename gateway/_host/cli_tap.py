"""``otelgw tap COMPONENT``: stream samples of what leaves a receiver, processor or connector.

``--output json`` prints each sampled batch as one line of OTLP/JSON; ``--output line`` prints one compact line
per span, metric point or log record. A first ``#`` line says where the data is read and whether it has passed
(or has still to pass) a ``redaction`` processor; a last ``#`` line says why the tap ended and how many items
were skipped to keep the pipeline unhindered.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from gateway._host.cli_admin import AdminClient, add_admin_options

__all__ = ["add_parser", "item_lines", "run"]


def add_parser(commands: Any) -> None:
    tap = commands.add_parser("tap", help="stream samples of the data leaving a receiver, processor or connector")
    add_admin_options(tap)
    tap.add_argument("component", metavar="COMPONENT_ID",
                     help="a receiver, processor or connector id as in the config (kind:id when ambiguous)")
    tap.add_argument("--signal", choices=("traces", "metrics", "logs"), help="only this signal")
    tap.add_argument("--limit", type=int, default=0, metavar="N", help="stop after N items (default: never)")
    tap.add_argument("--rate", type=_rate, default=100.0, metavar="R",
                     help="at most R items per second, as R or R/s (default 100); more are skipped, never waited for")
    tap.add_argument("--output", "-o", choices=("json", "line"), default="line",
                     help="line (default: one compact line per item) or json (OTLP/JSON per sampled batch)")


def _rate(text: str) -> float:
    """``--rate`` as a number of items per second, written ``50`` or ``50/s``."""
    number = text[:-2] if text.endswith("/s") else text
    try:
        rate = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: items per second, e.g. 50 or 50/s") from None
    if not 0 < rate <= 1e6:
        raise argparse.ArgumentTypeError(f"{text!r}: between 0 (excluded) and 1000000 items per second")
    return rate


def _value(v: dict[str, Any]) -> str:
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in v:
            return str(v[key])
    if "arrayValue" in v:
        return "[" + ",".join(_value(x) for x in v["arrayValue"].get("values", [])) + "]"
    return json.dumps(v, separators=(",", ":")) if v else ""


def _attrs(attributes: list[dict[str, Any]]) -> str:
    return " ".join(f"{a['key']}={_value(a.get('value', {}))}" for a in attributes)


def _service(resource: dict[str, Any]) -> str:
    for a in resource.get("attributes", []):
        if a["key"] == "service.name":
            return _value(a.get("value", {}))
    return "-"


def item_lines(signal: str, data: dict[str, Any]) -> Iterator[str]:
    """One compact line per item of an OTLP/JSON request."""
    if signal == "traces":
        for rs in data.get("resourceSpans", []):
            service = _service(rs.get("resource", {}))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    ms = (int(span.get("endTimeUnixNano", 0)) - int(span.get("startTimeUnixNano", 0))) / 1e6
                    status = span.get("status", {}).get("code", "")
                    status = {2: "ERROR", "STATUS_CODE_ERROR": "ERROR", 1: "OK", "STATUS_CODE_OK": "OK"}.get(status, "")
                    yield (f"span {service} {span.get('name', '')!r} trace={span.get('traceId', '')} "
                           f"span={span.get('spanId', '')} {ms:.1f}ms {status} {_attrs(span.get('attributes', []))}"
                           ).rstrip()
    elif signal == "logs":
        for rl in data.get("resourceLogs", []):
            service = _service(rl.get("resource", {}))
            for sl in rl.get("scopeLogs", []):
                for record in sl.get("logRecords", []):
                    body = _value(record.get("body", {}))
                    yield (f"log {service} {record.get('severityText', '') or record.get('severityNumber', '')} "
                           f"{body!r} {_attrs(record.get('attributes', []))}").rstrip()
    else:
        for rm in data.get("resourceMetrics", []):
            service = _service(rm.get("resource", {}))
            for sm in rm.get("scopeMetrics", []):
                for metric in sm.get("metrics", []):
                    for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                        for point in metric.get(kind, {}).get("dataPoints", []):
                            value = point.get("asDouble", point.get("asInt", point.get("sum", "")))
                            if kind in ("histogram", "exponentialHistogram", "summary"):
                                value = f"count={point.get('count', 0)} sum={point.get('sum', 0)}"
                            yield (f"metric {service} {metric.get('name', '')} {kind} {value} "
                                   f"{_attrs(point.get('attributes', []))}").rstrip()


def _header(tap: dict[str, Any]) -> str:
    where = f"{tap['kind']} {tap['component']} ({', '.join(tap['signals'])})"
    if tap["pipelines"]:
        where += f" in pipeline {', '.join(tap['pipelines'])}"
    text = f"# tap: data as it leaves {where}"
    if tap["not_yet_redacted_by"]:
        text += (f"; NOT yet redacted: it passes {', '.join(tap['not_yet_redacted_by'])} later, so it may show "
                 f"values that never leave the gateway")
    elif tap["redacted_by"]:
        text += f"; redacted by {', '.join(tap['redacted_by'])}"
    return text + f"; at most {tap['rate']:g} items/s" + (f", {tap['limit']} items" if tap["limit"] else "")


def run(args: argparse.Namespace) -> int:
    client = AdminClient(args, "tap")
    query = {"component": args.component, "limit": args.limit, "rate": args.rate}
    if args.signal:
        query["signal"] = args.signal
    try:
        for message in client.stream("/api/tap?" + urlencode(query)):
            if "tap" in message:
                print(_header(message["tap"]), flush=True)
            elif "data" in message:
                if args.output == "json":
                    print(json.dumps(message["data"], separators=(",", ":")), flush=True)
                else:
                    for line in item_lines(message["signal"], message["data"]):
                        print(line)
                    sys.stdout.flush()
            elif "skipped" in message and "end" not in message:
                print(f"# {message['skipped']} items skipped so far (rate limit or slow reader)", flush=True)
            elif "end" in message:
                print(f"# tap ended: {message['end']}; {message['skipped']} items skipped", flush=True)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `otelgw tap x | head`
        return 0
    return 0
