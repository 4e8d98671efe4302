"""Config helpers shared by the OTTL processors: error_mode, statement groups, and config errors that point.

A statement that fails to compile becomes a ``ConfigError`` message with the YAML key path, the problem, the
column and what was expected, followed by the statement and a caret under the column::

    processors::transform::trace_statements::0::statements::1: unexpected '"y"' at column 21; expected ")", ","
        set(attributes["x"] "y")
                            ^
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .compiler import (
    CompiledCondition,
    CompiledStatement,
    CompileError,
    compile_condition,
    compile_statement,
    infer_context,
)
from .runtime import ERROR_MODES

__all__ = ["Group", "compile_error", "conditions_list", "error_mode_problem", "parse_groups"]

_SIGNAL_CONTEXTS = {"traces": ("resource", "scope", "span", "spanevent"),
                    "metrics": ("resource", "scope", "metric", "datapoint"),
                    "logs": ("resource", "scope", "log")}


def compile_error(path: str, text: str, exc: CompileError) -> str:
    """One config error line (plus the statement and a caret) for a statement that does not compile."""
    where = f" at column {exc.column}" if exc.column else ""
    message = exc.message
    if where and "; expected" in message:
        problem, _, expected = message.partition("; expected")
        message = f"{problem}{where}; expected{expected}"
    else:
        message = f"{message}{where}"
    caret = f"\n        {text}\n        {' ' * (exc.column - 1)}^" if exc.column else f"\n        {text}"
    return f"{path}: {message}{caret}"


def error_mode_problem(path: str, value: Any) -> str | None:
    if value not in ERROR_MODES:
        return f"{path}: must be one of {', '.join(ERROR_MODES)}, got {value!r}"
    return None


@dataclass
class Group:
    """One compiled statement group: its context, statements, optional conditions and error mode."""

    context: str
    statements: list[CompiledStatement]
    conditions: list[CompiledCondition]
    error_mode: str
    #: Made of plain statements (context inferred); consecutive ones of one context share a group.
    flat: bool = False


def _strings(value: Any, path: str, errors: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{path}: expected a list of strings")
        return []
    return value


def parse_groups(value: Any, signal: str, default_mode: str, path: str, errors: list[str]) -> list[Group]:
    """``<signal>_statements``: statements (contexts inferred from path prefixes) and groups, in order.

    A group is ``{context, statements, conditions, error_mode}``; ``context`` may be left out when the paths are
    prefixed. Plain strings next to each other form one group per inferred context, in order.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"{path}: expected a list of statements or statement groups")
        return []
    groups: list[Group] = []
    for i, entry in enumerate(value):
        where = f"{path}::{i}"
        if isinstance(entry, str):
            try:
                inferred = infer_context([entry], signal)
                statement = compile_statement(entry, inferred)
            except CompileError as exc:
                errors.append(compile_error(where, entry, exc))
                continue
            last = groups[-1] if groups else None
            if last is not None and last.context == inferred and not last.conditions \
                    and last.error_mode == default_mode and last.flat:
                last.statements.append(statement)
            else:
                groups.append(Group(inferred, [statement], [], default_mode, flat=True))
            continue
        if not isinstance(entry, Mapping):
            errors.append(f"{where}: expected a statement or a mapping with statements, got {entry!r}")
            continue
        unknown = sorted(set(entry) - {"context", "statements", "conditions", "error_mode"})
        if unknown:
            errors.append(f"{where}::{unknown[0]}: unknown key; valid keys are: conditions, context, error_mode, "
                          "statements")
        mode = entry.get("error_mode", default_mode)
        problem = error_mode_problem(f"{where}::error_mode", mode) if "error_mode" in entry else None
        if problem:
            errors.append(problem)
        statements = _strings(entry.get("statements"), f"{where}::statements", errors)
        conditions = _strings(entry.get("conditions"), f"{where}::conditions", errors)
        if not statements:
            errors.append(f"{where}::statements: at least one statement is required")
            continue
        context = entry.get("context")
        if context is None:
            try:
                context = infer_context(statements, signal)
                if conditions:
                    deeper = infer_context(conditions, signal, conditions=True)
                    order = _SIGNAL_CONTEXTS[signal]
                    context = max(context, deeper, key=order.index)
            except CompileError as exc:
                errors.append(f"{where}: {exc.message}")
                continue
        elif context not in _SIGNAL_CONTEXTS[signal]:
            errors.append(f"{where}::context: must be one of {', '.join(_SIGNAL_CONTEXTS[signal])} for {signal}, "
                          f"got {context!r}")
            continue
        assert context is not None
        group = Group(context, [], [], mode)
        for j, text in enumerate(statements):
            try:
                group.statements.append(compile_statement(text, context))
            except CompileError as exc:
                errors.append(compile_error(f"{where}::statements::{j}", text, exc))
        for j, text in enumerate(conditions):
            try:
                group.conditions.append(compile_condition(text, context))
            except CompileError as exc:
                errors.append(compile_error(f"{where}::conditions::{j}", text, exc))
        groups.append(group)
    return groups


def conditions_list(value: Any, context: str, path: str, errors: list[str]) -> list[CompiledCondition]:
    """A list of conditions in one context (the filter processor's ``traces: {span: [...]}``)."""
    compiled = []
    for j, text in enumerate(_strings(value, path, errors)):
        try:
            compiled.append(compile_condition(text, context))
        except CompileError as exc:
            errors.append(compile_error(f"{path}::{j}", text, exc))
    return compiled
