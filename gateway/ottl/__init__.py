"""OTTL, the OpenTelemetry Transformation Language: the subset users write, compiled to Python closures.

A library for plugins (transform, filter, attributes, tail_sampling's ``ottl_condition``): parse a statement or
condition once with ``compile_statement`` / ``compile_condition``, then run it per item through a ``Ctx``, or run
whole batches with ``StatementGroup`` (statements) and ``ConditionSet`` (drop conditions).
"""

from __future__ import annotations

from .compiler import (
           ENUMS,
           ITEM,
           CompiledCondition,
           CompiledStatement,
           CompileError,
           compile_condition,
           compile_statement,
           infer_context,
)
from .configs import Group, compile_error, conditions_list, error_mode_problem, parse_groups
from .functions import CONVERTERS, EDITORS
from .grammar import OttlSyntaxError, parse_condition, parse_statement
from .metrics import ottl_metrics
from .paths import CONTEXTS, Ctx
from .runtime import ERROR_MODES, ConditionSet, ErrorReporter, OttlRunError, StatementGroup, WirePlan, describe_item
from .values import Time, from_any, set_any

__all__ = ["CONTEXTS", "CONVERTERS", "EDITORS", "ENUMS", "ERROR_MODES", "ITEM", "CompileError", "CompiledCondition",
           "CompiledStatement", "ConditionSet", "Ctx", "ErrorReporter", "Group", "OttlRunError", "OttlSyntaxError",
           "StatementGroup", "Time", "WirePlan", "compile_condition", "compile_error", "compile_statement",
           "conditions_list", "describe_item", "error_mode_problem", "from_any", "infer_context", "ottl_metrics",
           "parse_condition", "parse_groups", "parse_statement", "set_any"]
