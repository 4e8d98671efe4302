"""Configuration of ``tail_sampling``: the Collector's keys, plus a byte budget and the policy-attribute switch."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway import ComponentID, ConfigError, Duration

from .policies.base import PolicyConfig, duplicate_names

__all__ = ["Config", "DecisionCacheConfig", "PolicyConfig"]


@dataclass(frozen=True)
class DecisionCacheConfig:
    #: Trace ids whose "keep" decision is remembered, so late spans are kept too. 0 = the last num_traces.
    sampled_cache_size: int = 0
    #: Trace ids whose "drop" decision is remembered, so late spans are dropped too. 0 = the last num_traces.
    non_sampled_cache_size: int = 0

    def validate(self) -> None:
        errors = [f"{key}: must be >= 0" for key in ("sampled_cache_size", "non_sampled_cache_size")
                  if getattr(self, key) < 0]
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config:
    #: Time from a trace's first span to its decision (default 30s).
    decision_wait: Duration = 30.0
    #: Decide this long after the trace's root span arrived, when that is sooner. 0 (default) = off.
    decision_wait_after_root_received: Duration = 0.0
    #: Most traces waiting for a decision (default 50000). When full: evict the oldest, or block_on_overflow.
    num_traces: int = 50000
    #: Accepted for compatibility with the Collector; Python's dicts size themselves, so it has no effect.
    expected_new_traces_per_sec: int = 0
    #: A trace whose spans exceed this many serialized bytes is decided at once on what has arrived; kept if a
    #: policy samples it, else dropped and counted (traces_dropped_too_large). 0 (default) = no limit.
    maximum_trace_size_bytes: int = 0
    #: otelgw: most serialized span bytes waiting for decisions, all traces together; 0 (default) = no limit.
    #: Enforced like num_traces. Memory used is about 1.2 times this (see the README's Memory section).
    maximum_buffer_size_bytes: int = 0
    #: When full, refuse new traces with a retryable "overloaded" error (gRPC RESOURCE_EXHAUSTED + RetryInfo,
    #: HTTP 429) so senders back off, instead of evicting the oldest waiting trace (default false).
    block_on_overflow: bool = False
    #: Decision caches for spans arriving after their trace was decided.
    decision_cache: DecisionCacheConfig = field(default_factory=DecisionCacheConfig)
    #: Stop evaluating at the first policy that samples (drop policies are evaluated first, always).
    sample_on_first_match: bool = False
    #: On shutdown, drop the traces still waiting instead of deciding them on the spans received so far.
    drop_pending_traces_on_shutdown: bool = False
    #: otelgw: stamp kept spans with tailsampling.policy (and tailsampling.composite_policy,
    #: tailsampling.cached_decision), the Collector's recordpolicy attributes (default true).
    record_policy: bool = True
    #: otelgw: id of a file_storage extension (``file_storage/sampling``): waiting spans and decisions are then
    #: written ahead to disk before the sender is answered, and recovered after a crash or restart.
    storage: str | None = None
    #: otelgw: cap on the storage's bytes on disk (default 1 GiB); at the cap new spans are refused as retryable.
    storage_max_bytes: int = 1 << 30
    #: Policies, each {name, type, <type>: {...}} as in the Collector (required).
    policies: list[PolicyConfig] = field(default_factory=list)

    def validate(self) -> None:
        errors = []
        if self.decision_wait <= 0:
            errors.append("decision_wait: must be > 0")
        for key in ("num_traces",):
            if getattr(self, key) <= 0:
                errors.append(f"{key}: must be > 0")
        if self.storage:
            try:
                ComponentID.parse(self.storage)
            except ValueError as exc:
                errors.append(f"storage: {exc}")
        if self.storage_max_bytes <= 0:
            errors.append("storage_max_bytes: must be > 0")
        for key in ("expected_new_traces_per_sec", "maximum_trace_size_bytes", "maximum_buffer_size_bytes"):
            if getattr(self, key) < 0:
                errors.append(f"{key}: must be >= 0")
        if not self.policies:
            errors.append("policies: at least one policy is required, e.g. [{name: errors, type: status_code, "
                          "status_code: {status_codes: [ERROR]}}]")
        errors.extend(duplicate_names(self.policies, "policies"))
        if errors:
            raise ConfigError(errors)
