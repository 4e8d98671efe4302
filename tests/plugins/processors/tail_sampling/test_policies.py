"""Each policy in isolation, table-driven: (policy block, trace, expected decision)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.configtypes import decode_and_validate
from plugins.processors.tail_sampling.policies import KINDS, Decision, Policy, build_policy
from plugins.processors.tail_sampling.policies.base import PolicyConfig
from plugins.processors.tail_sampling.policies.probabilistic import fnv1a_64, threshold

from .traces import request, span, tid, trace, view

S, N, D = Decision.SAMPLED, Decision.NOT_SAMPLED, Decision.DROPPED


def _with_event(out: Any, name: str) -> Any:
    out.events.add(name=name)
    return out


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def build(type_: str, block: dict[str, Any] | None = None, clock: Clock | None = None) -> Policy:
    config, errors = decode_and_validate(PolicyConfig(), {"name": "p", "type": type_, type_: block or {}})
    assert errors == []
    return build_policy(config, clock or Clock())


def decide(type_: str, block: dict[str, Any] | None, batch: ExportTraceServiceRequest) -> Decision:
    return build(type_, block).evaluate(view(batch))


ROOT_OK = span(1, 0, root=True, duration_ms=10)
ERROR_CHILD = span(1, 1, start_ms=2, duration_ms=3, status=2)
OK_CHILD = span(1, 2, start_ms=2, duration_ms=3, status=1)

CASES: list[tuple[str, str, dict[str, Any] | None, ExportTraceServiceRequest, Decision]] = [
    ("always", "always_sample", None, trace([ROOT_OK]), S),
    # status_code: any span with a listed code
    ("error present", "status_code", {"status_codes": ["ERROR"]}, trace([ROOT_OK, ERROR_CHILD]), S),
    ("error absent", "status_code", {"status_codes": ["ERROR"]}, trace([ROOT_OK, OK_CHILD]), N),
    ("ok present", "status_code", {"status_codes": ["OK"]}, trace([ROOT_OK, OK_CHILD]), S),
    ("unset present", "status_code", {"status_codes": ["UNSET"]}, trace([ROOT_OK, ERROR_CHILD]), S),
    ("unset absent", "status_code", {"status_codes": ["UNSET"]}, trace([ERROR_CHILD, OK_CHILD]), N),
    ("error hint bytes but no error", "status_code", {"status_codes": ["ERROR"]},
     trace([span(1, 0, root=True, attributes={"retries": 2})]), N),
    # latency: earliest start to latest end, over every span, across resources
    ("slow", "latency", {"threshold_ms": 100}, trace([ROOT_OK, span(1, 1, start_ms=50, duration_ms=60)]), S),
    ("exactly threshold", "latency", {"threshold_ms": 100}, trace([span(1, 0, root=True, duration_ms=100)]), S),
    ("fast", "latency", {"threshold_ms": 100}, trace([ROOT_OK, span(1, 1, start_ms=5, duration_ms=50)]), N),
    ("within band", "latency", {"threshold_ms": 100, "upper_threshold_ms": 200},
     trace([span(1, 0, root=True, duration_ms=150)]), S),
    ("lower bound excluded with band", "latency", {"threshold_ms": 100, "upper_threshold_ms": 200},
     trace([span(1, 0, root=True, duration_ms=100)]), N),
    ("above band", "latency", {"threshold_ms": 100, "upper_threshold_ms": 200},
     trace([span(1, 0, root=True, duration_ms=250)]), N),
    ("slow across resources", "latency", {"threshold_ms": 100},
     request(({"service.name": "a"}, [span(1, 0, root=True, duration_ms=10)]),
             ({"service.name": "b"}, [span(1, 1, start_ms=90, duration_ms=20)])), S),
    # span_count
    ("enough spans", "span_count", {"min_spans": 2}, trace([ROOT_OK, OK_CHILD]), S),
    ("too few spans", "span_count", {"min_spans": 3}, trace([ROOT_OK, OK_CHILD]), N),
    ("too many spans", "span_count", {"min_spans": 1, "max_spans": 1}, trace([ROOT_OK, OK_CHILD]), N),
    # string_attribute: span or resource, exact or regex, inverted
    ("span value", "string_attribute", {"key": "http.route", "values": ["/a", "/b"]},
     trace([span(1, 0, root=True, attributes={"http.route": "/b"})]), S),
    ("resource value", "string_attribute", {"key": "service.name", "values": ["checkout"]},
     trace([ROOT_OK], {"service.name": "checkout"}), S),
    ("other value", "string_attribute", {"key": "http.route", "values": ["/a"]},
     trace([span(1, 0, root=True, attributes={"http.route": "/b"})]), N),
    ("value under another key", "string_attribute", {"key": "http.route", "values": ["/a"]},
     trace([span(1, 0, root=True, attributes={"url.path": "/a", "http.route": "/z"})]), N),
    ("non-string value", "string_attribute", {"key": "code", "values": ["7"]},
     trace([span(1, 0, root=True, attributes={"code": 7})]), N),
    ("regex", "string_attribute", {"key": "http.route", "values": ["/api/.+"], "enabled_regex_matching": True},
     trace([span(1, 0, root=True, attributes={"http.route": "/api/orders"})]), S),
    ("regex misses", "string_attribute", {"key": "http.route", "values": ["^/api/"], "enabled_regex_matching": True},
     trace([span(1, 0, root=True, attributes={"http.route": "/healthz"})]), N),
    ("inverted, value present", "string_attribute", {"key": "http.route", "values": ["/healthz"],
                                                      "invert_match": True},
     trace([span(1, 0, root=True, attributes={"http.route": "/healthz"})]), N),
    ("inverted, other value", "string_attribute", {"key": "http.route", "values": ["/healthz"],
                                                    "invert_match": True},
     trace([span(1, 0, root=True, attributes={"http.route": "/api"})]), S),
    ("inverted, key absent", "string_attribute", {"key": "http.route", "values": ["/healthz"],
                                                   "invert_match": True}, trace([ROOT_OK]), S),
    # ottl_condition: any span (or span event) matching any condition
    ("ottl span", "ottl_condition", {"span": ['attributes["http.route"] == "/b" and kind == SPAN_KIND_SERVER']},
     trace([span(1, 0, root=True, attributes={"http.route": "/b"})]), S),
    ("ottl span misses", "ottl_condition", {"span": ['attributes["http.route"] == "/b"', "duration > 5000000000"]},
     trace([ROOT_OK, OK_CHILD]), N),
    ("ottl resource and span", "ottl_condition",
     {"span": ['resource.attributes["service.name"] == "checkout" and IsRootSpan()']},
     trace([ROOT_OK, OK_CHILD], {"service.name": "checkout"}), S),
    ("ottl span event", "ottl_condition", {"spanevent": ['name == "exception"']},
     trace([_with_event(span(1, 0, root=True), "exception")]), S),
    ("ottl error is no match", "ottl_condition", {"span": ['ParseJSON(name)["x"] == 1']}, trace([ROOT_OK]), N),
    # numeric_attribute
    ("in range", "numeric_attribute", {"key": "http.status", "min_value": 500, "max_value": 599},
     trace([span(1, 0, root=True, attributes={"http.status": 503})]), S),
    ("out of range", "numeric_attribute", {"key": "http.status", "min_value": 500, "max_value": 599},
     trace([span(1, 0, root=True, attributes={"http.status": 200})]), N),
    ("only min", "numeric_attribute", {"key": "retries", "min_value": 3},
     trace([span(1, 0, root=True, attributes={"retries": 9})]), S),
    ("resource number", "numeric_attribute", {"key": "shard", "max_value": 4},
     trace([ROOT_OK], {"shard": 2}), S),
    ("float is not an integer", "numeric_attribute", {"key": "ratio", "min_value": 1},
     trace([span(1, 0, root=True, attributes={"ratio": 2.5})]), N),
    ("numeric inverted", "numeric_attribute", {"key": "http.status", "min_value": 500, "invert_match": True},
     trace([span(1, 0, root=True, attributes={"http.status": 200})]), S),
    # boolean_attribute
    ("bool true", "boolean_attribute", {"key": "app.force_sample", "value": True},
     trace([span(1, 0, root=True, attributes={"app.force_sample": True})]), S),
    ("bool false", "boolean_attribute", {"key": "app.force_sample", "value": True},
     trace([span(1, 0, root=True, attributes={"app.force_sample": False})]), N),
    ("bool wants false", "boolean_attribute", {"key": "cached", "value": False},
     trace([span(1, 0, root=True, attributes={"cached": False})]), S),
    ("bool as string", "boolean_attribute", {"key": "app.force_sample", "value": True},
     trace([span(1, 0, root=True, attributes={"app.force_sample": "true"})]), N),
    # trace_state
    ("trace state value", "trace_state", {"key": "vendor", "values": ["keep"]},
     trace([span(1, 0, root=True, trace_state="other=1,vendor=keep")]), S),
    ("trace state other value", "trace_state", {"key": "vendor", "values": ["keep"]},
     trace([span(1, 0, root=True, trace_state="vendor=drop")]), N),
    ("no trace state", "trace_state", {"key": "vendor", "values": ["keep"]}, trace([ROOT_OK]), N),
    # and / drop
    ("and all", "and", {"and_sub_policy": [
        {"name": "e", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
        {"name": "svc", "type": "string_attribute", "string_attribute": {"key": "service.name", "values": ["svc"]}}]},
     trace([ROOT_OK, ERROR_CHILD]), S),
    ("and one fails", "and", {"and_sub_policy": [
        {"name": "e", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
        {"name": "svc", "type": "string_attribute", "string_attribute": {"key": "service.name", "values": ["x"]}}]},
     trace([ROOT_OK, ERROR_CHILD]), N),
    ("drop all", "drop", {"drop_sub_policy": [
        {"name": "health", "type": "string_attribute",
         "string_attribute": {"key": "http.route", "values": ["/healthz"]}}]},
     trace([span(1, 0, root=True, attributes={"http.route": "/healthz"})]), D),
    ("drop not matching", "drop", {"drop_sub_policy": [
        {"name": "health", "type": "string_attribute",
         "string_attribute": {"key": "http.route", "values": ["/healthz"]}}]},
     trace([span(1, 0, root=True, attributes={"http.route": "/api"})]), N),
]


@pytest.mark.parametrize(("case", "type_", "block", "batch", "expected"), CASES, ids=[c[0] for c in CASES])
def test_policy(case: str, type_: str, block: dict[str, Any] | None, batch: ExportTraceServiceRequest,
                expected: Decision) -> None:
    assert decide(type_, block, batch) is expected
    if type_ == "status_code":  # status codes not recorded on ingest: the spans are decoded
        assert build(type_, block).evaluate(view(batch, status_on_ingest=False)) is expected


def test_every_policy_type_has_cases() -> None:
    covered = {c[1] for c in CASES} | {"probabilistic", "rate_limiting", "composite"}
    assert covered == set(KINDS)


# ---------------------------------------------------------------- probabilistic


def test_fnv1a_matches_the_reference_vectors() -> None:
    # FNV-1a 64 test vectors (Fowler/Noll/Vo): "" and "a" and "foobar".
    assert fnv1a_64(b"") == 0xCBF29CE484222325
    assert fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a_64(b"foobar") == 0x85944171F73967E8


def test_probabilistic_is_the_collectors_hash_of_salt_and_trace_id() -> None:
    policy = build("probabilistic", {"sampling_percentage": 25, "hash_salt": "s"})
    for n in range(200):
        expected = fnv1a_64(b"s" + tid(n)) <= threshold(25)
        assert (policy.evaluate(view(trace([span(n, 0, root=True)]))) is S) is expected


@pytest.mark.parametrize("percentage", [0, 10, 50, 100])
def test_probabilistic_share_and_determinism(percentage: float) -> None:
    first, second = build("probabilistic", {"sampling_percentage": percentage}), build(
        "probabilistic", {"sampling_percentage": percentage})
    views = [view(trace([span(n, 0, root=True)])) for n in range(2000)]
    decisions = [first.evaluate(v) for v in views]
    assert decisions == [second.evaluate(v) for v in views]  # every gateway decides the same
    share = decisions.count(S) / len(views) * 100
    assert abs(share - percentage) <= 3


def test_probabilistic_salt_changes_the_selection() -> None:
    a, b = build("probabilistic", {"sampling_percentage": 50}), build(
        "probabilistic", {"sampling_percentage": 50, "hash_salt": "other"})
    views = [view(trace([span(n, 0, root=True)])) for n in range(200)]
    assert [a.evaluate(v) for v in views] != [b.evaluate(v) for v in views]


# ---------------------------------------------------------------- stateful: rate_limiting, composite


def test_rate_limiting_counts_spans_per_second() -> None:
    clock = Clock(100.2)
    policy = build("rate_limiting", {"spans_per_second": 5}, clock)
    two = view(trace([ROOT_OK, OK_CHILD]))
    assert [policy.evaluate(two) for _ in range(3)] == [S, S, N]  # 2, 4, then 6 would not stay below 5
    clock.now = 101.0
    assert policy.evaluate(two) is S


def test_composite_gives_each_sub_policy_its_share_in_order() -> None:
    clock = Clock(50.0)
    policy = build("composite", {
        "max_total_spans_per_second": 10, "policy_order": ["errors", "rest"],
        "composite_sub_policy": [
            {"name": "rest", "type": "always_sample"},
            {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}],
        "rate_allocation": [{"policy": "errors", "percent": 60}]}, clock)
    error_trace = view(trace([ROOT_OK, ERROR_CHILD]))  # 2 spans
    plain = view(trace([ROOT_OK, OK_CHILD]))
    assert [policy.evaluate(error_trace) for _ in range(4)] == [S, S, S, N]  # 6 of 10 for errors
    assert error_trace.composite_policy == "errors"
    # rest gets the 4 unallocated spans/s; an error trace is judged by "errors" first and stays refused
    assert [policy.evaluate(plain) for _ in range(3)] == [S, S, N]
    assert plain.composite_policy == "rest"
    clock.now = 51.0
    assert policy.evaluate(error_trace) is S


def test_composite_total_caps_all_sub_policies() -> None:
    policy = build("composite", {
        "max_total_spans_per_second": 4, "composite_sub_policy": [
            {"name": "a", "type": "always_sample"}, {"name": "b", "type": "always_sample"}],
        "rate_allocation": [{"policy": "a", "percent": 0}, {"policy": "b", "percent": 0}]}, Clock())
    two = view(trace([ROOT_OK, OK_CHILD]))
    assert [policy.evaluate(two) for _ in range(3)] == [S, N, N]  # "a" has 4/2 = 2 spans/s, b is never asked


def test_composite_with_and_sub_policy() -> None:
    policy = build("composite", {
        "max_total_spans_per_second": 100, "composite_sub_policy": [
            {"name": "both", "type": "and", "and": {"and_sub_policy": [
                {"name": "e", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
                {"name": "many", "type": "span_count", "span_count": {"min_spans": 2}}]}}]}, Clock())
    assert policy.evaluate(view(trace([ROOT_OK, ERROR_CHILD]))) is S
    assert policy.evaluate(view(trace([ERROR_CHILD]))) is N


def test_the_byte_prefilter_finds_short_and_long_needles_exactly_as_a_substring_test() -> None:
    """Short needles (status hints) are searched with a regex, long ones with ``in``: both answer exactly what a
    substring test answers, wherever the needle sits, also across a trace's runs and for regex metacharacters."""
    import random as _random

    from plugins.processors.tail_sampling.trace import _searcher

    rng = _random.Random(5)
    runs = [rng.randbytes(rng.randrange(0, 300)) for _ in range(200)]
    for needle in (b"\x18\x02", b"\x18\x01", b"*", b".+", b"\x00\x00\x00", b"[a", b"\x7a\x02\x18\x02", b"abcdef"):
        search = _searcher(needle)
        assert (search is None) == (len(needle) > 3)
        for run in [*runs, needle, b"x" + needle, needle + b"x", b""]:
            found = search(run) is not None if search is not None else needle in run
            assert found == (needle in run), (needle, run)
