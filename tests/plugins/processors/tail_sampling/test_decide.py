"""Deciding a slice of traces at once (``Decider.decide_all``, ``evaluate_many``) against one trace at a time.

The reference is the Collector's precedence written out plainly below, run trace by trace with ``evaluate``:
drop policies first and a drop ends the evaluation; the first sampling policy in configuration order is the one
recorded; ``sample_on_first_match`` stops at it; a policy that raises is counted and ignored for that trace.
Random traces and random policy sets (stateful, combinators, plugins' policies that raise, with and without
``evaluate_many``) must give the same decisions, recorded policies, composite sub-policies and self-metrics
(every count; not the times) batched, one by one, and in the reference.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from gateway.configtypes import decode_and_validate
from gateway.helpers.trace_runs import EnvelopeTable, split_request
from plugins.processors.tail_sampling.caches import DecisionCache
from plugins.processors.tail_sampling.decide import LABELS, Decider
from plugins.processors.tail_sampling.metrics import tail_sampling_metrics
from plugins.processors.tail_sampling.policies import Decision, Policy, batch_evaluator, build_policy
from plugins.processors.tail_sampling.policies.base import PolicyConfig
from plugins.processors.tail_sampling.trace import TraceState, TraceView

from .traces import span, trace

S, N, D = Decision.SAMPLED, Decision.NOT_SAMPLED, Decision.DROPPED
LOG = logging.getLogger("tests.tail_sampling.decide")


def clock() -> float:
    return 5000.0  # one second for every rate window: decisions do not depend on when the test runs


# ---------------------------------------------------------------- plugins' policies


class Flaky:
    """A plugin's policy: raises for traces whose id starts below ``cut``, else samples those with an even
    second byte (or decides ``decision`` for all of them)."""

    def __init__(self, name: str, cut: int, decision: Decision | None) -> None:
        self.name, self.cut, self.decision = name, cut, decision

    def evaluate(self, trace: Any) -> Decision:
        if trace.trace_id[0] < self.cut:
            raise ValueError(f"{self.name} cannot decide this trace")
        if self.decision is not None:
            return self.decision
        return S if trace.trace_id[1] % 2 == 0 else N


class FlakyBatch(Flaky):
    """The same with ``evaluate_many``, which raises when any trace of the call would."""

    def evaluate_many(self, traces: Sequence[Any]) -> list[Decision]:
        return [self.evaluate(t) for t in traces]


class Faulty:
    """A faulty plugin's policy: returns None, not a Decision, for traces whose id starts with an odd byte.
    Anything but SAMPLED and NOT_SAMPLED drops the trace, as one trace at a time always did."""

    def __init__(self, name: str) -> None:
        self.name = name

    def evaluate(self, trace: Any) -> Any:
        return None if trace.trace_id[0] % 2 else N


class Counting:
    """A stateful plugin's policy: samples every third trace it sees (so the order it sees them in matters)."""

    def __init__(self, name: str) -> None:
        self.name, self.seen = name, 0

    def evaluate(self, trace: Any) -> Decision:
        self.seen += 1
        return S if self.seen % 3 == 0 else N


# ---------------------------------------------------------------- strategies

LEAVES = st.one_of(
    st.just({"type": "always_sample"}),
    st.lists(st.sampled_from(["OK", "ERROR", "UNSET"]), min_size=1, max_size=3, unique=True).map(
        lambda codes: {"type": "status_code", "status_code": {"status_codes": codes}}),
    st.tuples(st.integers(0, 30), st.integers(0, 30)).map(lambda t: {"type": "latency", "latency": {
        "threshold_ms": t[0], "upper_threshold_ms": t[0] + t[1] if t[1] % 2 else 0}}),
    st.sampled_from([0, 10, 50, 100, 33.3]).map(
        lambda pct: {"type": "probabilistic", "probabilistic": {"sampling_percentage": pct}}),
    st.tuples(st.integers(0, 4), st.integers(0, 3)).map(lambda t: {"type": "span_count", "span_count": {
        "min_spans": t[0], "max_spans": t[0] + t[1] if t[1] else 0}}),
    st.tuples(st.sampled_from([["gold"], ["gold", "free"], ["absent"], ["^g", "e$"]]), st.booleans(),
              st.booleans()).map(lambda t: {"type": "string_attribute", "string_attribute": {
                  "key": "tier", "values": t[0], "enabled_regex_matching": t[0][0] == "^g", "invert_match": t[1],
                  "cache_max_size": 2 if t[2] else 0}}),
    st.booleans().map(lambda invert: {"type": "numeric_attribute", "numeric_attribute": {
        "key": "retries", "min_value": 1, "max_value": 3, "invert_match": invert}}),
    st.tuples(st.booleans(), st.booleans()).map(lambda t: {"type": "boolean_attribute", "boolean_attribute": {
        "key": "cached", "value": t[0], "invert_match": t[1]}}),
    st.integers(1, 12).map(lambda n: {"type": "rate_limiting", "rate_limiting": {"spans_per_second": n}}),
)


