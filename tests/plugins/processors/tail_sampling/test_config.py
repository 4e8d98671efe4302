from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway._host.service import load_config
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.processors.tail_sampling.config import Config, DecisionCacheConfig, PolicyConfig
from plugins.processors.tail_sampling.factory import factory
from plugins.processors.tail_sampling.policies import (
    always_sample,
    and_,
    boolean_attribute,
    composite,
    drop,
    latency,
    numeric_attribute,
    probabilistic,
    rate_limiting,
    span_count,
    status_code,
    string_attribute,
    trace_state,
)
from plugins.processors.tail_sampling.policies.base import LeafPolicyConfig, SubPolicyConfig

TESTDATA = Path(__file__).parent / "testdata"
ALL_TYPES = ("always_sample, and, boolean_attribute, composite, drop, latency, numeric_attribute, ottl_condition, "
             "probabilistic, rate_limiting, span_count, status_code, string_attribute, trace_state")
LEAF_TYPES = ("always_sample, boolean_attribute, latency, numeric_attribute, ottl_condition, probabilistic, "
              "rate_limiting, span_count, status_code, string_attribute, trace_state")


def load(data: Any) -> Config:
    config = decode(factory.create_default_config(), data)
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(data)
    return info.value.messages


def policy(entry: dict[str, Any]) -> list[str]:
    return errors_of({"policies": [entry]})


def P(name: str, type_: str, settings: Any) -> PolicyConfig:
    return PolicyConfig(name, type_, settings)


def L(name: str, type_: str, settings: Any) -> LeafPolicyConfig:
    """A sub-policy of and or drop."""
    return LeafPolicyConfig(name, type_, settings)


def C(name: str, type_: str, settings: Any) -> SubPolicyConfig:
    """A sub-policy of composite."""
    return SubPolicyConfig(name, type_, settings)


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["processors"]
    assert load(section["tail_sampling"]) == Config(policies=[P("everything", "always_sample",
                                                                always_sample.Config())])
    numeric = numeric_attribute.Config(key="key1", min_value=50, max_value=100)
    strings = string_attribute.Config(key="key2", values=["value1", "value2"])
    expected = Config(
        decision_wait=10.0, decision_wait_after_root_received=2.0, num_traces=100, expected_new_traces_per_sec=10,
        maximum_trace_size_bytes=1_000_000, maximum_buffer_size_bytes=50_000_000, block_on_overflow=True,
        sample_on_first_match=True, drop_pending_traces_on_shutdown=True, record_policy=False,
        decision_cache=DecisionCacheConfig(sampled_cache_size=100_000, non_sampled_cache_size=200_000),
        policies=[
            P("test-policy-1", "always_sample", always_sample.Config()),
            P("test-policy-2", "latency", latency.Config(threshold_ms=5000, upper_threshold_ms=10000)),
            P("test-policy-3", "numeric_attribute", numeric),
            P("test-policy-4", "probabilistic", probabilistic.Config(sampling_percentage=10.0, hash_salt="salt")),
            P("test-policy-5", "status_code", status_code.Config(status_codes=["ERROR", "UNSET"])),
            P("test-policy-6", "string_attribute", strings),
            P("test-policy-7", "string_attribute", string_attribute.Config(
                key="key2", values=["value1", "val*"], enabled_regex_matching=True, cache_max_size=10)),
            P("test-policy-8", "rate_limiting", rate_limiting.Config(spans_per_second=35)),
            P("test-policy-9", "span_count", span_count.Config(min_spans=2, max_spans=20)),
            P("test-policy-10", "trace_state", trace_state.Config(key="key3", values=["value1", "value2"])),
            P("test-policy-11", "boolean_attribute", boolean_attribute.Config(key="key4", value=True)),
            P("and-policy-1", "and", and_.Config(and_sub_policy=[
                L("test-and-policy-1", "numeric_attribute", numeric),
                L("test-and-policy-2", "string_attribute", strings)])),
            P("drop-policy-1", "drop", drop.Config(drop_sub_policy=[L(
                "test-drop-policy-1", "string_attribute", string_attribute.Config(
                    key="url.path", values=["\\/health", "\\/metrics"], enabled_regex_matching=True))])),
            P("composite-policy-1", "composite", composite.Config(
                max_total_spans_per_second=1000,
                policy_order=["test-composite-policy-1", "test-composite-policy-2", "test-composite-policy-3"],
                composite_sub_policy=[
                    C("test-composite-policy-1", "numeric_attribute",
                      numeric_attribute.Config(key="key1", min_value=50)),
                    C("test-composite-policy-2", "string_attribute", strings),
                    C("test-composite-policy-3", "always_sample", always_sample.Config())],
                rate_allocation=[composite.RateAllocation("test-composite-policy-1", 50),
                                 composite.RateAllocation("test-composite-policy-2", 25)])),
        ])
    assert load(section["tail_sampling/full"]) == expected


