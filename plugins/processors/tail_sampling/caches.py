"""Decision caches: the most recent decisions by trace id, so spans arriving after a decision follow it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

__all__ = ["DecisionCache"]


class DecisionCache:
    """A bounded LRU map from trace id to what the caller needs to replay the decision.

    An OrderedDict, not a plain dict: evicting the oldest entry must stay O(1) however many were evicted before.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[bytes, Any] = OrderedDict()

    def get(self, trace_id: bytes) -> Any:
        entry = self._entries.get(trace_id)
        if entry is not None:
            self._entries.move_to_end(trace_id)
        return entry

    def put(self, trace_id: bytes, value: Any) -> None:
        if self.capacity <= 0:
            return
        entries = self._entries
        if trace_id in entries:  # a new id goes in at the end already: one call less per decision
            entries.move_to_end(trace_id)
        entries[trace_id] = value
        if len(entries) > self.capacity:
            entries.popitem(last=False)

    def put_many(self, items: Iterable[tuple[bytes, Any]]) -> None:
        """``put`` of each (trace id, value) in turn, for distinct trace ids: the same entries in the same order,
        with the new ids added by one C-level update."""
        if self.capacity <= 0:
            return
        entries = self._entries
        items = list(items)
        before = len(entries)
        entries.update(items)
        if len(entries) != before + len(items):  # some were there already: put moves them to the end
            for trace_id, _ in items:
                entries.move_to_end(trace_id)
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, trace_id: bytes) -> bool:
        return trace_id in self._entries
