"""Self-metrics, named as the Collector's tail sampling processor names them; created once per registry.

otelgw adds the spans and bytes held and the spans refused under block_on_overflow (``otelgw_`` prefix).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["TailSamplingMetrics", "tail_sampling_metrics"]

_P = "otelcol_processor_tail_sampling_"
# The Collector's buckets for the decision timer, in milliseconds.
_TIMER_BUCKETS = (1, 2, 5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 2000, 3000, 4000, 5000,
                  10000, 20000, 30000, 50000)
_AGE_BUCKETS = (0, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class TailSamplingMetrics:
    count_traces_sampled: Counter
    count_spans_sampled: Counter
    global_count_traces_sampled: Counter
    new_trace_id_received: Counter
    trace_dropped_too_early: Counter
    traces_dropped_too_large: Counter
    early_releases_from_cache_decision: Counter
    policy_evaluation_error: Counter
    policy_execution_count: Counter
    policy_execution_time_sum: Counter
    decision_timer_latency: Histogram
    late_span_age: Histogram
    traces_on_memory: Gauge
    spans_on_memory: Gauge
    bytes_on_memory: Gauge
    refused_spans: Counter
    send_failed_spans: Counter
    storage_bytes: Gauge
    storage_dropped_records: Counter
    storage_dropped_bytes: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, TailSamplingMetrics] = weakref.WeakKeyDictionary()


def tail_sampling_metrics(registry: CollectorRegistry) -> TailSamplingMetrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is not None:
        return metrics
    r = registry
    decision = ["processor", "policy", "sampled", "decision"]
    metrics = TailSamplingMetrics(
        count_traces_sampled=Counter(f"{_P}count_traces_sampled",
                                     "Count of traces that were sampled or not per sampling policy", decision,
                                     registry=r),
        count_spans_sampled=Counter(f"{_P}count_spans_sampled",
                                    "Count of spans that were sampled or not per sampling policy", decision,
                                    registry=r),
        global_count_traces_sampled=Counter(
            f"{_P}global_count_traces_sampled",
            "Global count of traces that were sampled or not by at least one policy",
            ["processor", "sampled", "decision"], registry=r),
        new_trace_id_received=Counter(f"{_P}new_trace_id_received", "Counts the arrival of new traces",
                                      ["processor"], registry=r),
        trace_dropped_too_early=Counter(
            f"{_P}sampling_trace_dropped_too_early",
            "Count of traces that needed to be dropped before the configured wait time", ["processor"], registry=r),
        traces_dropped_too_large=Counter(
            f"{_P}traces_dropped_too_large", "Count of traces that were dropped because they were too large",
            ["processor"], registry=r),
        early_releases_from_cache_decision=Counter(
            f"{_P}early_releases_from_cache_decision",
            "Number of spans that were able to be immediately released due to a decision cache hit",
            ["processor", "sampled"], registry=r),
        policy_evaluation_error=Counter(f"{_P}sampling_policy_evaluation_error",
                                        "Count of sampling policy evaluation errors", ["processor"], registry=r),
        policy_execution_count=Counter(f"{_P}sampling_policy_execution_count",
                                       "Total number of executions of a specific sampling policy",
                                       ["processor", "policy"], registry=r),
        policy_execution_time_sum=Counter(
            f"{_P}sampling_policy_execution_time_sum",
            "Total time spent (in microseconds) executing a specific sampling policy", ["processor", "policy"],
            registry=r),
        decision_timer_latency=Histogram(
            f"{_P}sampling_decision_timer_latency",
            "Latency (in milliseconds) of each run of the sampling decision timer", ["processor"], registry=r,
            buckets=_TIMER_BUCKETS),
        late_span_age=Histogram(
            f"{_P}sampling_late_span_age",
            "Time (in seconds) from the sampling decision was taken and the arrival of a late span",
            ["processor"], registry=r, buckets=_AGE_BUCKETS),
        traces_on_memory=Gauge(f"{_P}sampling_traces_on_memory", "Tracks the number of traces current on memory",
                               ["processor"], registry=r),
        spans_on_memory=Gauge("otelgw_processor_tail_sampling_spans_on_memory",
                              "Spans waiting for their trace's decision.", ["processor"], registry=r),
        bytes_on_memory=Gauge("otelgw_processor_tail_sampling_bytes_on_memory",
                              "Serialized bytes of the spans waiting for their trace's decision.", ["processor"],
                              registry=r),
        refused_spans=Counter("otelgw_processor_tail_sampling_refused_spans",
                              "Spans refused: buffer full (block_on_overflow), storage full or failing.",
                              ["processor"], registry=r),
        send_failed_spans=Counter("otelgw_processor_tail_sampling_send_failed_spans",
                                  "Sampled spans the next component refused; they are dropped.", ["processor"],
                                  registry=r),
        storage_bytes=Gauge("otelgw_processor_tail_sampling_storage_bytes",
                            "Bytes of the storage's write-ahead log on disk (capped by storage_max_bytes).",
                            ["processor"], registry=r),
        storage_dropped_records=Counter("otelgw_processor_tail_sampling_storage_recovery_dropped_records",
                                        "Damaged storage records skipped when the storage was recovered at start.",
                                        ["processor"], registry=r),
        storage_dropped_bytes=Counter("otelgw_processor_tail_sampling_storage_recovery_dropped_bytes",
                                      "Bytes of the damaged storage records skipped at recovery.", ["processor"],
                                      registry=r),
    )
    _BY_REGISTRY[registry] = metrics
    return metrics
