"""The common pipeline of application logs, ``operators: [json_parser]`` (body → attributes, with optional
``timestamp:`` and ``severity:`` blocks reading top-level keys), run without building entries: each line is
parsed and encoded in one loop (``RecordBuffer.add_json_lines``).

It produces exactly what the general path produces. A line it cannot take simply (not a JSON object, a key that
clashes with the file attributes, a missing or unparseable time or level, a nested value) goes through the
general path instead, which also counts and logs the error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .operators.entry import Field
from .operators.ops import JsonParserOp
from .operators.pipeline import END, Pipeline

__all__ = ["JsonLane", "json_lane"]


@dataclass(frozen=True)
class JsonLane:
    #: Top-level key of the time, and its parser (to Unix nanoseconds), or None without a timestamp block.
    time_key: str | None
    parse_time: Callable[[Any], int] | None
    #: Top-level key of the severity, and the mapper's number and text functions.
    severity_key: str | None
    severity_number: Callable[[Any], int] | None
    severity_text: Callable[[Any, int], str] | None
    #: Whether ``parse_time`` of a string is ``parse_rfc3339(value, None)`` when that gives a time.
    rfc3339: bool = False
    #: Level string → its encoded severity fields (filled by ``RecordBuffer.add_json_lines``).
    severities: dict[str, bytes] = field(default_factory=dict, compare=False)


def _top_level_attribute(field: Field) -> str | None:
    return field.keys[0] if field.root == "attributes" and len(field.keys) == 1 else None


def json_lane(pipeline: Pipeline) -> JsonLane | None:
    """The lane for this pipeline, or None when it is not exactly one plain json_parser."""
    if len(pipeline.operators) != 1:
        return None
    op = pipeline.operators[0]
    if type(op) is not JsonParserOp or op.condition is not None or op.outputs != (END,):
        return None
    if not op.body_to_attributes:
        return None
    time_key = severity_key = None
    if op.time is not None:
        time_key = _top_level_attribute(op.time.field)
        if time_key is None:
            return None
    if op.severity is not None:
        severity_key = _top_level_attribute(op.severity.field)
        if severity_key is None:
            return None
    return JsonLane(time_key, op.time.parser.parse if op.time else None,
                    severity_key, op.severity.mapper.number if op.severity else None,
                    op.severity.mapper.text if op.severity else None,
                    op.time.parser.rfc3339 if op.time else False)
