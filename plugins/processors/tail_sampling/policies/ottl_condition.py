"""``ottl_condition``: samples a trace when some span, or some span event, matches one of the OTTL conditions.

As in the Collector: ``span`` and ``spanevent`` lists of conditions, any match samples, ``error_mode``
``ignore`` / ``silent`` / ``propagate`` (a condition that fails on a span counts as not matching; with
``propagate`` the failure is logged like with ``ignore``, since a sampling decision cannot be refused).
Conditions are compiled once by ``gateway.ottl``. Resource paths read the span's resource; when a trace has
spans from several resources, a condition reading both resource and span fields matches when it holds for
some resource together with some span. ``scope.*`` paths read an empty scope (the buffered trace keeps no
scope messages).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

from gateway import raise_if
from gateway.ottl import CompiledCondition, CompileError, Ctx, ErrorReporter, compile_condition, error_mode_problem

from .base import Decision, PolicyKind

__all__ = ["KIND"]

_log = logging.getLogger("otelgw.processor.tail_sampling")


@dataclass(frozen=True)
class Config:
    #: ignore (default), silent or propagate.
    error_mode: str = "ignore"
    #: Conditions on spans (span context).
    span: list[str] = field(default_factory=list)
    #: Conditions on span events (spanevent context).
    spanevent: list[str] = field(default_factory=list)

    def compiled(self) -> tuple[list[CompiledCondition], list[CompiledCondition], list[str]]:
        errors: list[str] = []
        out: dict[str, list[CompiledCondition]] = {"span": [], "spanevent": []}
        for context in ("span", "spanevent"):
            for i, text in enumerate(getattr(self, context)):
                try:
                    out[context].append(compile_condition(text, context))
                except CompileError as exc:
                    where = f" at column {exc.column}" if exc.column else ""
                    errors.append(f"{context}::{i}: {exc.message}{where}: {text}")
        return out["span"], out["spanevent"], errors

    def validate(self) -> None:
        errors = []
        problem = error_mode_problem("error_mode", self.error_mode)
        if problem:
            errors.append(problem)
        if not self.span and not self.spanevent:
            errors.append("span: at least one span or spanevent condition is required")
        errors.extend(self.compiled()[2])
        raise_if(errors)


class OttlCondition:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.span, self.spanevent, _ = config.compiled()
        mode = "ignore" if config.error_mode == "propagate" else config.error_mode
        self.mode = mode
        self.reporter = ErrorReporter(_log, lambda statement: None)

    def _any(self, conditions: list[CompiledCondition], context: str, ctx: Ctx) -> bool:
        for condition in conditions:
            try:
                if condition.fn(ctx):
                    return True
            except Exception as exc:
                self.reporter.report(condition.text, context, ctx, exc, self.mode)
        return False

    def evaluate(self, trace: Any) -> Decision:
        resources = trace.resources()
        scope = InstrumentationScope()
        for resource in resources or [None]:
            span_ctx = Ctx("span", resource=resource, scope=scope)
            event_ctx = Ctx("spanevent", resource=resource, scope=scope)
            for span in trace.spans():
                if self.span:
                    span_ctx.item = span
                    span_ctx.view = None
                    if self._any(self.span, "span", span_ctx):
                        return Decision.SAMPLED
                if self.spanevent and span.events:
                    event_ctx.parent = span
                    for event in span.events:
                        event_ctx.item = event
                        event_ctx.view = None
                        if self._any(self.spanevent, "spanevent", event_ctx):
                            return Decision.SAMPLED
        return Decision.NOT_SAMPLED


KIND = PolicyKind("ottl_condition", Config, lambda name, config, build, clock: OttlCondition(name, config))
