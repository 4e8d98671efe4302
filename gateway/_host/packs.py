"""How config fragments compose: the lists that name a pipeline's components merge instead of being replaced.

otelgw's configuration is usually a base file plus fragments merged after it (`configs/kpi/*.yaml`,
`configs/alerts/*.yaml`, `configs/redaction.yaml`, `configs/tail_sampling.yaml`). With the plain rule "a later
list replaces an earlier one", a fragment that lists `processors: [tail_sampling, batch]` for the `traces`
pipeline silently removes the `redaction` processor an earlier file put there. So:

- ``service::extensions`` and ``service::pipelines::<id>::receivers`` / ``exporters`` are appended, a component
  already listed is not listed twice. These are the lists the Collector appends when its
  ``confmap.enableMergeAppendOption`` feature gate is on.
- ``service::pipelines::<id>::processors`` (which the Collector does not append, because their order matters)
  merge by order: the result keeps every processor of both lists, and every pair that both lists order keeps
  that order. ``[redaction, batch]`` and ``[tail_sampling, batch]`` give ``[redaction, tail_sampling, batch]``:
  earlier files' processors come first where the lists do not say. Two lists that order the same two processors
  differently are a configuration error naming the key path; a processor is never dropped.

Every other list (``policies``, ``kpis``, ``rules``, ``buckets``...) is replaced, as in the Collector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["APPENDED", "merge_component_list", "ordered_union"]

#: Keys of the lists appended (the Collector's merge-append set), under ``service::pipelines::<id>``.
APPENDED = frozenset({"receivers", "exporters"})


def merge_component_list(path: Sequence[str], base: list[Any], override: list[Any],
                         errors: list[str]) -> list[Any] | None:
    """The merged list at ``path``, or None when the list at ``path`` is simply replaced."""
    if tuple(path) == ("service", "extensions"):
        return _appended(base, override)
    if len(path) == 4 and path[0] == "service" and path[1] == "pipelines":
        if path[3] in APPENDED:
            return _appended(base, override)
        if path[3] == "processors":
            merged, conflict = ordered_union(base, override)
            if conflict is not None:
                first, second = conflict
                errors.append(f"{'::'.join(path)}: the merged files order {first!r} and {second!r} differently "
                              f"({base} then {override}); list the processors in one order, or in one file")
                return list(base) + [item for item in override if item not in base]
            return merged
    return None


def _appended(base: list[Any], override: list[Any]) -> list[Any]:
    out = list(base)
    out.extend(item for item in override if item not in out)
    return out


def ordered_union(first: list[Any], second: list[Any]) -> tuple[list[Any], tuple[Any, Any] | None]:
    """Every item of both lists once, in an order that keeps each list's order; ties go to ``first``'s items.
    Returns (merged, None), or (partial, (a, b)) when the lists order ``a`` and ``b`` differently."""
    out: list[Any] = []
    i = j = 0
    first_set, second_set = set(map(_key, first)), set(map(_key, second))
    placed: set[Any] = set()
    while i < len(first) or j < len(second):
        if i < len(first) and _key(first[i]) in placed:
            i += 1
            continue
        if j < len(second) and _key(second[j]) in placed:
            j += 1
            continue
        if i < len(first) and j < len(second) and _key(first[i]) == _key(second[j]):
            out.append(first[i])
            placed.add(_key(first[i]))
            i, j = i + 1, j + 1
            continue
        # Take from `first` unless its next item must wait for something `second` has first.
        if i < len(first) and (_key(first[i]) not in second_set or j >= len(second)):
            out.append(first[i])
            placed.add(_key(first[i]))
            i += 1
        elif j < len(second) and (_key(second[j]) not in first_set or i >= len(first)):
            out.append(second[j])
            placed.add(_key(second[j]))
            j += 1
        else:
            return out, (first[i], second[j])  # both next items are shared but differ: opposite orders
    return out, None


def _key(item: Any) -> Any:
    return item if isinstance(item, (str, int, float, bool)) or item is None else repr(item)