def test_defaults_are_the_collectors() -> None:
    config = factory.create_default_config()
    assert (config.decision_wait, config.num_traces, config.decision_wait_after_root_received) == (30.0, 50000, 0.0)
    assert config.decision_cache == DecisionCacheConfig(0, 0)
    assert (config.block_on_overflow, config.sample_on_first_match, config.maximum_trace_size_bytes) == (
        False, False, 0)


def test_policies_are_required() -> None:
    assert validate_tree(factory.create_default_config()) == [
        "policies: at least one policy is required, e.g. [{name: errors, type: status_code, "
        "status_code: {status_codes: [ERROR]}}]"]


def test_typo_in_a_top_level_key_names_the_valid_ones() -> None:
    assert errors_of({"decision_wiat": "5s"}) == [
        "decision_wiat: unknown key; valid keys are: block_on_overflow, decision_cache, decision_wait, "
        "decision_wait_after_root_received, drop_pending_traces_on_shutdown, expected_new_traces_per_sec, "
        "maximum_buffer_size_bytes, maximum_trace_size_bytes, num_traces, policies, record_policy, "
        "sample_on_first_match, storage, storage_max_bytes"]


def test_typo_inside_a_policy_block_has_its_path() -> None:
    assert policy({"name": "slow", "type": "latency", "latency": {"treshold_ms": 5}}) == [
        "policies::0::latency::treshold_ms: unknown key; valid keys are: threshold_ms, upper_threshold_ms"]


def test_typo_in_a_policy_entry_lists_name_type_and_the_blocks() -> None:
    assert policy({"name": "all", "typ": "always_sample", "type": "always_sample"}) == [
        f"policies::0::typ: unknown key; valid keys are: name, type, {ALL_TYPES}"]


def test_bad_policy_type_lists_the_valid_ones() -> None:
    assert policy({"name": "slow", "type": "latncy"}) == [
        f"policies::0::type: must be one of {ALL_TYPES}; got 'latncy'"]
    assert policy({"name": "slow"}) == [f"policies::0::type: must be one of {ALL_TYPES}; missing"]


def test_sub_policies_accept_only_what_the_collector_accepts() -> None:
    nested = {"name": "c", "type": "composite", "composite": {"max_total_spans_per_second": 10}}
    assert policy({"name": "a", "type": "and", "and": {"and_sub_policy": [nested]}}) == [
        f"policies::0::and::and_sub_policy::0::type: must be one of {LEAF_TYPES}; got 'composite'"]


def test_nested_errors_carry_the_full_path_through_the_loader(write_yaml: Any) -> None:
    path = write_yaml("""
        receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}}
        processors:
          tail_sampling:
            policies:
              - name: mixed
                type: composite
                composite:
                  max_total_spans_per_second: 100
                  composite_sub_policy:
                    - {name: slow, type: latency, latency: {threshold_ms: -5}}
        exporters: {debug: {}}
        service: {pipelines: {traces: {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}}}
    """)
    with pytest.raises(ConfigError) as info:
        load_config([path], load_registry())
    assert info.value.messages == [
        "processors::tail_sampling::policies::0::composite::composite_sub_policy::0::latency::threshold_ms: "
        "must be >= 0"]