def named(blocks: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [{**block, "name": f"{prefix}{i}"} for i, block in enumerate(blocks)]


COMBINATORS = st.one_of(
    st.lists(LEAVES, min_size=1, max_size=3).map(lambda subs: {"type": "and", "and": {
        "and_sub_policy": named(subs, "a")}}),
    st.lists(LEAVES, min_size=1, max_size=3).map(lambda subs: {"type": "drop", "drop": {
        "drop_sub_policy": named(subs, "d")}}),
    st.tuples(st.lists(LEAVES, min_size=1, max_size=3), st.integers(1, 40)).map(lambda t: {
        "type": "composite", "composite": {"max_total_spans_per_second": t[1],
                                           "composite_sub_policy": named(t[0], "c")}}),
)

#: A plugin's policy: ("flaky", cut, decision, batched, listed as a drop policy), ("counting",) or ("faulty",).
#: A policy that is not a drop policy may still return DROPPED: that drops the trace too.
PLUGINS = st.one_of(
    st.tuples(st.just("flaky"), st.sampled_from([0, 64, 128, 256]), st.sampled_from([None, S, N, D, D]),
              st.booleans(), st.booleans()),
    st.just(("counting",)),
    st.just(("faulty",)),
)

ATTRIBUTES = st.fixed_dictionaries({}, optional={
    "tier": st.sampled_from(["gold", "free", "", "agile"]), "retries": st.integers(0, 5), "cached": st.booleans()})
SPANS = st.lists(st.fixed_dictionaries({
    "status": st.integers(0, 2), "start_ms": st.integers(0, 20), "duration_ms": st.integers(0, 20),
    "attributes": ATTRIBUTES}), min_size=1, max_size=4)

#: A trace: its spans, whether its status codes were recorded on ingest, its resource's attributes.
TRACES = st.lists(st.tuples(SPANS, st.booleans(), ATTRIBUTES), min_size=1, max_size=40)


def build(choice: Any, name: str) -> tuple[Policy, bool]:
    """A policy and whether it is a drop policy."""
    if isinstance(choice, tuple):
        if choice[0] == "counting":
            return Counting(name), False
        if choice[0] == "faulty":
            return Faulty(name), False
        _, cut, decision, batched, drop = choice
        return (FlakyBatch if batched else Flaky)(name, cut, decision), drop
    config, errors = decode_and_validate(PolicyConfig(), {**choice, "name": name})
    assert errors == []
    return build_policy(config, clock), choice["type"] == "drop"


Traces = list[tuple[list[dict[str, Any]], bool, dict[str, Any]]]


def states(traces: Traces) -> list[TraceState]:
    out = []
    table = EnvelopeTable()
    for n, (spans, recorded, resource) in enumerate(traces):
        batch = trace((span(n, i, root=i == 0, **fields) for i, fields in enumerate(spans)), resource)
        state = TraceState(b"", 0.0, 0.0)
        for resource_header, scope_header, runs in split_request(batch.SerializeToString(), batch, True, True,
                                                                 recorded):
            envelope = table.get(resource_header, scope_header)
            for trace_id, run, count, first, last, _, codes in runs:
                state.trace_id = trace_id
                state.add(envelope, run, count, first, last, codes)
        out.append(state)
    return out


# ---------------------------------------------------------------- the reference


def reference(policies: list[tuple[Policy, bool]], first_match: bool, views: list[TraceView],
              prefix: str) -> tuple[list[str | None], dict[tuple[str, ...], float]]:
    """Trace by trace, policy by policy: the recorded policy of each trace and the self-metrics' counts."""
    ordered = [p for p, drop in policies if drop] + [p for p, drop in policies if not drop]
    counts: Counter[tuple[str, ...]] = Counter()
    chosen: list[str | None] = []
    for view in views:
        sampled_by: str | None = None
        outcome = N
        for policy in ordered:
            label = f"{prefix}.{policy.name}" if prefix else policy.name
            counts["policy_execution_count", label] += 1
            try:
                decision = policy.evaluate(view)
            except Exception:
                counts["policy_evaluation_error",] += 1
                continue
            kind = decision if decision in (S, N) else D
            counts["count_traces_sampled", label, *LABELS[kind]] += 1
            counts["count_spans_sampled", label, *LABELS[kind]] += view.span_count
            if kind is D:
                outcome, sampled_by = D, None
                break
            if kind is S and sampled_by is None:
                sampled_by, outcome = policy.name, S
                if first_match:
                    break
        counts["global_count_traces_sampled", *LABELS[outcome]] += 1
        chosen.append(sampled_by)
    return chosen, dict(counts)


def published(registry: CollectorRegistry, component: str) -> dict[tuple[str, ...], float]:
    """Every count the decider published (execution times left out: they are measured, not counted)."""
    out: dict[tuple[str, ...], float] = {}
    prefix = "otelcol_processor_tail_sampling_"
    for family in registry.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total") or not sample.value or "execution_time" in sample.name:
                continue
            name = sample.name[len(prefix):-len("_total")].removeprefix("sampling_")
            labels = sample.labels
            assert labels.pop("processor") == component
            key = tuple(labels[k] for k in ("policy", "sampled", "decision") if k in labels)
            out[(name, *key)] = sample.value
    return out


def run(policies: list[tuple[Policy, bool]], first_match: bool, views: list[TraceView], batch: int,
        component: str) -> tuple[list[str | None], dict[tuple[str, ...], float]]:
    """``decide_all`` over slices of ``batch`` traces: the recorded policies and the counts published."""
    registry = CollectorRegistry()
    decider = Decider(policies, first_match, component, tail_sampling_metrics(registry), LOG)
    chosen: list[Policy | None] = []
    for start in range(0, len(views), batch):
        chosen.extend(decider.decide_all(views[start:start + batch]))
    decider.flush_metrics()
    return [p.name if p is not None else None for p in chosen], published(registry, component)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces=TRACES, choices=st.lists(st.one_of(LEAVES, COMBINATORS, PLUGINS), min_size=1, max_size=6),
       first_match=st.booleans(), named_component=st.booleans())
