"""Log records assembled as wire bytes parse back to exactly what the entries held, for every value type."""

from __future__ import annotations

import pytest

from gateway.testing import any_value
from plugins.receivers.filelog.emit import RecordBuffer, encode_record_attributes
from plugins.receivers.filelog.operators.entry import Entry

VALUES = ["", "short", "ü" * 70, "x" * 200, "y" * 20_000, "lone \ud800 surrogate", 0, 1, 127, 128, 16383, 16384,
          2**31, 2**63 - 1, -1, -(2**63), 2**64, True, False, 0.5, -1e300, float("inf"),
          b"\x00\xff", [1, "a", [True]], {"nested": {"k": [1.5]}}, [], {}]


def expected_value(value):
    if isinstance(value, str):
        return any_value(value.encode("utf-8", "replace").decode())
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return any_value(float(value))
    return any_value(value)


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:30] for v in VALUES])
def test_every_value_type_as_attribute_and_body(value):
    for _ in range(2):  # the second time from the cache of encoded pairs
        entry = Entry(value, {"k": value, "k" * 300: value}, 7)
        entry.timestamp, entry.severity, entry.severity_text = 5, 17, "ERROR"
        buffer = RecordBuffer()
        buffer.add_entries([entry])
        request, wire = buffer.request()
        assert type(request).FromString(wire) == request  # the wire bytes handed along are the request's
        record = request.resource_logs[0].scope_logs[0].log_records[0]
        assert record.body == expected_value(value)
        assert [(kv.key, kv.value) for kv in record.attributes] == [
            ("k", expected_value(value)), ("k" * 300, expected_value(value))]
        assert (record.time_unix_nano, record.severity_number, record.severity_text,
                record.observed_time_unix_nano) == (5, 17, "ERROR", 7)


def test_lines_and_resources_group():
    buffer = RecordBuffer()
    shared = {"service.name": "a"}
    buffer.add_lines([b"one", b"x" * 20_000], encode_record_attributes({"log.file.name": "f"}), 9)
    first, second, third = Entry("e1", {}, 1), Entry("e2", {}, 1), Entry("e3", {}, 1)
    first.resource, second.resource, third.resource = shared, {"service.name": "a"}, {"service.name": "b"}
    buffer.add_entries([first, second, third])
    request, _ = buffer.request()
    groups = {tuple((kv.key, kv.value.string_value) for kv in rl.resource.attributes):
              [r.body.string_value[:5] for sl in rl.scope_logs for r in sl.log_records]
              for rl in request.resource_logs}
    assert groups == {(): ["one", "xxxxx"], (("service.name", "a"),): ["e1", "e2"], (("service.name", "b"),): ["e3"]}
    assert buffer.count == 5
