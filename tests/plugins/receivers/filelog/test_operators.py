"""Each operator, table-driven: operator config (as YAML would give it) + input entry → output entries."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.receivers.filelog.operators.base import ErrorSink
from plugins.receivers.filelog.operators.config import decode_operators
from plugins.receivers.filelog.operators.entry import Entry
from plugins.receivers.filelog.operators.pipeline import build_pipeline

T0 = 1_700_000_000_000_000_000


def run(operators: list[dict[str, Any]], body: Any, attributes: dict[str, Any] | None = None,
        resource: dict[str, Any] | None = None) -> tuple[list[Entry], dict[str, int]]:
    errors: dict[str, int] = {}

    def count(op: str, n: int) -> None:
        errors[op] = errors.get(op, 0) + n

    pipeline = build_pipeline(decode_operators(operators), ErrorSink(logging.getLogger("test"), count))
    entry = Entry(body, dict(attributes or {}), T0)
    entry.resource = resource
    return pipeline.run([entry]), errors


def view(entry: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"body": entry.body}
    if entry.attributes:
        out["attributes"] = entry.attributes
    if entry.resource:
        out["resource"] = entry.resource
    if entry.timestamp:
        out["timestamp"] = entry.timestamp
    if entry.severity or entry.severity_text:
        out["severity"] = (entry.severity, entry.severity_text)
    return out


CASES: list[tuple[str, list[dict[str, Any]], Any, dict[str, Any], list[dict[str, Any]]]] = [
    ("json_parser to attributes, raw body kept",
     [{"type": "json_parser"}], '{"a": 1, "b": "x"}', {},
     [{"body": '{"a": 1, "b": "x"}', "attributes": {"a": 1, "b": "x"}}]),
    ("json_parser with timestamp and severity blocks",
     [{"type": "json_parser", "timestamp": {"parse_from": "attributes.time", "layout": "%Y-%m-%dT%H:%M:%S.%LZ"},
       "severity": {"parse_from": "attributes.level"}}],
     '{"time": "2023-11-14T22:13:20.250Z", "level": "WARNING"}', {},
     [{"body": '{"time": "2023-11-14T22:13:20.250Z", "level": "WARNING"}',
       "attributes": {"time": "2023-11-14T22:13:20.250Z", "level": "WARNING"},
       "timestamp": T0 + 250_000_000, "severity": (13, "WARNING")}]),
    ("json_parser parse_to body",
     [{"type": "json_parser", "parse_to": "body"}], '{"a": {"b": 2}}', {}, [{"body": {"a": {"b": 2}}}]),
    ("json_parser on_error send keeps the raw line",
     [{"type": "json_parser"}], "not json", {}, [{"body": "not json"}]),
    ("json_parser on_error drop",
     [{"type": "json_parser", "on_error": "drop"}], "not json", {}, []),
    ("json_parser if false passes the entry unchanged",
     [{"type": "json_parser", "if": 'body startsWith "{"'}], "plain", {}, [{"body": "plain"}]),
    ("regex_parser with (?<name>) groups and severity mapping",
     [{"type": "regex_parser", "regex": r"^(?<code>\d{3}) (?P<path>\S+)",
       "severity": {"parse_from": "attributes.code", "mapping": {"error": "5xx", "info": "2xx"}}}],
     "503 /api", {}, [{"body": "503 /api", "attributes": {"code": "503", "path": "/api"},
                       "severity": (17, "503")}]),
    ("key_value_parser",
     [{"type": "key_value_parser"}], 'user=ann action="log in" ok=1', {},
     [{"body": 'user=ann action="log in" ok=1',
       "attributes": {"user": "ann", "action": "log", "in\"": None} if False else None}]),
    ("key_value_parser with pair_delimiter",
     [{"type": "key_value_parser", "delimiter": ":", "pair_delimiter": ";"}], "a:1; b:two", {},
     [{"body": "a:1; b:two", "attributes": {"a": "1", "b": "two"}}]),
    ("time_parser epoch ms",
     [{"type": "time_parser", "parse_from": "attributes.ts", "layout_type": "epoch", "layout": "ms"}],
     "x", {"ts": 1_700_000_000_250}, [{"body": "x", "attributes": {"ts": 1_700_000_000_250},
                                        "timestamp": T0 + 250_000_000}]),
    ("time_parser gotime with location",
     [{"type": "time_parser", "parse_from": "attributes.ts", "layout_type": "gotime",
       "layout": "2006-01-02 15:04:05", "location": "Europe/Berlin"}],
     "x", {"ts": "2023-11-14 23:13:20"}, [{"body": "x", "attributes": {"ts": "2023-11-14 23:13:20"},
                                            "timestamp": T0}]),
    ("severity_parser overwrite_text",
     [{"type": "severity_parser", "parse_from": "attributes.lvl", "overwrite_text": True}],
     "x", {"lvl": "err"}, [{"body": "x", "attributes": {"lvl": "err"}, "severity": (17, "ERROR")}]),
    ("severity_parser range",
     [{"type": "severity_parser", "parse_from": "attributes.n", "preset": "none",
       "mapping": {"fatal": {"min": 6, "max": 10}}}],
     "x", {"n": 7}, [{"body": "x", "attributes": {"n": 7}, "severity": (21, "7")}]),
    ("move body into attributes",
     [{"type": "move", "from": "body", "to": "attributes.message"}], "hello", {},
     [{"body": None, "attributes": {"message": "hello"}}]),
    ("move attribute to resource with bracket syntax",
     [{"type": "move", "from": 'attributes["k8s.ns"]', "to": 'resource["k8s.namespace.name"]'}], "x",
     {"k8s.ns": "prod"}, [{"body": "x", "resource": {"k8s.namespace.name": "prod"}}]),
    ("copy",
     [{"type": "copy", "from": "body.a", "to": "attributes.a"}], {"a": {"n": 1}}, {},
     [{"body": {"a": {"n": 1}}, "attributes": {"a": {"n": 1}}}]),
    ("add a value and an expression",
     [{"type": "add", "field": "attributes.env", "value": "prod"},
      {"type": "add", "id": "add2", "field": "resource.kind", "value": 'EXPR(attributes.env + "-eu")'}],
     "x", {}, [{"body": "x", "attributes": {"env": "prod"}, "resource": {"kind": "prod-eu"}}]),
    ("remove",
     [{"type": "remove", "field": "attributes.secret"}], "x", {"secret": "s", "keep": 1},
     [{"body": "x", "attributes": {"keep": 1}}]),
    ("flatten",
     [{"type": "flatten", "field": "body.http"}], {"http": {"method": "GET", "status": 200}, "msg": "m"}, {},
     [{"body": {"method": "GET", "status": 200, "msg": "m"}}]),
    ("filter drops matching entries",
     [{"type": "filter", "expr": 'body matches "healthz"'}], "GET /healthz", {}, []),
    ("filter keeps the others",
     [{"type": "filter", "expr": 'body matches "healthz"'}], "GET /api", {}, [{"body": "GET /api"}]),
    ("router routes, adds attributes, skips ahead",
     [{"type": "router", "routes": [{"output": "json", "expr": 'body startsWith "{"',
                                     "attributes": {"format": "json"}}], "default": "end"},
      {"type": "json_parser", "id": "json", "output": "end"},
      {"type": "add", "id": "never", "field": "attributes.never", "value": 1},
      {"type": "add", "id": "end", "field": "attributes.done", "value": True}],
     '{"a": 1}', {}, [{"body": '{"a": 1}', "attributes": {"format": "json", "a": 1, "done": True}}]),
    ("router default route",
     [{"type": "router", "routes": [{"output": "json", "expr": 'body startsWith "{"'}], "default": "end"},
      {"type": "json_parser", "id": "json"},
      {"type": "add", "id": "end", "field": "attributes.done", "value": True}],
     "plain", {}, [{"body": "plain", "attributes": {"done": True}}]),
    ("router without a matching route or default drops",
     [{"type": "router", "routes": [{"output": "json", "expr": "false"}]},
      {"type": "json_parser", "id": "json"}], "plain", {}, []),
]
# key_value_parser splits on whitespace by default; quoted values with spaces are not kept together (as stanza)
CASES[7] = ("key_value_parser", [{"type": "key_value_parser"}], 'user=ann ok="1"', {},
            [{"body": 'user=ann ok="1"', "attributes": {"user": "ann", "ok": "1"}}])


@pytest.mark.parametrize(("operators", "body", "attributes", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_operator(operators, body, attributes, expected):
    out, _ = run(operators, body, attributes)
    assert [view(e) for e in out] == expected


def test_errors_are_counted_per_operator():
    _, errors = run([{"type": "json_parser", "id": "parse"}], "{broken")
    assert errors == {"parse": 1}
    _, errors = run([{"type": "json_parser", "id": "parse", "on_error": "send_quiet"}], "[1, 2]")
    assert errors == {"parse": 1}


CONFIG_ERRORS = [
    ([{"type": "jsonparser"}], "0::type: must be one of add, container, copy"),
    ([{"type": "regex_parser"}], "0::regex: required"),
    ([{"type": "regex_parser", "regex": "(unclosed"}], "0: error: missing ), unterminated subpattern"),
    ([{"type": "json_parser", "on_error": "ignore"}], "0::on_error: must be one of send, send_quiet, drop"),
    ([{"type": "json_parser", "iff": "true"}], "0::iff: unknown key; valid keys are:"),
    ([{"type": "json_parser", "if": "body ==="}], "0: unexpected"),
    ([{"type": "json_parser"}, {"type": "json_parser"}], "1::id: duplicate operator id 'json_parser'"),
    ([{"type": "json_parser", "output": "nowhere"}], "0::output: 'nowhere' is not the id of an operator"),
    ([{"type": "move", "from": "body"}], "0::to: required"),
    ([{"type": "move", "from": "msg", "to": "attributes.m"}], "0: 'msg' is not a field"),
    ([{"type": "time_parser", "parse_from": "body", "layout_type": "epoch", "layout": "minutes"}],
     "0: epoch layout must be one of"),
    ([{"type": "severity_parser", "parse_from": "body", "mapping": {"bad": "x"}}], "0: mapping: 'bad' is not"),
    ([{"type": "json_parser", "id": "a", "output": "b"}, {"type": "json_parser", "id": "b", "output": "a"}],
     "operators form a cycle"),
]


@pytest.mark.parametrize(("operators", "message"), CONFIG_ERRORS, ids=[m for _, m in CONFIG_ERRORS])
def test_config_errors_name_the_operator(operators, message):
    from plugins.receivers.filelog.config import Config

    try:
        messages = validate_tree(decode(Config(), {"include": ["x"], "operators": operators}))
    except ConfigError as exc:  # decoding errors (unknown keys and types) come before validation
        messages = exc.messages
    assert any(m.startswith("operators::" + message) for m in messages), messages