@pytest.mark.parametrize(("entry", "messages"), [
    ({"type": "always_sample"}, ["policies::0::name: required"]),
    ({"name": "s", "type": "latency", "latency": {"threshold_ms": 10, "upper_threshold_ms": 5}},
     ["policies::0::latency::upper_threshold_ms: must be 0 (no upper bound) or >= threshold_ms (10), got 5"]),
    ({"name": "p", "type": "probabilistic", "probabilistic": {"sampling_percentage": 150}},
     ["policies::0::probabilistic::sampling_percentage: must be between 0 and 100, got 150"]),
    ({"name": "e", "type": "status_code", "status_code": {"status_codes": ["ERROR", "FAILED"]}},
     ["policies::0::status_code::status_codes::1: must be one of OK, ERROR, UNSET, got 'FAILED'"]),
    ({"name": "e", "type": "status_code"},
     ["policies::0::status_code::status_codes: at least one status code is required (OK, ERROR or UNSET)"]),
    ({"name": "r", "type": "rate_limiting", "rate_limiting": {"spans_per_second": 0}},
     ["policies::0::rate_limiting::spans_per_second: must be > 0"]),
    ({"name": "s", "type": "string_attribute", "string_attribute": {
        "key": "k", "values": ["(open"], "enabled_regex_matching": True}},
     ["policies::0::string_attribute::values::0: invalid regular expression '(open': "
      "missing ), unterminated subpattern at position 0"]),
    ({"name": "n", "type": "numeric_attribute", "numeric_attribute": {"key": "k"}},
     ["policies::0::numeric_attribute::min_value: set min_value, max_value or both"]),
    ({"name": "s", "type": "latency", "latency": {"threshold_ms": "slow"}},
     ["policies::0::latency::threshold_ms: expected int, got str 'slow'"]),
    ({"name": "s", "type": "latency", "latency": 5},
     ["policies::0::latency: expected a mapping, got int 5"]),
    ({"name": "s", "type": "latency", "probabilistic": {"sampling_percentage": 5}},
     ["policies::0::probabilistic: not used when type is 'latency'"]),
    ({"name": "c", "type": "composite", "composite": {
        "max_total_spans_per_second": 100, "policy_order": ["a", "x"],
        "composite_sub_policy": [{"name": "a", "type": "always_sample"}],
        "rate_allocation": [{"policy": "a", "percent": 80}, {"policy": "y", "percent": 30}]}},
     ["policies::0::composite::policy_order::1: no composite_sub_policy is named 'x'",
      "policies::0::composite::rate_allocation::1::policy: no composite_sub_policy is named 'y'",
      "policies::0::composite::rate_allocation: percentages add up to 110, more than 100"]),
])
def test_invalid_policy_values_give_exact_messages(entry: dict[str, Any], messages: list[str]) -> None:
    assert policy(entry) == messages


def test_duplicate_policy_names_are_rejected() -> None:
    assert errors_of({"policies": [{"name": "a", "type": "always_sample"}, {"name": "a", "type": "always_sample"}]}
                     ) == ["policies::1::name: duplicate policy name 'a'"]


def test_invalid_top_level_values() -> None:
    assert errors_of({"decision_wait": 0, "num_traces": 0, "maximum_trace_size_bytes": -1,
                      "decision_cache": {"sampled_cache_size": -1},
                      "policies": [{"name": "a", "type": "always_sample"}]}) == [
        "decision_cache::sampled_cache_size: must be >= 0",
        "decision_wait: must be > 0", "num_traces: must be > 0", "maximum_trace_size_bytes: must be >= 0"]


def test_factory_shape() -> None:
    assert factory.type == "tail_sampling"
    assert factory.signals == ["traces"]
    assert factory.mutates_data is False  # output is assembled from its own copies; inputs are never changed


def test_registered_through_its_entry_point() -> None:
    [entry_point] = [e for e in entry_points(group="otelgw.plugins") if e.name == "tail_sampling_processor"]
    assert entry_point.value == "plugins.processors.tail_sampling"
    registry = load_registry()
    assert registry.get(factory.kind, "tail_sampling") is not None
