"""The per-item loops written out for a group's statements (gateway/ottl/loops.py) run exactly as the generic loop.

The reference here is the generic loop over (statement, condition) pairs that ``StatementGroup`` ran before: for
each item, each statement in order, its condition first; an exception of either is reported for that statement
and the next one runs; "executed" when a statement ran or failed. Both run on the same items with statements and
conditions that record what they see, fail on chosen items, and read and write the cache; the calls, the reports,
the results and the flag must be the same, for every error mode and every set of active statements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.ottl import Ctx, ErrorReporter, OttlRunError, StatementGroup, compile_condition, compile_statement
from gateway.ottl.loops import INLINE_MARK, Inline, inline_closure, make_loop


class Failed(Exception):
    pass


def reference(ctx: Ctx, active: list[tuple[Any, Any, int]], items: list[Any], fresh_cache: bool,
              report: Callable[[int, BaseException], None]) -> bool:
    """The generic loop, as it was."""
    executed = False
    for item in items:
        ctx.item = item
        ctx.view = None
        if fresh_cache:
            ctx.cache = {}
        for run, condition, index in active:
            try:
                if condition is None or condition(ctx):
                    run(ctx)
                    executed = True
            except Exception as exc:
                executed = True
                report(index, exc)
    return executed


# A statement: (has a condition, the condition's answer per item (None: it fails), the statement fails on items
# where item % fail_every == 0 (0: never), it is an ``Inline``).
STATEMENT = st.tuples(st.booleans(), st.lists(st.sampled_from([True, False, None]), min_size=4, max_size=4),
                      st.integers(0, 3), st.booleans())


def fail(index: int, item: int) -> None:
    raise Failed(f"statement {index} on {item}")


def inline_statement(index: int, fail_every: int, log: list[Any]) -> Any:
    """The same statement as ``run`` of ``closures``, as an ``Inline`` (its body written into the loop)."""
    return inline_closure(Inline((
        "{log}.append(('run', {index}, ctx.item, dict(ctx.cache), ctx.view))",
        "ctx.cache[{index}] = ctx.item",
        "ctx.view = ('view', {index})",
        "if {fail_every} and ctx.item % {fail_every} == 0:",
        "    {fail}({index}, ctx.item)",
    ), {"log": log, "index": index, "fail_every": fail_every, "fail": fail}))


def closures(spec: list[tuple[bool, list[bool | None], int, bool]], log: list[Any]) -> list[tuple[Any, Any, int]]:
    active = []
    for index, (conditional, answers, fail_every, inline) in enumerate(spec):
        def run(ctx: Ctx, index: int = index, fail_every: int = fail_every) -> None:
            log.append(("run", index, ctx.item, dict(ctx.cache), ctx.view))
            ctx.cache[index] = ctx.item
            ctx.view = ("view", index)
            if fail_every and ctx.item % fail_every == 0:
                fail(index, ctx.item)
        if inline:
            run = inline_statement(index, fail_every, log)

        def condition(ctx: Ctx, index: int = index, answers: list[bool | None] = answers) -> bool:
            log.append(("condition", index, ctx.item, dict(ctx.cache)))
            answer = answers[ctx.item % 4]
            if answer is None:
                raise Failed(f"condition {index} on {ctx.item}")
            return answer
        active.append((run, condition if conditional else None, index))
    return active


def outcome(loop_of: Callable[..., bool], spec: list[Any], items: list[int], fresh_cache: bool,
            propagate_at: int | None) -> tuple[Any, ...]:
    log: list[Any] = []
    ctx = Ctx("span")
    reports: list[tuple[int, str]] = []

    def report(index: int, exc: BaseException) -> None:
        reports.append((index, str(exc)))
        if propagate_at is not None and len(reports) == propagate_at:
            raise OttlRunError(str(exc))
    try:
        result: Any = loop_of(ctx, closures(spec, log), items, fresh_cache, report)
    except OttlRunError as exc:
        result = ("raised", str(exc))
    return result, log, reports, ctx.cache


def generated(ctx: Ctx, active: list[tuple[Any, Any, int]], items: list[int], fresh_cache: bool,
              report: Callable[[int, BaseException], None]) -> bool:
    loop = make_loop([(index, run, condition) for run, condition, index in active], fresh_cache)
    return loop(ctx, items, report)


@settings(max_examples=300, deadline=None)
@given(st.lists(STATEMENT, max_size=6), st.lists(st.integers(0, 11), max_size=6), st.booleans(),
       st.one_of(st.none(), st.integers(1, 3)))
def test_the_written_out_loop_is_the_generic_loop(spec: list[Any], items: list[int], fresh_cache: bool,
                                                    propagate_at: int | None) -> None:
    assert outcome(generated, spec, items, fresh_cache, propagate_at) == \
        outcome(reference, spec, items, fresh_cache, propagate_at)


def test_a_subset_of_statements_keeps_their_indexes_in_reports() -> None:
    spec = [(False, [True] * 4, 1, False), (True, [True] * 4, 0, True), (False, [True] * 4, 1, True)]
    for keep in ([0, 2], [2], [1, 2]):
        def subset(ctx: Ctx, active: Any, items: Any, fresh: bool, report: Any, keep: list[int] = keep,
                   loop_of: Any = None) -> bool:
            chosen = [entry for entry in active if entry[2] in keep]
            return (loop_of or generated)(ctx, chosen, items, fresh, report)
        ours = outcome(subset, spec, [1, 2], False, None)
        theirs = outcome(lambda *a: subset(*a, loop_of=reference), spec, [1, 2], False, None)
        assert ours == theirs
        assert {index for index, _ in ours[2]} == {i for i in keep if spec[i][2]}


def request() -> ExportTraceServiceRequest:
    batch = ExportTraceServiceRequest()
    for service in ("a", "b"):
        rs = batch.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        ss = rs.scope_spans.add()
        for i in range(3):
            span = ss.spans.add(name=f"op{i}", kind=2 if i else 3)
            span.attributes.add(key="n").value.int_value = i
    return batch


@pytest.mark.parametrize("mode", ["ignore", "silent", "propagate"])
@pytest.mark.parametrize("group_condition", [True, False])
def test_a_group_with_envelope_conditions_and_failures_runs_as_before(mode: str, group_condition: bool) -> None:
    """Without a group condition, the statements active differ per resource: one loop per set, each with the
    right reports. With one, every statement has an item condition: one loop."""
    statements = ['set(attributes["a"], "x") where resource.attributes["service.name"] == "a"',
                  'set(attributes["p"], ParseJSON(name)) where attributes["n"] == 1',
                  'set(cache["n"], attributes["n"])',
                  'set(attributes["c"], cache["n"]) where kind == SPAN_KIND_SERVER']
    counted: list[str] = []
    conditions = [compile_condition('name != "op2"', "span")] if group_condition else []
    group = StatementGroup("traces", "span", [compile_statement(s, "span") for s in statements], conditions, mode,
                           ErrorReporter(logging.getLogger("test"), counted.append))
    batch = request()
    if mode == "propagate":
        with pytest.raises(OttlRunError, match="ParseJSON"):
            group.run(batch)
        return
    assert group.run(batch)
    assert counted == [statements[1]] * 2  # op1 of both resources
    keys = [[kv.key for kv in span.attributes] for rs in batch.resource_spans for span in rs.scope_spans[0].spans]
    if group_condition:
        assert keys == [["n", "a"], ["n", "a", "c"], ["n"], ["n"], ["n", "c"], ["n"]]
        assert len(group._loops) == 1
    else:
        assert keys == [["n", "a"], ["n", "a", "c"], ["n", "a", "c"], ["n"], ["n", "c"], ["n", "c"]]
        assert len(group._loops) == 2  # the statements active for service a, and for b


@pytest.mark.parametrize("statement", ['delete_key(attributes, "a")', "truncate_all(attributes, 3)",
                                       'set(attributes["b"], attributes["a"])'])
def test_the_cheapest_editors_on_the_bytes_are_written_into_the_loop(statement: str) -> None:
    """Their results on the bytes equal the parsed request's in tests/gateway/ottl/test_wire.py."""
    assert getattr(compile_statement(statement, "span", wire=True).run, INLINE_MARK, None) is not None
    assert getattr(compile_statement(statement, "span").run, INLINE_MARK, None) is None
