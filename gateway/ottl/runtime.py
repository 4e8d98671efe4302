"""Running compiled OTTL over OTLP batches: statement groups (transform), drop conditions (filter), and errors.

The walk goes resource → scope → item. At each envelope, conditions that read only the resource (or only the
resource and scope) are evaluated once, and the statements they rule out are left out of the per-item loop; the
per-item loop is a plain ``for`` over (closure, condition) pairs. This pre-evaluation is skipped for a group in
which some statement writes resource or scope fields, since a later condition could then see the change.

Run-time errors are handled per ``error_mode``: ``ignore`` logs (rate-limited, per statement) and goes on with
the next statement, ``silent`` goes on without logging, ``propagate`` stops and raises ``OttlRunError``. All three
count the error per statement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .compiler import (
    ITEM,
    RESOURCE,
    SCOPE,
    CompiledCondition,
    CompiledStatement,
    CompileError,
    compile_condition,
    compile_statement,
)
from .loops import Loop, make_loop
from .paths import Ctx
from .wire import NotWire, TracesEdit, real_resource, real_scope

__all__ = ["ERROR_MODES", "ConditionSet", "ErrorReporter", "OttlRunError", "StatementGroup", "WirePlan",
           "describe_item", "envelope_fields"]

ERROR_MODES = ("ignore", "silent", "propagate")

_FIELDS = {"traces": ("resource_spans", "scope_spans", "spans"),
           "metrics": ("resource_metrics", "scope_metrics", "metrics"),
           "logs": ("resource_logs", "scope_logs", "log_records")}


def envelope_fields(signal: str) -> tuple[str, str, str]:
    return _FIELDS[signal]


class OttlRunError(Exception):
    """A statement failed on an item with ``error_mode: propagate``."""


def describe_item(context: str, ctx: Ctx) -> str:
    """Names the item an error happened on: trace and span id, metric name, log ids, resource service."""
    item, parent = ctx.item, ctx.parent
    try:
        if context == "span":
            return f"span {item.name!r} trace_id={item.trace_id.hex()} span_id={item.span_id.hex()}"
        if context == "spanevent":
            return (f"event {item.name!r} of span {parent.name!r} trace_id={parent.trace_id.hex()} "
                    f"span_id={parent.span_id.hex()}")
        if context == "metric":
            return f"metric {item.name!r}"
        if context == "datapoint":
            return f"data point of metric {parent.name!r} at time_unix_nano={item.time_unix_nano}"
        if context == "log":
            ids = f" trace_id={item.trace_id.hex()} span_id={item.span_id.hex()}" if item.trace_id else ""
            return f"log record at time_unix_nano={item.time_unix_nano or item.observed_time_unix_nano}{ids}"
        if context == "scope":
            return f"scope {item.name!r}"
        for kv in ctx.resource.attributes if ctx.resource is not None else ():
            if kv.key == "service.name":
                return f"resource of service {kv.value.string_value!r}"
        return "resource"
    except AttributeError:  # an envelope-level evaluation: no item yet
        return "envelope"


class ErrorReporter:
    """Counts run-time errors per statement and logs at most one line per statement every ``interval`` seconds."""

    def __init__(self, logger: Any, count: Callable[[str], None], interval: float = 10.0) -> None:
        self.logger = logger
        self.count = count
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, statement: str, context: str, ctx: Ctx, exc: BaseException, mode: str) -> None:
        self.count(statement)
        item = describe_item(context, ctx)
        message = f"statement {statement!r} failed in the {context} context on {item}: {exc}"
        if mode == "propagate":
            raise OttlRunError(message) from exc
        if mode == "silent":
            return
        now = time.monotonic()
        last = self._last.get(statement)
        if last is not None and now - last < self.interval:
            self._suppressed[statement] = self._suppressed.get(statement, 0) + 1
            return
        suppressed = self._suppressed.pop(statement, 0)
        self._last[statement] = now
        self.logger.warning(message + (f" ({suppressed} more errors of this statement since the last report)"
                                       if suppressed else ""),
                            extra={"statement": statement, "ottl_context": context, "item": item})


def _and(a: CompiledCondition | None, b: CompiledCondition | None) -> CompiledCondition | None:
    if a is None:
        return b
    if b is None:
        return a
    fa, fb = a.fn, b.fn
    return CompiledCondition(f"{a.text} and {b.text}", a.context, lambda ctx: fa(ctx) and fb(ctx),
                             max(a.level, b.level), a.uses_cache or b.uses_cache)


def any_of(conditions: Sequence[CompiledCondition]) -> CompiledCondition | None:
    """One condition that holds when any of ``conditions`` holds (a group's ``conditions:`` list)."""
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    fns = [c.fn for c in conditions]
    return CompiledCondition(" or ".join(c.text for c in conditions), conditions[0].context,
                             lambda ctx: any(f(ctx) for f in fns), max(c.level for c in conditions),
                             any(c.uses_cache for c in conditions))


@dataclass
class _Entry:
    statement: CompiledStatement
    run: Callable[[Ctx], None]
    condition: CompiledCondition | None
    #: Its place in the group (``report`` of the loops of ``loops.py``).
    index: int = 0


class StatementGroup:
    """Statements of one context, run in order on every item of a batch (the transform processor's unit)."""

    def __init__(self, signal: str, context: str, statements: Sequence[CompiledStatement],
                 conditions: Sequence[CompiledCondition], error_mode: str, reporter: ErrorReporter,
                 wire: bool = False) -> None:
        self.signal = signal
        #: Statements compiled for the view of ``wire.py`` (``WirePlan``): batches are ``TracesEdit`` views.
        self.wire = wire
        self.conditions = list(conditions)
        self.context = context
        self.error_mode = error_mode
        self.reporter = reporter
        guard = any_of(conditions)
        self.entries = [_Entry(s, s.run, _and(guard, s.condition), i) for i, s in enumerate(statements)]
        self.uses_cache = any(s.uses_cache or (e.condition is not None and e.condition.uses_cache)
                              for s, e in zip(statements, self.entries, strict=True))
        # Envelope-level pre-evaluation is sound only if nothing in the group writes the envelope.
        self.prefilter = all(s.write_level == ITEM for s in statements) and context not in ("resource", "scope")
        #: The per-item loop for each set of active statements seen (``loops.make_loop``).
        self._loops: dict[tuple[tuple[int, bool], ...], Loop] = {}

    def _select(self, ctx: Ctx, entries: list[tuple[Any, Any, _Entry]], level: int) -> list[tuple[Any, Any, _Entry]]:
        """Evaluate the conditions that read nothing below ``level``; keep the entries they do not rule out."""
        kept = []
        for run, condition, entry in entries:
            if condition is not None and entry.condition is not None and entry.condition.level <= level:
                try:
                    if not condition(ctx):
                        continue
                except Exception as exc:
                    self.reporter.report(entry.statement.text, self.context, ctx, exc, self.error_mode)
                    continue
                condition = None
            kept.append((run, condition, entry))
        return kept

    def run(self, batch: Any) -> bool:
        """Apply the group to ``batch`` in place. True when some statement ran (the batch may have changed)."""
        f_resource, f_scope, f_items = _FIELDS[self.signal]
        context = self.context
        ctx = Ctx(context)
        base = [(e.run, e.condition.fn if e.condition is not None else None, e) for e in self.entries]
        executed = False
        wire = self.wire
        for resource_envelope in getattr(batch, f_resource):
            ctx.resource = real_resource(resource_envelope.resource) if wire else resource_envelope.resource
            if context == "resource":
                ctx.item = ctx.resource
                executed |= self._items(ctx, base, (ctx.resource,))
                continue
            active = self._select(ctx, base, RESOURCE) if self.prefilter else base
            if not active:
                continue
            for scope_envelope in getattr(resource_envelope, f_scope):
                ctx.scope = real_scope(scope_envelope.scope) if wire else scope_envelope.scope
                if context == "scope":
                    executed |= self._items(ctx, active, (ctx.scope,))
                    continue
                scoped = self._select(ctx, active, SCOPE) if self.prefilter else active
                if not scoped:
                    continue
                items = getattr(scope_envelope, f_items)
                if context == "spanevent":
                    for span in items:
                        if span.events:
                            ctx.parent = span
                            executed |= self._items(ctx, scoped, span.events)
                elif context == "datapoint":
                    for metric in items:
                        kind = metric.WhichOneof("data")
                        if kind is not None:
                            ctx.parent = metric
                            executed |= self._items(ctx, scoped, getattr(metric, kind).data_points)
                else:
                    executed |= self._items(ctx, scoped, items)
        return executed

    def _items(self, ctx: Ctx, active: list[tuple[Any, Any, _Entry]], items: Any) -> bool:
        shape = tuple((entry.index, condition is not None) for _, condition, entry in active)
        loop = self._loops.get(shape)
        if loop is None:
            loop = self._loops[shape] = make_loop([(entry.index, run, condition) for run, condition, entry in active],
                                                  self.uses_cache)
        entries, reporter, context, mode = self.entries, self.reporter, self.context, self.error_mode

        def report(index: int, exc: BaseException) -> None:
            reporter.report(entries[index].statement.text, context, ctx, exc, mode)
        # A list: iterating one is 3x cheaper than iterating upb's repeated field.
        return loop(ctx, items if items.__class__ is tuple else list(items), report)

    def wire_twin(self) -> StatementGroup | None:
        """The group compiled for the view of ``wire.py``, or None when a statement or condition needs the OTLP
        classes (``NotWire``) or the group writes above its items (the view's resource and scope are read-only)."""
        if self.signal != "traces" or self.context != "span" or not self.prefilter:
            return None
        try:
            statements = [compile_statement(e.statement.text, self.context, wire=True) for e in self.entries]
            conditions = [compile_condition(c.text, self.context, wire=True) for c in self.conditions]
        except (NotWire, CompileError):
            return None
        return StatementGroup(self.signal, self.context, statements, conditions, self.error_mode, self.reporter,
                              wire=True)


class WirePlan:
    """The span statement groups of a transform, run on the received bytes of a trace request (see ``wire.py``)."""

    def __init__(self, groups: Sequence[StatementGroup]) -> None:
        self.groups = list(groups)

    @classmethod
    def of(cls, groups: Sequence[StatementGroup]) -> WirePlan | None:
        """The plan for ``groups``, or None unless every group has its ``wire_twin``."""
        twins = [group.wire_twin() for group in groups]
        if not twins or any(twin is None for twin in twins):
            return None
        return cls([twin for twin in twins if twin is not None])

    def run(self, data: bytes) -> bytes | None:
        """The request ``data`` after the statements, serialized; None when no statement ran (nothing changed).
        Raises ``OttlRunError`` as ``StatementGroup.run`` does."""
        view = TracesEdit.FromString(data)
        executed = False
        for group in self.groups:
            executed |= group.run(view)
        return view.SerializeToString() if executed else None


class ConditionSet:
    """Drop conditions of one context (the filter processor): an item matching any of them is removed."""

    def __init__(self, signal: str, context: str, conditions: Sequence[CompiledCondition], error_mode: str,
                 reporter: ErrorReporter, on_drop: Callable[[str, int], None]) -> None:
        self.signal = signal
        self.context = context
        self.conditions = list(conditions)
        self.error_mode = error_mode
        self.reporter = reporter
        self.on_drop = on_drop
        self.uses_cache = any(c.uses_cache for c in conditions)
        self._tally: dict[str, int] = {}

    def _dropped(self, condition: str, count: int) -> None:
        self._tally[condition] = self._tally.get(condition, 0) + count

    def _match(self, ctx: Ctx, conditions: list[CompiledCondition]) -> CompiledCondition | None:
        for condition in conditions:
            try:
                if condition.fn(ctx):
                    return condition
            except Exception as exc:
                # ignore / silent: the condition counts as false, as in the Collector.
                self.reporter.report(condition.text, self.context, ctx, exc, self.error_mode)
        return None

    def _envelope(self, ctx: Ctx, conditions: list[CompiledCondition], level: int) -> \
            tuple[CompiledCondition | None, list[CompiledCondition]]:
        """(a condition that holds for the whole envelope, or None; the conditions still to test per item)."""
        rest = []
        for condition in conditions:
            if condition.level <= level:
                if self._match(ctx, [condition]) is not None:
                    return condition, []
            else:
                rest.append(condition)
        return None, rest

    def run(self, batch: Any) -> int:
        """Remove matching items from ``batch`` in place, and envelopes left empty. Returns the items removed."""
        try:
            return self._run(batch)
        finally:
            tally, self._tally = self._tally, {}
            for condition, count in tally.items():
                self.on_drop(condition, count)

    def _run(self, batch: Any) -> int:
        f_resource, f_scope, f_items = _FIELDS[self.signal]
        ctx = Ctx(self.context)
        removed = 0
        resources = getattr(batch, f_resource)
        for r in range(len(resources) - 1, -1, -1):
            resource_envelope = resources[r]
            ctx.resource = resource_envelope.resource
            whole, rest = self._envelope(ctx, self.conditions, RESOURCE)
            scopes = getattr(resource_envelope, f_scope)
            if whole is not None:
                dropped = sum(self._count(getattr(s, f_items)) for s in scopes)
                self._dropped(whole.text, dropped)
                removed += dropped
                del resources[r]
                continue
            for s in range(len(scopes) - 1, -1, -1):
                scope_envelope = scopes[s]
                ctx.scope = scope_envelope.scope
                items = getattr(scope_envelope, f_items)
                whole, remaining = self._envelope(ctx, rest, SCOPE)
                if whole is not None:
                    dropped = self._count(items)
                    self._dropped(whole.text, dropped)
                    removed += dropped
                    del scopes[s]
                    continue
                if remaining:
                    removed += self._filter_items(ctx, items, remaining)
                if not items:
                    del scopes[s]
            if not scopes:
                del resources[r]
        return removed

    def _count(self, items: Any) -> int:
        if self.context == "spanevent":
            return sum(len(span.events) for span in items)
        if self.context == "datapoint":
            total = 0
            for metric in items:
                kind = metric.WhichOneof("data")
                total += len(getattr(metric, kind).data_points) if kind else 0
            return total
        return len(items)

    def _filter_items(self, ctx: Ctx, items: Any, conditions: list[CompiledCondition]) -> int:
        context = self.context
        if context == "spanevent":
            removed = 0
            for span in items:
                if span.events:
                    ctx.parent = span
                    removed += self._drop_from(ctx, span.events, conditions)
            return removed
        if context == "datapoint":
            removed = 0
            for m in range(len(items) - 1, -1, -1):
                metric = items[m]
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                points = getattr(metric, kind).data_points
                ctx.parent = metric
                removed += self._drop_from(ctx, points, conditions)
                if not points:
                    del items[m]  # as in the Collector: a metric left without data points goes too
            return removed
        return self._drop_from(ctx, items, conditions)

    def _drop_from(self, ctx: Ctx, items: Any, conditions: list[CompiledCondition]) -> int:
        doomed: list[int] = []
        fresh_cache = self.uses_cache
        single = conditions[0] if len(conditions) == 1 else None
        for i, item in enumerate(list(items)):
            ctx.item = item
            ctx.view = None
            if fresh_cache:
                ctx.cache = {}
            if single is not None:
                try:
                    if single.fn(ctx):
                        doomed.append(i)
                        self._dropped(single.text, 1)
                except Exception as exc:
                    self.reporter.report(single.text, self.context, ctx, exc, self.error_mode)
                continue
            hit = self._match(ctx, conditions)
            if hit is not None:
                doomed.append(i)
                self._dropped(hit.text, 1)
        for i in reversed(doomed):
            del items[i]
        return len(doomed)

