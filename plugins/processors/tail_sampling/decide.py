"""Runs the policies over one trace and combines their decisions with the Collector's precedence.

Drop policies run first and a drop ends the evaluation; then any policy that samples keeps the trace (the first
one in configuration order is the one recorded); otherwise the trace is not sampled. A policy that raises is
counted as an evaluation error and ignored. Per-policy counts and times are accumulated in plain ints and
flushed to the metrics once per decision round, so evaluating costs no metric calls per trace.
"""

from __future__ import annotations

import time
from typing import Any

from .metrics import TailSamplingMetrics
from .policies import Decision, Policy

__all__ = ["LABELS", "Decider"]

#: Decision → (sampled, decision) metric labels, as the Collector writes them.
LABELS = {Decision.SAMPLED: ("true", "sampled"), Decision.NOT_SAMPLED: ("false", "not_sampled"),
          Decision.DROPPED: ("false", "dropped")}
_SLOTS = (Decision.SAMPLED, Decision.NOT_SAMPLED, Decision.DROPPED)


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

    def decide(self, trace: Any) -> tuple[Decision, Policy | None]:
        sampled_by: Policy | None = None
        clock = time.perf_counter
        for index, policy in enumerate(self.policies):
            started = clock()
            try:
                decision = policy.evaluate(trace)
            except Exception:
                self._errors += 1
                self.logger.debug("sampling policy %r failed", policy.name, exc_info=True)
                continue
            finally:
                self._times[index] += clock() - started
                self._runs[index] += 1
            # Identity tests, not a dict keyed by the enum: Enum.__hash__ is Python code, this is the hot loop.
            if decision is Decision.SAMPLED:
                slot = 0
            elif decision is Decision.NOT_SAMPLED:
                slot = 1
            else:
                slot = 2
            tally = self._counts[index]
            tally[slot] += 1
            tally[slot + 3] += trace.span_count
            if slot == 2:
                self._totals[2] += 1
                return Decision.DROPPED, policy
            if slot == 0 and sampled_by is None:
                sampled_by = policy
                if self.first_match:
                    break
        if sampled_by is not None:
            self._totals[0] += 1
            return Decision.SAMPLED, sampled_by
        self._totals[1] += 1
        return Decision.NOT_SAMPLED, None

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
