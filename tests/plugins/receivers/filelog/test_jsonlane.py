"""The JSON lane (one plain json_parser, lines encoded without entries) gives byte for byte what the general path
gives, for ordinary lines and for every line it hands back to the general path."""

from __future__ import annotations

import json
import logging
import random
import time

import pytest

from plugins.receivers.filelog.emit import RecordBuffer, encode_record_attributes
from plugins.receivers.filelog.jsoncolumns import add_json_batch
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


def _regular_lines(count: int, seed: int) -> list[str]:
    """Lines of one shape, as one logger writes them, with values of every kind the columns take or refuse."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        second = 1_764_990_000 + i // 7  # a new second every seven lines
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        stamp += rng.choice([".250Z", "Z", ".1Z", ".123456789Z", f".{i % 1000:03d}Z", f".{i:06d}Z"])
        lines.append(json.dumps({
            "ts": stamp, "level": rng.choice(["INFO", "warning", "ERROR", "custom", "Info", "err2"]),
            "msg": rng.choice(["ok", "é" * rng.randint(0, 200), "x" * rng.randint(100, 20_000), ""]),
            "status": rng.choice([200, 404, 0, 16_383, 16_384, 2**40]),
            "id": f"{rng.getrandbits(64):016x}", "n": rng.randint(-5, 2**21),
        }))
    return lines


def _batch(operators, lines, observed, as_bytes):
    pipeline = build_pipeline(decode_operators(operators), ErrorSink(logging.getLogger("t"), lambda o, n: None))
    chosen = json_lane(pipeline)
    assert chosen is not None
    buffer = RecordBuffer()
    add_json_batch(buffer, [line.encode() for line in lines] if as_bytes else lines, chosen,
                   encode_record_attributes(FILE_ATTRIBUTES), frozenset(FILE_ATTRIBUTES), observed, None,
                   lambda body: pipeline.run([Entry(body, dict(FILE_ATTRIBUTES), observed)]))
    return buffer.count, buffer.request()[1]


def _odd_runs(seed: int) -> list[str]:
    """Runs of one shape that the columns must hand back whole or in part: each holds one odd line or value."""
    rng = random.Random(seed)
    base = json.loads(_regular_lines(1, seed)[0])
    odd = [
        {**base, "level": None}, {**base, "ts": "yesterday"}, {**base, "ts": "2026-12-06T04:00:00+02:00"},
        {**base, "ts": "2026-12-06T04:00:00.5z"}, {**base, "ts": 1_764_990_000}, {**base, "level": 17},
        {**base, "ts": "1969-12-31T23:59:59.250Z"}, {**base, "ts": "2300-01-01T00:00:00Z"},  # < 0, >= 2**63 ns
        {**base, "level": 3.0}, {**base, "level": True}, {**base, "level": ["a"]}, {**base, "status": True},
        {**base, "status": 2.0}, {**base, "status": 2**70}, {**base, "status": -(2**63)}, {**base, "status": None},
        {**base, "id": {"nested": [1, {"a": None}]}}, {**base, "id": [1, "x", 2.5]}, {**base, "id": "\ud800"},
        {**base, "log.file.name": "clash"}, {"level": "INFO", "msg": "no time"},
        {"ts": "2026-12-06T04:00:00Z", "msg": "no level"}, {},
    ]
    lines = []
    for value in odd:
        run = [json.dumps(base)] * rng.randint(0, 40)
        run.insert(rng.randint(0, len(run)), json.dumps(value))
        lines.extend(run)
        lines.extend(["not json", "[1]", '"text"', "3"][: rng.randint(0, 2)])
        lines.extend(json.dumps(dict(reversed(list(base.items())))) for _ in range(rng.randint(0, 20)))
    return lines


@pytest.mark.parametrize("operators", [[PARSER], [{"type": "json_parser"}], [{**PARSER, "on_error": "drop"}],
                                       [{"type": "json_parser", "severity": {"parse_from": "attributes.level",
                                                                             "overwrite_text": True}}],
                                       [{"type": "json_parser", "timestamp": {"parse_from": "attributes.ts",
                                                                              "layout_type": "gotime",
                                                                              "layout": "2006-01-02T15:04:05Z07:00"}}],
                                       # not ISO 8601 (day and month swapped): no value may take its fast path
                                       [{"type": "json_parser", "timestamp": {"parse_from": "attributes.ts",
                                                                              "layout": "%Y-%d-%mT%H:%M:%S.%LZ"}}]],
                         ids=["time and severity", "plain", "drop on error", "overwrite_text", "gotime", "not ISO"])
@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "str"])
def test_columns_equal_general_path(operators, as_bytes):
    for seed in range(3):  # the first pass meets cold caches (new seconds, levels, lengths), the others warm ones
        for lines in (_regular_lines(300, seed), LINES + _regular_lines(50, seed) + LINES, _odd_runs(seed)):
            count, wire = _batch(operators, lines, 42, as_bytes)
            assert (count, wire) == general(operators, lines, 42)


def test_columns_take_regular_lines():
    """The common case really runs in columns (not line by line), else the speed-up is gone unnoticed."""
    pipeline = build_pipeline(decode_operators([PARSER]), ErrorSink(logging.getLogger("t"), lambda o, n: None))
    chosen = json_lane(pipeline)
    assert chosen is not None
    buffer = RecordBuffer()
    buffer.add_json_lines = None  # type: ignore[method-assign]  # line by line would fail
    add_json_batch(buffer, [line.encode() for line in _regular_lines(200, 1)], chosen, b"", frozenset(), 1, None,
                   lambda body: [])
    assert buffer.count == 200


def test_columns_caches_stay_bounded():
    """Keys, lengths and values never seen twice (ids as keys, say) do not grow the encoders' caches without end."""
    from plugins.receivers.filelog import jsoncolumns

    pipeline = build_pipeline(decode_operators([{"type": "json_parser"}]),
                              ErrorSink(logging.getLogger("t"), lambda o, n: None))
    chosen = json_lane(pipeline)
    assert chosen is not None
    buffer = RecordBuffer()
    buffer.add_json_lines = None  # type: ignore[method-assign]  # all in columns: runs of 20 lines of one shape
    for batch in range(40):  # 1,200 keys; 24,000 lengths of "msg"; 800 values of "s"
        lines = [json.dumps({f"key{batch}-{i // 20}": "x", f"n{batch}": batch * 1000 + i % 3, "s": f"{batch}-{i % 20}",
                             "msg": "m" * (batch * 600 + i)}).encode() for i in range(600)]
        jsoncolumns.add_json_batch(buffer, lines, chosen, b"", frozenset(), 1, None, lambda body: [])
        assert buffer.count == 600
        buffer.clear()
    for table in (jsoncolumns._STRING_HEADS, jsoncolumns._INT_HEADS):
        assert 0 < len(table) <= jsoncolumns._KEYS_LIMIT
        assert all(len(heads) <= jsoncolumns._LENGTHS_LIMIT for heads in table.values())
    for repeats in (jsoncolumns._STRING_REPEATS, jsoncolumns._INT_REPEATS):
        assert 0 < len(repeats.keys) <= jsoncolumns._KEYS_LIMIT
        assert all(isinstance(k, int) or len(k) <= repeats.LIMIT for k in repeats.keys.values())
