"""Stream labels: names made valid for Loki, the label-set text, severity levels, and the label cap."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LEVELS", "Label", "LabelSet", "cap", "label_name", "label_set_text"]

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_NAMES: dict[str, str] = {}

#: severity_number → the `level` label: TRACE, TRACE2, ..., FATAL4 (0, unspecified, gives no label).
LEVELS = ("", *(f"{base}{n if n > 1 else ''}" for base in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
                for n in range(1, 5)))


def label_name(name: str) -> str:
    """The Prometheus rules, as the contrib translator applies them: every character outside [a-zA-Z0-9_]
    becomes ``_``; a leading digit gets ``key_`` in front, and a leading ``__`` (reserved by Loki) ``key``."""
    cached = _NAMES.get(name)
    if cached is None:
        cached = _INVALID.sub("_", name)
        if cached[:1].isdigit():
            cached = "key_" + cached
        elif cached.startswith("__"):
            cached = "key" + cached
        if len(_NAMES) < 4096:
            _NAMES[name] = cached
    return cached


@dataclass(frozen=True)
class Label:
    name: str
    value: str
    #: The attribute it was promoted from ("resource" or "attributes" scope), which then leaves the line.
    source: tuple[str, str] | None = None


def label_set_text(labels: Sequence[Label]) -> str:
    """``{job="api", level="INFO"}``: sorted by name, values escaped as Go/PromQL strings."""
    return "{" + ", ".join(f'{label.name}="{_escape(label.value)}"'
                           for label in sorted(labels, key=lambda label: label.name)) + "}"


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


@dataclass(frozen=True)
class LabelSet:
    """What one record's labels come to after the cap."""

    text: str
    #: The same labels as (name, value) pairs, for the JSON push.
    pairs: tuple[tuple[str, str], ...]
    #: Labels over the cap, as structured metadata pairs (empty when they stay in the line).
    overflow: tuple[tuple[str, str], ...]
    #: Attributes that leave the line: promoted to labels, or moved to structured metadata.
    removed: frozenset[tuple[str, str]]


def cap(labels: Sequence[Label], max_labels: int, overflow_to_metadata: bool) -> LabelSet:
    """Keep the first label of each name, then the first ``max_labels`` (the list is in priority order).

    An empty value is no label in Loki's data model, so it is skipped; a stream needs at least one label, so an
    empty set becomes ``{exporter="OTLP"}``.
    """
    kept: list[Label] = []
    seen: set[str] = set()
    over: list[Label] = []
    for label in labels:
        if not label.value or label.name in seen:
            continue
        seen.add(label.name)
        (kept if len(kept) < max_labels else over).append(label)
    if not kept:
        kept.append(Label("exporter", "OTLP"))
    removed = {label.source for label in kept if label.source is not None}
    overflow: tuple[tuple[str, str], ...] = ()
    if overflow_to_metadata and over:
        overflow = tuple((label.name, label.value) for label in over)
        removed.update(label.source for label in over if label.source is not None)
    return LabelSet(label_set_text(kept), tuple(sorted((label.name, label.value) for label in kept)), overflow,
                    frozenset(removed))