def test_batched_decisions_are_the_reference_decisions(traces: Traces,
                                                       choices: list[Any], first_match: bool,
                                                       named_component: bool) -> None:
    buffered = states(traces)
    component = "tail_sampling/edge" if named_component else "tail_sampling"
    prefix = "edge" if named_component else ""
    outcomes = []
    # Fresh policies and views for each way of deciding: rate_limiting, composite and plugins keep state, and a
    # view remembers the composite sub-policy that sampled it.
    for way in ("reference", "one by one", "all at once", "in slices of 7"):
        policies = [build(choice, f"p{i}") for i, choice in enumerate(choices)]
        views = [TraceView(state) for state in buffered]
        if way == "reference":
            chosen, counts = reference(policies, first_match, views, prefix)
        else:
            batch = {"one by one": 1, "all at once": len(views), "in slices of 7": 7}[way]
            chosen, counts = run(policies, first_match, views, batch, component)
        outcomes.append((way, chosen, [v.composite_policy for v in views], counts))
    expected = outcomes[0]
    for outcome in outcomes[1:]:
        assert outcome[1:] == expected[1:], f"{outcome[0]} differs from the reference"


def test_a_later_policy_that_drops_undoes_an_earlier_sample() -> None:
    """Not only drop policies: whatever returns DROPPED ends the evaluation and the trace is not kept, even
    after an earlier policy sampled it (a drop overrides every other decision)."""
    views = [TraceView(s) for s in states([([{"status": 0}], True, {})] * 20)]
    vetoes = sum(v.trace_id[0] >= 128 for v in views)
    assert 0 < vetoes < len(views)
    always, _ = build({"type": "always_sample"}, "all")
    veto = Flaky("veto", 0, None)
    veto.evaluate = lambda trace: D if trace.trace_id[0] >= 128 else N  # type: ignore[method-assign]
    registry = CollectorRegistry()
    decider = Decider([(always, False), (veto, False)], False, "tail_sampling", tail_sampling_metrics(registry), LOG)
    assert decider.decide_all(views) == [None if v.trace_id[0] >= 128 else always for v in views]
    decider.flush_metrics()
    counts = published(registry, "tail_sampling")
    assert counts[("global_count_traces_sampled", "false", "dropped")] == vetoes
    assert counts[("global_count_traces_sampled", "true", "sampled")] == len(views) - vetoes


