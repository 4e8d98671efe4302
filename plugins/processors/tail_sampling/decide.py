"""Runs the policies over traces and combines their decisions with the Collector's precedence.

Drop policies run first and a drop ends the evaluation; then any policy that samples keeps the trace (the first
one in configuration order is the one recorded); otherwise the trace is not sampled. A policy that raises is
counted as an evaluation error and ignored. Per-policy counts and times are accumulated in plain ints and
flushed to the metrics once per decision round, so evaluating costs no metric calls per trace.

A round decides its traces policy by policy (``decide_all``), not trace by trace: each policy sees the traces
still undecided, in order, at once, through its ``evaluate_many`` when it has one (see
``policies.base.batch_evaluator``), so the common policies decide a slice of traces in a few list passes over
numbers recorded on ingest, and the precedence is applied with list counts and ``compress`` instead of a loop
per trace and policy. A trace sees the same policies, in the same order, as one trace at a time would show it, and
every policy sees the traces in the same order, so stateful policies (rate_limiting, composite) decide alike.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter
from typing import Any

from .metrics import TailSamplingMetrics
from .policies import Decision, Policy, batch_evaluator

__all__ = ["LABELS", "Decider"]

#: Decision → (sampled, decision) metric labels, as the Collector writes them.
LABELS = {Decision.SAMPLED: ("true", "sampled"), Decision.NOT_SAMPLED: ("false", "not_sampled"),
          Decision.DROPPED: ("false", "dropped")}
_SLOTS = (Decision.SAMPLED, Decision.NOT_SAMPLED, Decision.DROPPED)
_SAMPLED, _NOT_SAMPLED = Decision.SAMPLED, Decision.NOT_SAMPLED
#: In place of the decision of a policy that raised: not None, which a faulty policy may return (and which then
#: drops the trace, as any value other than SAMPLED and NOT_SAMPLED does).
_FAILED: Any = object()
_span_count = attrgetter("span_count")


class Decider:
    def __init__(self, policies: list[tuple[Policy, bool]], sample_on_first_match: bool, component: str,
                 metrics: TailSamplingMetrics, logger: Any) -> None:
        """``policies``: (policy, is a drop policy) in configuration order."""
        ordered = [p for p, drop in policies if drop] + [p for p, drop in policies if not drop]
        self.policies = ordered
        self.first_match = sample_on_first_match
        self.metrics = metrics
        self.component = component
        self.logger = logger
        # The Collector labels a policy "<component name>.<policy>" when the component id has a name.
        prefix = component.partition("/")[2]
        self.labels = [f"{prefix}.{p.name}" if prefix else p.name for p in ordered]
        # Per policy: traces then spans, for sampled, not sampled, dropped (see _SLOTS).
        self._counts = [[0] * 6 for _ in ordered]
        self._totals = [0, 0, 0]
        self._times = [0.0] * len(ordered)
        self._runs = [0] * len(ordered)
        self._errors = 0

    def decide_all(self, traces: Sequence[Any]) -> list[Policy | None]:
        """Decide every trace of ``traces``: for each, the policy that sampled it, or None when it is not sampled
        (or dropped). Counts exactly what deciding the traces one by one would count; times are measured per
        policy and call, not per trace."""
        chosen: list[Policy | None] = [None] * len(traces)
        # Still undecided: their positions in ``traces``, the traces, their span counts (in step), and those summed.
        where: list[int] = list(range(len(traces)))
        views: Sequence[Any] = traces
        spans: list[int] = list(map(_span_count, traces))
        undecided_spans = sum(spans)
        dropped = 0
        clock = time.perf_counter
        for index, policy in enumerate(self.policies):
            if not where:
                break
            started = clock()
            results = self._evaluate(policy, views)
            self._times[index] += clock() - started
            self._runs[index] += len(where)
            tally = self._counts[index]
            sampled, sampled_spans = results.count(_SAMPLED), 0
            if sampled:
                is_sampled = [decision is _SAMPLED for decision in results]
                sampled_spans = sum(compress(spans, is_sampled))
                tally[0] += sampled
                tally[3] += sampled_spans
                for position in compress(where, is_sampled):
                    if chosen[position] is None:
                        chosen[position] = policy
            not_sampled = results.count(_NOT_SAMPLED)
            if sampled + not_sampled == len(results) and not (sampled and self.first_match):
                tally[1] += not_sampled  # the common case: nothing failed, nothing dropped, no trace is done
                tally[4] += undecided_spans - sampled_spans
                continue
            # Failures and drops (anything else a policy returns, as one trace at a time): trace by trace.
            keep = [True] * len(results)
            for i, decision in enumerate(results):
                if decision is _SAMPLED:
                    keep[i] = not self.first_match
                elif decision is _NOT_SAMPLED:
                    tally[1] += 1
                    tally[4] += spans[i]
                elif decision is not _FAILED:
                    tally[2] += 1
                    tally[5] += spans[i]
                    chosen[where[i]] = None
                    dropped += 1
                    keep[i] = False
            where = list(compress(where, keep))
            spans = list(compress(spans, keep))
            views = list(compress(views, keep))
            undecided_spans = sum(spans)
        kept = len(chosen) - chosen.count(None)
        self._totals[0] += kept
        self._totals[1] += len(chosen) - kept - dropped
        self._totals[2] += dropped
        return chosen

    def _evaluate(self, policy: Policy, traces: Sequence[Any]) -> list[Decision]:
        """``policy``'s decision on each trace; ``_FAILED`` where it raised (counted and logged)."""
        many = batch_evaluator(policy)
        if many is not None:
            try:
                return many(traces)
            except Exception:
                pass  # evaluate_many has no side effects: find the failing traces one by one
        results: list[Decision] = []
        evaluate = policy.evaluate
        for trace in traces:
            try:
                results.append(evaluate(trace))
            except Exception:
                self._errors += 1
                self.logger.debug("sampling policy %r failed", policy.name, exc_info=True)
                results.append(_FAILED)
        return results

    def flush_metrics(self) -> None:
        m, component = self.metrics, self.component
        for index, label in enumerate(self.labels):
            tally = self._counts[index]
            for slot, decision in enumerate(_SLOTS):
                if tally[slot]:
                    sampled, name = LABELS[decision]
                    m.count_traces_sampled.labels(component, label, sampled, name).inc(tally[slot])
                    m.count_spans_sampled.labels(component, label, sampled, name).inc(tally[slot + 3])
            self._counts[index] = [0] * 6
            if self._runs[index]:
                m.policy_execution_count.labels(component, label).inc(self._runs[index])
                m.policy_execution_time_sum.labels(component, label).inc(round(self._times[index] * 1e6))
                self._runs[index], self._times[index] = 0, 0.0
        if self._errors:
            m.policy_evaluation_error.labels(component).inc(self._errors)
            self._errors = 0
        for slot, decision in enumerate(_SLOTS):
            if self._totals[slot]:
                m.global_count_traces_sampled.labels(component, *LABELS[decision]).inc(self._totals[slot])
                self._totals[slot] = 0
