from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.processors.redaction.config import Config
from plugins.processors.redaction.factory import factory

TESTDATA = Path(__file__).parent / "testdata"
KEY = "0123456789abcdef0123456789abcdef"


def load(data: Any) -> Config:
    config = decode(factory.create_default_config(), data)
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def messages(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(data)
    return info.value.messages


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["processors"]
    assert load(section["redaction"]) == Config()
    assert load(section["redaction/collector"]) == Config(
        allow_all_keys=False, allowed_keys=("description", "group", "id", "name"),
        ignored_keys=("safe_attribute",), blocked_values=("4[0-9]{12}(?:[0-9]{3})?", "(5[1-5][0-9]{14})"),
        blocked_key_patterns=(".*token.*", ".*api_key.*"), allowed_values=(".+@mycompany.com",),
        hash_function="md5", summary="debug")
    custom = load(section["redaction/customer_service"])
    assert custom == Config(
        allow_all_keys=True, hmac_key=KEY, hash_length=16,
        detectors={"email": "hash", "phone": {"action": "hash"}, "credit_card": None},
        blocked_key_patterns=({"pattern": "(?i)(^|\\.)message$", "action": "length"},),
        body_action="length", mask="[redacted]", summary="info")
    assert [(r.source, r.action) for r in custom.detector_rules()] == [
        ("email", "hash"), ("phone", "hash"), ("credit_card", "")]
    assert [(r.path, r.action) for r in custom.key_rules()] == [("blocked_key_patterns::0::pattern", "length")]
    listed = load(section["redaction/list"])
    assert [r.source for r in listed.detector_rules()] == ["email", "jwt"]
    assert listed.default_action == "drop"


def test_default_is_the_collectors_fail_closed_allow_list() -> None:
    config = load({})
    assert config.allow_all_keys is False and config.allowed_keys == ()
    assert config.summary == "silent" and config.default_action == "mask"


def test_hash_function_makes_hash_the_default_action() -> None:
    assert load({"hash_function": "sha1"}).default_action == "hash"
    assert load({"hash_function": "sha1", "action": "mask"}).default_action == "mask"


def test_unknown_key_names_the_valid_ones() -> None:
    [message] = messages({"url_sanitizer": {"enabled": True}})
    assert message.startswith("url_sanitizer: unknown key; valid keys are: action, allow_all_keys, allowed_keys")


def test_unknown_detector_lists_the_valid_ones() -> None:
    valid = "api_key, bearer_token, credit_card, email, iban, ipv4, ipv6, jwt, password, phone, us_ssn"
    assert messages({"detectors": {"emial": "hash"}}) == [
        f"detectors::emial: unknown detector 'emial'; valid detectors are: {valid}"]
    assert messages({"detectors": ["email", "fone"]}) == [
        f"detectors::1: unknown detector 'fone'; valid detectors are: {valid}"]


def test_invalid_regexes_are_reported_with_their_key_path() -> None:
    assert messages({"blocked_values": ["ok", "(unclosed"], "allowed_values": ["[z-a]"],
                     "blocked_key_patterns": [{"pattern": "x{2,1}", "action": "mask"}],
                     "ignored_key_patterns": ["*x"]}) == [
        "blocked_key_patterns::0::pattern: invalid regular expression 'x{2,1}': min repeat greater than max "
        "repeat at position 2",
        "blocked_values::1: invalid regular expression '(unclosed': missing ), unterminated subpattern at position 0",
        "ignored_key_patterns::0: invalid regular expression '*x': nothing to repeat at position 0",
        "allowed_values::0: invalid regular expression '[z-a]': bad character range z-a at position 1",
    ]


def test_rule_items_are_checked() -> None:
    assert messages({"blocked_values": [{"patern": "x"}, {"pattern": "x", "action": "zap"}, 42, "a*"]}) == [
        "blocked_values::0::patern: unknown key; valid keys are: action, pattern",
        "blocked_values::0::pattern: required, a regular expression",
        "blocked_values::1::action: must be one of mask, hash, length, drop, got 'zap'",
        "blocked_values::2: expected a regular expression or {pattern, action}, got 42",
        "blocked_values::3: must not match the empty string, got 'a*'",
    ]
    assert messages({"detectors": {"email": {"action": "hash", "mode": "x"}}, "hmac_key": KEY}) == [
        "detectors::email::mode: unknown key; valid keys are: action"]
    assert messages({"detectors": {"email": 3}}) == [
        "detectors::email: expected an action (mask, hash, length, drop) or {action: ...}, got 3"]
    assert messages({"detectors": "email"}) == [
        "detectors: expected a list of detector names or a mapping name: action, got 'email'"]


def test_hmac_key_is_required_and_long_enough_for_hashing() -> None:
    assert messages({"detectors": {"email": "hash"}}) == [
        "hmac_key: required by the hash action (detectors::email) with hmac-sha256; "
        "set it from a secret, e.g. hmac_key: ${env:REDACTION_KEY}"]
    assert messages({"body_action": "hash", "hmac_key": "short"}) == [
        "hmac_key: must be at least 32 bytes for hmac-sha256, got 5"]
    assert messages({"action": "hash", "hash_function": "hmac-sha512", "hmac_key": KEY, "detectors": ["email"]}) == [
        "hmac_key: must be at least 64 bytes for hmac-sha512, got 32"]
    load({"action": "hash", "hash_function": "sha3"})  # unkeyed Collector functions need no key
    load({"detectors": ["email"]})  # no hashing, no key


def test_hash_length_and_mask_bounds() -> None:
    assert messages({"hash_length": 4, "hash_function": "md5"}) == [
        "hash_length: must be 0 (whole digest) or 8..32 for md5, got 4"]
    assert messages({"hash_length": 65}) == [
        "hash_length: must be 0 (whole digest) or 8..64 for hmac-sha256, got 65"]
    assert messages({"mask": ""}) == ["mask: must not be empty; use the drop action to remove values"]


def test_enumerated_keys_are_checked_by_the_decoder() -> None:
    assert messages({"summary": "loud"}) == ["summary: must be one of 'debug', 'info', 'silent', got 'loud'"]
    assert messages({"hash_function": "sha256"})[0].startswith("hash_function: must be one of ''")


def test_factory_shape() -> None:
    assert factory.type == "redaction"
    assert factory.signals == ["traces", "metrics", "logs"]
    assert factory.mutates_data is True


def test_registered_through_its_entry_point() -> None:
    [entry_point] = [e for e in entry_points(group="otelgw.plugins") if e.name == "redaction_processor"]
    registry = load_registry([entry_point.load()], entry_points=False)
    assert registry.get(Kind.PROCESSOR, "redaction") is factory


def test_shipped_customer_service_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway._host.service import load_config

    monkeypatch.setenv("REDACTION_KEY", KEY)
    root = Path(__file__).resolve().parents[4]
    load_config([str(root / "configs" / "redaction.yaml")], load_registry())


def test_without_hyperscan_the_start_up_log_says_so_once(make_processor: Any, monkeypatch: Any, caplog: Any) -> None:
    from plugins.processors.redaction import hyperscan_scanner, processor, rules

    monkeypatch.setattr(hyperscan_scanner, "AVAILABLE", False)
    monkeypatch.setattr(rules, "ENGINE", "re")
    monkeypatch.setattr(processor, "_told_engine", [])
    with caplog.at_level("INFO", logger="otelgw"):
        make_processor({"allow_all_keys": True, "detectors": ["email"]})
        make_processor({"allow_all_keys": True, "detectors": ["phone"]})
    notes = [r for r in caplog.records if "hyperscan is not installed" in r.getMessage()]
    assert len(notes) == 1
