"""What every operator shares: its outputs, the ``if`` condition and ``on_error`` with counted, once-logged errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .entry import Entry
from .expr import Expression

__all__ = ["ErrorSink", "Operator"]

#: Distinct error causes remembered per operator for "logged once"; later new causes are only counted.
_MAX_LOGGED_CAUSES = 100


class ErrorSink:
    """Counts operator errors and logs each cause (operator id and error kind) once; counts entries operators
    drop (``dropped(reason, n)``: a ``filter``'s matches, an entry failed with ``on_error: drop``)."""

    def __init__(self, logger: logging.LoggerAdapter | logging.Logger,  # type: ignore[type-arg]
                 count: Callable[[str, int], None],
                 dropped: Callable[[str, int], None] = lambda _reason, _n: None) -> None:
        self.logger = logger
        self.count = count
        self.dropped = dropped
        self._logged: set[tuple[str, str]] = set()

    def report(self, operator_id: str, exc: Exception, entry: Entry, quiet: bool, kept: bool = True) -> None:
        self.count(operator_id, 1)
        if not kept:
            self.dropped("operator_error", 1)
        cause = (operator_id, f"{type(exc).__name__}:{str(exc)[:40]}")
        if quiet or cause in self._logged or len(self._logged) >= _MAX_LOGGED_CAUSES:
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("operator %s failed: %s", operator_id, exc)
            return
        self._logged.add(cause)
        body = entry.body if not isinstance(entry.body, str) else entry.body[:200]
        self.logger.warning("operator %s failed on an entry (counted in otelgw_receiver_filelog_operator_errors; "
                            "further errors of this kind are counted, not logged): %s", operator_id, exc,
                            extra={"operator": operator_id, "body": str(body)})


class Operator:
    """An operator: takes a list of entries, hands lists on to output ids (``""`` is the receiver's output)."""

    def __init__(self, op_id: str, outputs: tuple[str, ...], errors: ErrorSink,
                 condition: Expression | None = None, on_error: str = "send") -> None:
        self.id = op_id
        self.outputs = outputs
        self.errors = errors
        self.condition = condition
        self.keep_on_error = on_error in ("send", "send_quiet")
        self.quiet = on_error in ("send_quiet", "drop_quiet")

    def route(self, entries: list[Entry]) -> list[tuple[str, list[Entry]]]:
        out = self.run(entries)
        if len(self.outputs) == 1:
            return [(self.outputs[0], out)]
        return [(output, out if i == 0 else [e.copy() for e in out]) for i, output in enumerate(self.outputs)]

    def run(self, entries: list[Entry]) -> list[Entry]:
        """Apply ``process`` to each entry, honouring ``if`` and ``on_error``."""
        out: list[Entry] = []
        append = out.append
        process, condition = self.process, self.condition
        for entry in entries:
            if condition is not None and not condition.true_for(entry):
                append(entry)
                continue
            try:
                process(entry)
            except Exception as exc:
                self.errors.report(self.id, exc, entry, self.quiet, self.keep_on_error)
                if self.keep_on_error:
                    append(entry)
                continue
            append(entry)
        return out

    def process(self, entry: Entry) -> None:
        raise NotImplementedError

    # stateful operators (container) hold entries back between batches
    def held_offset(self, source: Any) -> int | None:
        return None

    def flush(self, older_than: float | None) -> list[Entry]:
        return []
