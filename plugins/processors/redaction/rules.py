"""The configuration compiled once: key decisions, value rules with their prefilter probes, and text redaction.

Order of decisions for one attribute, as in the Collector: an ignored key passes untouched; a key outside
``allowed_keys`` (unless ``allow_all_keys``) is removed; a key matching ``blocked_key_patterns`` has its whole
value replaced; otherwise every value rule (``blocked_values`` and detectors) replaces the parts it matches.
Text inside a match of ``allowed_values`` is never replaced, by any rule.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from . import hyperscan_scanner
from .actions import Action, Replacer
from .config import Config
from .detectors import DETECTORS, Literal
from .hyperscan_scanner import HyperscanScanner
from .literals import FOLD, required_literals
from .prefilter import Probe, ScanEngine, Scanner, value_gate
from .specs import compile_pattern

__all__ = ["SUMMARY_KEYS", "KeyDecision", "RuleSet", "ValueRule"]

#: Attributes the summary writes; always passed through, so a chain of redaction processors keeps them.
SUMMARY_KEYS = frozenset(
    f"redaction.{body}{kind}.{field}"
    for body in ("", "body.") for kind in ("redacted", "masked", "allowed") for field in ("keys", "count")
) | {"redaction.ignored.count", "redaction.body.ignored.count"}


class KeyDecision(enum.Enum):
    CHECK = "check"  # value rules apply
    IGNORE = "ignore"  # ignored_keys / ignored_key_patterns
    REDACT = "redact"  # not in allowed_keys: removed
    BLOCK = "block"  # blocked_key_patterns: whole value replaced
    SUMMARY = "summary"  # written by this processor


@dataclass(frozen=True)
class ValueRule:
    bit: int
    path: str
    find: Callable[[str], Iterable[tuple[int, int]]]
    normalize: Callable[[str], str]
    action: Action
    #: Cheap check of a value's (raw, folded) bytes; None = always run ``find``.
    gate: Callable[[bytes, bytes], bool] | None = None


def _regex_finder(pattern: re.Pattern[str]) -> Callable[[str], Iterator[tuple[int, int]]]:
    def find(text: str) -> Iterator[tuple[int, int]]:
        for match in pattern.finditer(text):
            if match.end() > match.start():
                yield match.span()
    return find


def _identity(text: str) -> str:
    return text


def _whole(text: str) -> Iterator[tuple[int, int]]:
    if text:
        yield 0, len(text)


_KEY_CACHE_LIMIT = 8192


def _ends_with_dollar(text: str) -> bool:
    slashes = len(text[:-1]) - len(text[:-1].rstrip("\\"))
    return text.endswith("$") and slashes % 2 == 0


def _key_pattern(text: str) -> re.Pattern[str]:
    """A trailing ``$`` means the end of the key, as in RE2 (Python's would also match before a final newline)."""
    return compile_pattern(text[:-1] + r"\Z" if _ends_with_dollar(text) else text)


#: Prefilter engine: "hyperscan" when the library is installed, else "re" (same items found, slower).
ENGINE = "hyperscan" if hyperscan_scanner.AVAILABLE else "re"


def make_scanner(probes: Sequence[Probe]) -> ScanEngine:
    return HyperscanScanner(probes) if ENGINE == "hyperscan" else Scanner(probes)


def _key_end_variant(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """For the prefilter only: a key pattern ending at the end of the key; in a KeyValue's bytes the key is
    followed by the tag of its value (0x12). An attribute without a value has nothing to replace."""
    text = pattern.pattern
    if not text.endswith(r"\Z"):
        return pattern
    try:
        return re.compile(text[:-2] + "\x12", pattern.flags)
    except re.error:
        return pattern


def _with_length(key: str) -> str:
    """An exact key as it sits in a KeyValue: after its length byte (keys under 128 bytes)."""
    size = len(key.encode("utf-8", "surrogatepass"))
    return chr(size) + key if 0 < size < 128 else key


class RuleSet:
    def __init__(self, config: Config) -> None:
        self.config = config
        default = Action(config.default_action)
        self.replacer = Replacer(config.mask, config.hash_function, config.hmac_key, config.hash_length)
        self.summary = config.summary
        #: body_action as a rule matching every whole string of a log body, so key rules and allowed_values hold.
        self.body_rule = None if config.body_action == "keep" else ValueRule(
            0, "body_action", _whole, _identity, Action(config.body_action))
        self.redact_all_types = config.redact_all_types
        self.block_numbers = config.blocked_key_patterns_numbers
        self.allowlist = None if config.allow_all_keys else frozenset(config.allowed_keys)
        self.ignored = frozenset(config.ignored_keys)
        self.ignored_patterns = [compile_pattern(p) for p in config.ignored_key_patterns]
        self.allowed_values = [compile_pattern(p) for p in config.allowed_values]
        self.key_rules = [(_key_pattern(r.source), Action(r.action) if r.action else default)
                          for r in config.key_rules()]
        probes: list[Probe] = []
        unfiltered: list[str] = []
        #: Bit 0 stands for "something key-related is here"; value rules take bits 1, 2, ...
        key_bit = 1
        self.value_rules: list[ValueRule] = []
        for spec in config.detector_rules():
            detector = DETECTORS[spec.source]
            bit = 1 << (len(self.value_rules) + 1)
            self.value_rules.append(ValueRule(bit, spec.path, detector.find, detector.normalize,
                                              Action(spec.action) if spec.action else default,
                                              value_gate(detector.triggers)))
            probes.extend(Probe(trigger, bit) for trigger in detector.triggers)
        for spec in config.value_rules():
            pattern = compile_pattern(spec.source)
            bit = 1 << (len(self.value_rules) + 1)
            rule_probes = self._probes(pattern, bit, spec.path, unfiltered)
            gate = value_gate([probe.trigger for probe in rule_probes]) if rule_probes else None
            self.value_rules.append(ValueRule(bit, spec.path, _regex_finder(pattern), _identity,
                                              Action(spec.action) if spec.action else default, gate))
            probes.extend(rule_probes)
        for pattern, _ in self.key_rules:
            probes.extend(self._probes(_key_end_variant(pattern), key_bit, "blocked_key_patterns", unfiltered))
        if self.summary != "silent":  # the counts of ignored keys and allowed values must be found too
            probes.extend(Probe(Literal(_with_length(key)), key_bit) for key in self.ignored)
            for pattern in self.ignored_patterns + self.allowed_values:
                probes.extend(self._probes(pattern, key_bit, "summary", unfiltered))
        self.all_rules = sum(rule.bit for rule in self.value_rules) | key_bit
        #: Why every item is walked for its values, if it is ('' = the prefilter decides).
        self.walk_all_reason = ""
        if config.redact_all_types:
            self.walk_all_reason = "redact_all_types: numbers are not visible in the serialized bytes"
        elif unfiltered:
            self.walk_all_reason = f"no literal the prefilter can search for in {', '.join(unfiltered)}"
        self.scanner = None if self.walk_all_reason else make_scanner(probes)
        if self.scanner is not None and self.scanner.empty:
            self.scanner = None
        #: Every item must be visited for its keys: an allow-list removes whatever is not on it.
        self.walk_all_keys = self.allowlist is not None
        #: Keys inside map values can be ignored, removed or blocked, so maps are entered even without value rules.
        self.nested_keys_matter = bool(self.allowlist is not None or self.key_rules or self.ignored
                                       or self.ignored_patterns)
        self._keys: dict[str, tuple[KeyDecision, Action | None]] = {}
        self._by_mask: dict[int, tuple[ValueRule, ...]] = {}

    @staticmethod
    def _probes(pattern: re.Pattern[str], bit: int, path: str, unfiltered: list[str]) -> list[Probe]:
        literals = required_literals(pattern)
        if literals is None:
            unfiltered.append(f"{path} ({pattern.pattern!r})")
            return []
        return [Probe(Literal(lit.decode("utf-8", "surrogatepass")), bit) for lit in literals]

    def rules_for(self, mask: int) -> tuple[ValueRule, ...]:
        rules = self._by_mask.get(mask)
        if rules is None:
            rules = self._by_mask[mask] = tuple(r for r in self.value_rules if r.bit & mask)
        return rules

    def key_decision(self, key: str) -> tuple[KeyDecision, Action | None]:
        decision = self._keys.get(key)
        if decision is None:
            decision = self._decide(key)
            if len(self._keys) < _KEY_CACHE_LIMIT:
                self._keys[key] = decision
        return decision

    def _decide(self, key: str) -> tuple[KeyDecision, Action | None]:
        if key in SUMMARY_KEYS:
            return KeyDecision.SUMMARY, None
        if key in self.ignored or any(p.search(key) for p in self.ignored_patterns):
            return KeyDecision.IGNORE, None
        if self.allowlist is not None and key not in self.allowlist:
            return KeyDecision.REDACT, None
        for pattern, action in self.key_rules:
            if pattern.search(key):
                return KeyDecision.BLOCK, action
        return KeyDecision.CHECK, None

    def allowed_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for p in self.allowed_values for m in p.finditer(text) if m.end() > m.start()]

    def redact_text(self, text: str, rules: Sequence[ValueRule]) -> tuple[str | None, bool]:
        """(new text, or None when nothing changed; True when a drop rule matched)."""
        if not text or not rules:
            return None, False
        found: list[tuple[int, int, ValueRule]] = []
        raw = text.encode("utf-8", "surrogatepass")
        folded = raw.translate(FOLD)
        for rule in rules:
            if rule.gate is not None and not rule.gate(raw, folded):
                continue
            for start, end in rule.find(text):
                found.append((start, -end, rule))
        if not found:
            return None, False
        found.sort(key=lambda item: (item[0], item[1]))
        allowed = self.allowed_spans(text) if self.allowed_values else ()
        pieces: list[str] = []
        position = 0
        for start, negative_end, rule in found:
            end = -negative_end
            if start < position or any(a <= start and end <= b for a, b in allowed):
                continue
            if rule.action is Action.DROP:
                return None, True
            secret = text[start:end]
            pieces.append(text[position:start])
            pieces.append(self.replacer.replace(rule.action, secret, rule.normalize(secret)))
            position = end
        if not pieces:
            return None, False
        pieces.append(text[position:])
        return "".join(pieces), False

    def replace_whole(self, text: str, action: Action) -> str | None:
        """The replacement of a whole value (blocked key, body_action), or None when allowed_values keep it."""
        if self.allowed_values and any(a == 0 and b == len(text) for a, b in self.allowed_spans(text)):
            return None
        return self.replacer.replace(action, text, text)
