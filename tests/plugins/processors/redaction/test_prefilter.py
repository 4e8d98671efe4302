"""The literals derived from patterns, and the scanner's mechanics (anchors, finds, searches, item boundaries)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.processors.redaction.detectors import Anchored, Literal, Search
from plugins.processors.redaction.literals import fold, required_literals
from plugins.processors.redaction.prefilter import Probe, Scanner, hit_limit


def literals(pattern: str) -> set[bytes] | None:
    found = required_literals(re.compile(pattern, re.ASCII))
    return None if found is None else set(found)


@pytest.mark.parametrize(("pattern", "expected"), [
    (r".*token.*", {b"token"}),
    (r"(?i)pass(word|wd)", {b"password", b"passwd"}),
    (r"4[0-9]{12}(?:[0-9]{3})?", {b"0" * 13, b"0" * 16}),
    (r"\d{3}-\d{2}-\d{4}", {b"000-00-0000"}),
    (r"ORD-\d{4,}", {b"ord-0000"}),
    (r"^Secret$", {b"secret"}),
    (r"colou?r", {b"colour", b"color"}),
    (r".+@mycompany.com", {b"@mycompany"}),  # the unescaped dot matches anything
    (r"(?=abc)abc", {b"abc"}),
    (r"(?:token|password|authorization)", {b"token", b"password", b"authorization"}),
    (r"\(\d{3}\) \d{3}", {b"  000  000"[1:]}),  # separators fold to spaces
    (r"[Aa][Pp][Ii]", {b"api"}),
])
def test_required_literals(pattern: str, expected: set[bytes]) -> None:
    assert literals(pattern) == expected


@pytest.mark.parametrize("pattern", [r".+", r"\w{8}", r"a*", r"x|.*", r"(.)\1+", r"[^x]+"])
def test_patterns_without_a_usable_literal(pattern: str) -> None:
    assert literals(pattern) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([r"(?i)to(k|c)en[_-]?\d{2,}", r"[Ss]ecret(Key)?", r"\b(?:id|ref)=[0-9]{6}\b",
                        r"(?:CUST|cust)-\d{4}(?:-[A-Z]{2})?", r"x{2,3}y+z?"]).flatmap(
    lambda p: st.tuples(st.just(p), st.from_regex(re.compile(p, re.ASCII), fullmatch=True).filter(
        lambda text: re.fullmatch(p, text, re.ASCII) is not None))))
def test_every_match_contains_one_of_the_literals(case: tuple[str, str]) -> None:
    pattern, text = case
    found = literals(pattern)
    assert found and any(literal in fold(text.encode()) for literal in found), (pattern, text)


def scan(engine: Any, probes: list[Probe], items: list[bytes]) -> dict[int, int]:
    return engine(probes).scan(items)  # type: ignore[no-any-return]


def test_literals_flag_the_items_holding_them_with_their_bits(engine: Any) -> None:
    probes = [Probe(Literal("token"), 2), Probe(Literal("Bearer"), 4), Probe(Literal("api_key"), 8)]
    items = [b"nothing", b"x TOKEN y", b"bearer z and api_key", b"tok en", b"apiKey"]
    assert scan(engine, probes, items) == {1: 2, 2: 12}


def test_a_hit_is_confirmed_against_the_literal_of_the_anchor_found(engine: Any) -> None:
    # "xox" and "kek" may share anchors with other literals; "Mozilla" must not pass for either.
    probes = [Probe(Literal("xoxb-"), 2), Probe(Literal("kek"), 4), Probe(Literal("zap"), 8)]
    assert scan(engine, probes, [b"Mozilla/5.0 (X11; Linux x86_64)", b"xoxb-123", b"kekz"]) == {1: 2, 2: 4}


def test_a_literal_contained_in_another_stands_for_both(engine: Any) -> None:
    probes = [Probe(Literal("secret"), 2), Probe(Literal("client_secret"), 4)]
    hits = scan(engine, probes, [b"the secret", b"client_secret=1"])
    # Both rules where the longer literal is; the re engine also names both where only the shorter one is.
    assert hits[1] == 6 and hits[0] & 2 and set(hits) == {0, 1}


def test_one_byte_and_digit_only_literals(engine: Any) -> None:
    assert scan(engine, [Probe(Literal("@"), 2)], [b"a", b"x@y"]) == {1: 2}
    assert scan(engine, [Probe(Literal("0" * 13), 2)], [b"1234567890123", b" ", b"123456789012"]) == {0: 2}


def test_anchored_bytes_need_their_confirmation(engine: Any) -> None:
    probe = Probe(Anchored("+", re.compile(rb"\+\d")), 2)
    assert scan(engine, [probe], [b"a+b", b"call +44", b"+"]) == {1: 2}


def test_searches_on_raw_and_folded_bytes_with_confirmation(engine: Any) -> None:
    raw = Probe(Search(re.compile(rb":[0-9a-f]{0,4}:")), 2)
    folded = Probe(Search(re.compile(rb"0000(?<=[a-z\x01]0000)"), folded=True, confirm=re.compile(rb"[A-Z]"),
                          offset=1, raw=rb"[A-Z][0-9]{4}"), 4)
    assert scan(engine, [raw, folded], [b"http://x", b"fe80::1", b"X1234", b"x1234"]) == {1: 2, 2: 4}


def test_a_match_across_two_items_flags_both(engine: Any) -> None:
    probe = Probe(Search(re.compile(rb"\.[0-9]{1,3}\.[0-9]{1,3}\.")), 2)
    assert scan(engine, [probe], [b"abc", b"v1.2", b".3.4", b"z"]) == {1: 2, 2: 2}


def test_anchors_are_tuned_on_the_first_large_batch() -> None:
    scanner = Scanner([Probe(Literal(word), 2) for word in ("secret", "transcript", "message")])
    before = scanner.anchors
    filler = b"cccc ccc cc " * 6000  # make 'c' look common
    hits = scanner.scan([filler, b"a secret", b"the transcript", b"message"])
    assert hits == {1: 2, 2: 2, 3: 2}
    assert scanner.anchors != before and ord("c") not in scanner.anchors


def test_past_the_hit_limit_the_whole_buffer_is_one_hit_with_every_rule(engine: Any) -> None:
    """A run of digits ends a 13-digit card candidate at every byte: rather than report each, the scan gives up
    and flags everything (the walk then checks every field, with every rule)."""
    probes = [Probe(Literal("0" * 13), 2), Probe(Literal("bearer"), 4)]
    digits = b"7" * (2 * hit_limit(b"7" * 100_000))
    assert engine(probes).find(digits) == [(0, len(digits) - 1, 6)]
    few = b"x 4111111111111111 y " * 10
    hits = engine(probes).find(few)
    assert hits and all(last < len(few) - 1 or first > 0 for first, last, _ in hits)  # under the limit: each
