from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gateway import ConfigError

from .specs import RuleSpec, check_pattern, detector_specs, rule_specs

__all__ = ["HASH_DIGEST_HEX", "Config"]

#: Hex length of each hash function's digest; the hmac ones need ``hmac_key``.
HASH_DIGEST_HEX = {"md5": 32, "sha1": 40, "sha3": 64, "hmac-sha256": 64, "hmac-sha512": 128}
_HMAC_MIN_KEY = {"hmac-sha256": 32, "hmac-sha512": 64}


@dataclass(frozen=True)
class Config:
    #: Keep every attribute key. false (the Collector's default) = keep only allowed_keys.
    allow_all_keys: bool = False
    #: Attribute keys kept when allow_all_keys is false; all other attributes are removed. Empty = remove all.
    allowed_keys: tuple[str, ...] = ()
    #: Keys passed through untouched: never removed, never masked.
    ignored_keys: tuple[str, ...] = ()
    #: Regexes on keys; matching keys are passed through like ignored_keys.
    ignored_key_patterns: tuple[str, ...] = ()
    #: Regexes on keys; the whole value of a matching key is replaced. Item: "regex" or {pattern, action}.
    blocked_key_patterns: tuple[Any, ...] = ()
    #: Also replace int and double values of keys matching blocked_key_patterns. false keeps numbers (token
    #: counts, sizes, durations), which carry no secret, so a pattern such as "token" spares input_tokens.
    blocked_key_patterns_numbers: bool = False
    #: Regexes on values; the matching part is replaced. Item: "regex" or {pattern, action}.
    blocked_values: tuple[Any, ...] = ()
    #: Regexes on values; text inside one of their matches is never replaced, whatever rule matches it.
    allowed_values: tuple[str, ...] = ()
    #: Built-in detectors to switch on: a list of names, or a mapping of name to action (or {action: ...}).
    detectors: Any = ()
    #: Also check int, double, bool and bytes values through their text form. Makes every item be walked.
    redact_all_types: bool = False
    #: Action of rules that name none: mask | hash | length | drop. "" = hash if hash_function is set, else mask.
    action: Literal["", "mask", "hash", "length", "drop"] = ""
    #: Replacement text of the mask action.
    mask: str = "****"
    #: Hash of the hash action: hmac-sha256 (used when empty), hmac-sha512, or the unkeyed md5, sha1, sha3.
    hash_function: Literal["", "md5", "sha1", "sha3", "hmac-sha256", "hmac-sha512"] = ""
    #: Secret of the hmac hash functions, e.g. ${env:REDACTION_KEY}: at least 32 bytes (64 for hmac-sha512).
    hmac_key: str = ""
    #: Hex characters of the digest the hash action keeps; 0 = the whole digest, as the Collector.
    hash_length: int = 0
    #: Applied to every string of a log record body first: keep (only the rules apply), mask, hash, length, drop.
    body_action: Literal["keep", "mask", "hash", "length", "drop"] = "keep"
    #: Diagnostic attributes: debug = names and counts of changed keys, info = counts only, silent = none.
    summary: Literal["debug", "info", "silent"] = "silent"

    @property
    def default_action(self) -> str:
        return self.action or ("hash" if self.hash_function else "mask")

    def key_rules(self) -> list[RuleSpec]:
        return list(rule_specs("blocked_key_patterns", self.blocked_key_patterns, []))

    def value_rules(self) -> list[RuleSpec]:
        return list(rule_specs("blocked_values", self.blocked_values, []))

    def detector_rules(self) -> list[RuleSpec]:
        return list(detector_specs(self.detectors, []))

    def validate(self) -> None:
        errors: list[str] = []
        rules = list(rule_specs("blocked_key_patterns", self.blocked_key_patterns, errors))
        values = list(rule_specs("blocked_values", self.blocked_values, errors))
        for rule in rules + values:
            check_pattern(rule.path, rule.source, errors, non_empty=rule in values)
        for name in ("ignored_key_patterns", "allowed_values"):
            for index, text in enumerate(getattr(self, name)):
                check_pattern(f"{name}::{index}", text, errors, non_empty=False)
        detectors = list(detector_specs(self.detectors, errors))
        hashing = [r.path for r in rules + values + detectors if (r.action or self.default_action) == "hash"]
        if self.body_action == "hash":
            hashing.append("body_action")
        function = self.hash_function or "hmac-sha256"
        if hashing and function in _HMAC_MIN_KEY:
            needed = _HMAC_MIN_KEY[function]
            if not self.hmac_key:
                errors.append(f"hmac_key: required by the hash action ({hashing[0]}) with {function}; "
                              "set it from a secret, e.g. hmac_key: ${env:REDACTION_KEY}")
            elif len(self.hmac_key.encode()) < needed:
                errors.append(f"hmac_key: must be at least {needed} bytes for {function}, "
                              f"got {len(self.hmac_key.encode())}")
        digest = HASH_DIGEST_HEX[function]
        if self.hash_length and not 8 <= self.hash_length <= digest:
            errors.append(f"hash_length: must be 0 (whole digest) or 8..{digest} for {function}, "
                          f"got {self.hash_length}")
        if not self.mask:
            errors.append("mask: must not be empty; use the drop action to remove values")
        if errors:
            raise ConfigError(errors)
