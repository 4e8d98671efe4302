"""Shared by the attribute policies: find a key among resource and span attributes, pre-filtered on bytes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gateway import varint

from .base import Decision

if TYPE_CHECKING:
    from ..trace import TraceView

__all__ = ["any_attribute", "key_needle", "prefiltered", "string_needle"]


def key_needle(key: str) -> bytes:
    """How ``KeyValue.key == key`` looks serialized (field 1, length-delimited)."""
    raw = key.encode()
    return b"\x0a" + varint(len(raw)) + raw


def string_needle(value: str) -> bytes:
    """How ``AnyValue.string_value == value`` looks serialized (field 1, length-delimited)."""
    return key_needle(value)


def prefiltered(policy: Any, traces: Sequence[TraceView], candidates: list[bool]) -> list[Decision]:
    """``evaluate_many`` of an attribute policy: ``policy.evaluate`` of each trace whose bytes may hold a match
    (``candidates``), and for the others what it gives when nothing matches (sampled with ``invert_match``)."""
    absent = Decision.SAMPLED if policy.invert else Decision.NOT_SAMPLED
    evaluate = policy.evaluate
    return [evaluate(trace) if candidate else absent for trace, candidate in zip(traces, candidates, strict=True)]


def _find(attributes: Any, key: str) -> Any:
    for attribute in attributes:
        if attribute.key == key:
            return attribute.value
    return None


def any_attribute(trace: TraceView, key: str, needle: bytes, matches: Callable[[Any], bool],
                  skip_empty_span_strings: bool = False) -> bool:
    """True when a resource or a span of ``trace`` has attribute ``key`` whose AnyValue ``matches``.

    ``needle`` is ``key_needle(key)``: a trace whose bytes do not contain it cannot have the key, and most
    traces are ruled out by that one C-level substring test before anything is decoded.
    """
    if not trace.may_contain(needle):
        return False
    for resource in trace.resources():
        value = _find(resource.attributes, key)
        if value is not None and matches(value):
            return True
    if not trace.spans_may_contain(needle):
        return False
    for span in trace.spans():
        value = _find(span.attributes, key)
        if value is None:
            continue
        if skip_empty_span_strings and value.WhichOneof("value") == "string_value" and not value.string_value:
            continue
        if matches(value):
            return True
    return False