def test_the_common_policies_decide_batched_and_their_combinators_too() -> None:
    """The precondition of the comparison above being about batches: the policies that implement
    ``evaluate_many`` are used through it, ``and``/``drop`` too while all their sub-policies are."""
    for block in ({"type": "always_sample"}, {"type": "span_count", "span_count": {"min_spans": 2}},
                  {"type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
                  {"type": "latency", "latency": {"threshold_ms": 5}},
                  {"type": "probabilistic", "probabilistic": {"sampling_percentage": 10}},
                  {"type": "numeric_attribute", "numeric_attribute": {"key": "n", "min_value": 1}},
                  {"type": "string_attribute", "string_attribute": {"key": "k", "values": ["v"]}},
                  {"type": "boolean_attribute", "boolean_attribute": {"key": "b", "value": True}},
                  {"type": "and", "and": {"and_sub_policy": named([{"type": "always_sample"}], "a")}}):
        assert batch_evaluator(build(block, "p")[0]) is not None, block["type"]
    rate = {"type": "rate_limiting", "rate_limiting": {"spans_per_second": 5}}
    assert batch_evaluator(build(rate, "p")[0]) is None  # stateful: one trace at a time
    assert batch_evaluator(build({"type": "drop", "drop": {"drop_sub_policy": named([rate], "d")}}, "p")[0]) is None


def test_an_evaluate_replaced_on_the_instance_is_called_for_every_trace() -> None:
    policy, _ = build({"type": "status_code", "status_code": {"status_codes": ["ERROR"]}}, "errors")
    seen: list[bytes] = []

    def wrapped(trace: Any) -> Decision:
        seen.append(trace.trace_id)
        return S

    policy.evaluate = wrapped  # type: ignore[method-assign]
    views = [TraceView(s) for s in states([([{"status": 0}], True, {}), ([{"status": 2}], True, {})])]
    decider = Decider([(policy, False)], False, "tail_sampling", tail_sampling_metrics(CollectorRegistry()), LOG)
    assert decider.decide_all(views) == [policy, policy]
    assert seen == [v.trace_id for v in views]


def test_a_failing_evaluate_many_is_retried_trace_by_trace_and_only_the_failures_count(caplog: Any) -> None:
    policy = FlakyBatch("flaky", 128, S)
    views = [TraceView(s) for s in states([([{"status": 0}], True, {})] * 30)]
    failing = sum(v.trace_id[0] < 128 for v in views)
    assert 0 < failing < len(views)
    registry = CollectorRegistry()
    decider = Decider([(policy, False)], False, "tail_sampling", tail_sampling_metrics(registry), LOG)
    with caplog.at_level(logging.DEBUG, LOG.name):
        chosen = decider.decide_all(views)
    assert chosen == [None if v.trace_id[0] < 128 else policy for v in views]
    decider.flush_metrics()
    counts = published(registry, "tail_sampling")
    assert counts[("policy_evaluation_error",)] == failing
    assert counts[("policy_execution_count", "flaky")] == len(views)
    assert counts[("count_traces_sampled", "flaky", "true", "sampled")] == len(views) - failing
    assert caplog.text.count("sampling policy 'flaky' failed") == failing


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(0, 6), rounds=st.lists(st.lists(st.integers(0, 9), unique=True, max_size=8),
                                                   max_size=6))
def test_put_many_is_put_of_each_in_turn(capacity: int, rounds: list[list[int]]) -> None:
    one, many = DecisionCache(capacity), DecisionCache(capacity)
    for index, ids in enumerate(rounds):
        items = [(bytes([n]), (index, n)) for n in ids]
        for trace_id, value in items:
            one.put(trace_id, value)
        many.put_many(items)
        assert list(many._entries.items()) == list(one._entries.items())


@pytest.mark.parametrize("upper", [0, 7])
def test_latency_batched_at_the_millisecond_edges(upper: int) -> None:
    """Whole milliseconds, as evaluate counts them: a duration a nanosecond short of the threshold is below it."""
    block = {"type": "latency", "latency": {"threshold_ms": 5, "upper_threshold_ms": upper}}
    policy, _ = build(block, "slow")
    durations = [0, 4_999_999, 5_000_000, 5_999_999, 6_000_000, 7_999_999, 8_000_000, 10**12]
    buffered = []
    for duration in durations:
        state = TraceState(b"\x01" * 16, 0.0, 0.0)
        state.add(None, b"", 1, 10**18, 10**18 + duration)  # type: ignore[arg-type]
        buffered.append(TraceView(state))
    many = batch_evaluator(policy)
    assert many is not None
    assert many(buffered) == [policy.evaluate(v) for v in buffered]
    assert S in many(buffered) and N in many(buffered)
