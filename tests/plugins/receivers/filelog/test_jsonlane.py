"""The JSON lane (one plain json_parser, lines encoded without entries) gives byte for byte what the general path
gives, for ordinary lines and for every line it hands back to the general path."""

from __future__ import annotations

import json
import logging

import pytest

from plugins.receivers.filelog.emit import RecordBuffer, encode_record_attributes
from plugins.receivers.filelog.jsonlane import json_lane
from plugins.receivers.filelog.operators.base import ErrorSink
from plugins.receivers.filelog.operators.config import decode_operators
from plugins.receivers.filelog.operators.entry import Entry
from plugins.receivers.filelog.operators.pipeline import build_pipeline

PARSER = {"type": "json_parser", "timestamp": {"parse_from": "attributes.ts", "layout": "%Y-%m-%dT%H:%M:%S.%LZ"},
          "severity": {"parse_from": "attributes.level"}}
LINES = [
    json.dumps({"ts": "2026-12-06T04:00:00.250Z", "level": "INFO", "msg": "ok", "status": 200, "n": 123456}),
    json.dumps({"ts": "2026-12-06T04:00:01Z", "level": "warning", "msg": "ü" * 300, "ratio": 0.5, "ok": True}),
    json.dumps({"ts": "2026-12-06T04:00:02.1Z", "level": 17, "nested": {"a": [1, 2]}, "list": ["x"]}),
    json.dumps({"ts": "2026-12-06T04:00:03.000Z", "level": "custom", "big": 2**70, "neg": -5, "none": None}),
    json.dumps({"level": "ERROR", "msg": "no time"}),
    json.dumps({"ts": "yesterday", "level": "ERROR"}),
    json.dumps({"ts": "2026-12-06T04:00:04.000Z", "msg": "no level"}),
    json.dumps({"ts": "2026-12-06T04:00:05.000Z", "level": "INFO", "log.file.name": "clash"}),
    "not json at all",
    "[1, 2, 3]",
    '{"ts": "2026-12-06T04:00:06.000Z", "level": "INFO", "lone": "\\ud800"}',
]
FILE_ATTRIBUTES = {"log.file.name": "app.log"}


def general(operators, bodies, observed):
    pipeline = build_pipeline(decode_operators(operators), ErrorSink(logging.getLogger("t"), lambda o, n: None))
    buffer = RecordBuffer()
    for body in bodies:
        buffer.add_entries(pipeline.run([Entry(body, dict(FILE_ATTRIBUTES), observed)]))
    return buffer.count, buffer.request()[1]


def lane(operators, bodies, observed):
    pipeline = build_pipeline(decode_operators(operators), ErrorSink(logging.getLogger("t"), lambda o, n: None))
    chosen = json_lane(pipeline)
    assert chosen is not None
    buffer = RecordBuffer()
    buffer.add_json_lines(bodies, chosen, encode_record_attributes(FILE_ATTRIBUTES), frozenset(FILE_ATTRIBUTES),
                          observed, None, lambda body: pipeline.run([Entry(body, dict(FILE_ATTRIBUTES), observed)]))
    return buffer.count, buffer.request()[1]


@pytest.mark.parametrize("operators", [[PARSER], [{"type": "json_parser"}], [{**PARSER, "on_error": "drop"}],
                                       [{"type": "json_parser", "severity": {"parse_from": "attributes.level",
                                                                             "overwrite_text": True}}]],
                         ids=["time and severity", "plain", "drop on error", "overwrite_text"])
def test_lane_equals_general_path(operators):
    for _ in range(2):  # again with the caches warm
        count, wire = lane(operators, LINES, 42)
        assert (count, wire) == general(operators, LINES, 42)
        assert count >= 4


@pytest.mark.parametrize("operators", [
    [{"type": "json_parser", "if": "true"}], [{"type": "json_parser", "parse_to": "body"}],
    [{"type": "json_parser"}, {"type": "remove", "field": "attributes.x"}],
    [{"type": "json_parser", "timestamp": {"parse_from": "attributes.a.b", "layout": "%Y"}}],
])
def test_other_pipelines_take_the_general_path(operators):
    pipeline = build_pipeline(decode_operators(operators), ErrorSink(logging.getLogger("t"), lambda o, n: None))
    assert json_lane(pipeline) is None
