"""Compile parsed OTTL to Python closures, once, at config load.

Each expression becomes a closure ``fn(ctx) -> value`` plus the level it reads (resource, scope or item), so a
condition that reads only resource or scope fields can run once per envelope. Constants are folded, comparisons
with a literal get a specialised closure, and functions are bound to their compiled arguments here, never looked
up per item.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import grammar as g
from . import wire
from .functions import CONVERTERS, EDITORS, Param, Spec, go_regex
from .paths import CONTEXTS, Accessor, Ctx, PathError, index, resolve
from .values import Time, type_name
from .wire import NotWire

__all__ = ["ENUMS", "CompileError", "CompiledCondition", "CompiledStatement", "compile_condition",
           "compile_statement", "infer_context"]

RESOURCE, SCOPE, ITEM = 0, 1, 2
_LEVELS = {"resource": RESOURCE, "scope": SCOPE, "item": ITEM, "cache": ITEM}
CONST = -1

ENUMS: dict[str, int] = {
    "SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5,
    "STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2,
    "METRIC_DATA_TYPE_NONE": 0, "METRIC_DATA_TYPE_GAUGE": 1, "METRIC_DATA_TYPE_SUM": 2,
    "METRIC_DATA_TYPE_HISTOGRAM": 3, "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM": 4, "METRIC_DATA_TYPE_SUMMARY": 5,
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0, "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
    "SEVERITY_NUMBER_UNSPECIFIED": 0,
    **{f"SEVERITY_NUMBER_{name}{'' if i == 0 else i + 1}": base + i
       for base, name in ((1, "TRACE"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"), (21, "FATAL"))
       for i in range(4)},
}


class CompileError(ValueError):
    """A statement that parses but cannot compile: unknown path or function, wrong arguments. ``column`` 1-based."""

    def __init__(self, message: str, column: int = 0) -> None:
        self.column = column
        self.message = message
        super().__init__(f"{message} (column {column})" if column else message)


@dataclass(frozen=True)
class _Compiled:
    fn: Callable[[Ctx], Any]
    level: int
    const: bool = False
    value: Any = None


def _const(value: Any) -> _Compiled:
    return _Compiled(lambda ctx: value, CONST, True, value)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equal(a: Any, b: Any) -> bool:
    """OTTL ``==``: nil equals only nil, numbers compare by value, other types only with their own type."""
    if a is None or b is None:
        return a is b
    if type(a) is type(b):
        return bool(a == b)
    return _is_num(a) and _is_num(b) and a == b


def _less(a: Any, b: Any, op: str) -> bool:
    if (_is_num(a) and _is_num(b)) or (type(a) is type(b) and isinstance(a, str | bytes | Time)):
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    return False  # as in the Collector: values of different types are not ordered, the comparison is false


def arithmetic(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, Time):
        if op == "-" and isinstance(b, Time):
            return a.ns - b.ns  # a duration in nanoseconds
        if op in "+-" and _is_num(b):
            return Time(a.ns + int(b) if op == "+" else a.ns - int(b))
    if not (_is_num(a) and _is_num(b)):
        raise TypeError(f"cannot compute {type_name(a)} {op} {type_name(b)}")
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise ZeroDivisionError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        quotient = abs(a) // abs(b)  # Go truncates toward zero
        return quotient if (a < 0) == (b < 0) else -quotient
    return a / b


class _Compiler:
    def __init__(self, context: str, wire: bool = False) -> None:
        if context not in CONTEXTS:
            raise CompileError(f"unknown context {context!r}; valid: {', '.join(CONTEXTS)}")
        if wire and context != "span":
            raise NotWire(f"the {context} context")
        self.context = context
        self.reads_cache = False
        #: Bind the span's ``attributes`` to the serialized view of ``wire.py`` instead of the OTLP classes.
        self.wire = wire

    # --- values

    def value(self, node: Any) -> _Compiled:
        if isinstance(node, g.Literal):
            return _const(node.value)
        if isinstance(node, g.Path):
            return self.path_value(node)
        if isinstance(node, g.Call):
            return self.converter(node)
        if isinstance(node, g.MapLit):
            items = [(k, self.value(v)) for k, v in node.items]
            if all(c.const for _, c in items):
                frozen = {k: c.value for k, c in items}
                return _Compiled(lambda ctx: _copy(frozen), CONST, False, None)
            level = max((c.level for _, c in items), default=CONST)
            fns = [(k, c.fn) for k, c in items]
            return _Compiled(lambda ctx: {k: f(ctx) for k, f in fns}, level)
        if isinstance(node, g.ListLit):
            compiled = [self.value(v) for v in node.items]
            if all(c.const for c in compiled):
                frozen_list = [c.value for c in compiled]
                return _Compiled(lambda ctx: list(frozen_list), CONST, False, None)
            fns_list = [c.fn for c in compiled]
            return _Compiled(lambda ctx: [f(ctx) for f in fns_list], max(c.level for c in compiled))
        if isinstance(node, g.Neg):
            inner = self.value(node.operand)
            return self._math("*", _const(-1), inner)
        if isinstance(node, g.Math):
            return self._math(node.op, self.value(node.left), self.value(node.right))
        if isinstance(node, g.Compare | g.Logic | g.Not):
            return self.boolean(node)
        raise CompileError(f"unsupported expression {node!r}")

    def _math(self, op: str, left: _Compiled, right: _Compiled) -> _Compiled:
        if left.const and right.const:
            try:
                return _const(arithmetic(op, left.value, right.value))
            except (TypeError, ZeroDivisionError) as exc:
                raise CompileError(str(exc)) from None
        lf, rf = left.fn, right.fn
        return _Compiled(lambda ctx: arithmetic(op, lf(ctx), rf(ctx)), max(left.level, right.level))

    def path_value(self, node: g.Path) -> _Compiled:
        if len(node.fields) == 1 and not node.keys and node.fields[0].isupper():
            name = node.fields[0]
            if name in ENUMS:
                return _const(ENUMS[name])
            raise CompileError(f"unknown enum {name}", node.column)
        accessor = self.accessor(node)
        return _Compiled(accessor.get, _LEVELS[accessor.level])

    def accessor(self, node: g.Path) -> Accessor:
        keys = []
        for key in node.keys:
            if not isinstance(key, g.Literal) or not isinstance(key.value, str | int) \
                    or isinstance(key.value, bool):
                raise CompileError("keys must be literal strings or integers", node.column)
            keys.append(key.value)
        try:
            accessor = resolve(self.context, node.fields, tuple(keys))
        except PathError as exc:
            raise CompileError(f"invalid path in the {self.context} context: {exc}", node.column) from None
        if accessor.level == "cache":
            self.reads_cache = True
        if self.wire and accessor.level == "item" and node.fields[-1] == "attributes":
            return wire.attributes_accessor(accessor.text, tuple(keys))
        return accessor

    def converter(self, node: g.Call) -> _Compiled:
        spec = CONVERTERS.get(node.name)
        if spec is None:
            hint = " (editors such as set() cannot be used as values)" if node.name in EDITORS else ""
            raise CompileError(f"unknown converter {node.name}{hint}; valid: {', '.join(sorted(CONVERTERS))}",
                               node.column)
        fn, level = self.call(spec, node)
        if spec.reads_item:
            level = ITEM
        for key in node.keys:
            k = self.value(key)
            if not k.const:
                raise CompileError("keys must be literal strings or integers", node.column)
            inner, key_value = fn, k.value
            fn = (lambda f, kv: lambda ctx: index(f(ctx), kv))(inner, key_value)
        return _Compiled(fn, level)

    # --- calls

    def call(self, spec: Spec, node: g.Call) -> tuple[Callable[..., Any], int]:
        if spec.contexts and self.context not in spec.contexts:
            raise CompileError(f"{spec.name} is only available in the {', '.join(spec.contexts)} context",
                               node.column)
        params = spec.params
        bound: dict[str, Any] = {}
        named_seen = False
        for i, arg in enumerate(node.args):
            if arg.name is None:
                if named_seen:
                    raise CompileError(f"{spec.name}: positional argument after named arguments", node.column)
                if i >= len(params):
                    raise CompileError(f"{spec.name} takes at most {len(params)} arguments, got {len(node.args)}",
                                       node.column)
                bound[params[i].name] = arg.value
            else:
                named_seen = True
                names = [p.name for p in params]
                if arg.name not in names:
                    raise CompileError(f"{spec.name} has no parameter {arg.name!r}; valid: {', '.join(names)}",
                                       node.column)
                if arg.name in bound:
                    raise CompileError(f"{spec.name}: {arg.name} given twice", node.column)
                bound[arg.name] = arg.value
        values: list[Any] = []
        level = CONST
        for param in params:
            if param.name not in bound:
                if not param.optional:
                    raise CompileError(f"{spec.name}: missing argument {param.name!r}", node.column)
                values.append(None)
                continue
            value, arg_level = self.argument(spec, param, bound[param.name], node.column)
            values.append(value)
            level = max(level, arg_level)
        try:
            if self.wire and any(isinstance(v, Accessor) and v.item_attributes for v in values):
                return self.wire_call(spec, values), level
            return spec.build(*values), level
        except (ValueError, TypeError, re.error) as exc:
            raise CompileError(f"{spec.name}: {exc}", node.column) from None

    def wire_call(self, spec: Spec, values: list[Any]) -> Callable[..., Any]:
        """``spec`` with the span's attributes on the view: editors that read and set one attribute through their
        target's getter and setter are the same functions; map editors have their own (``wire.wire_editor``)."""
        target = values[0] if spec.params and spec.params[0].kind in ("target", "map") else None
        if target is None or any(isinstance(v, Accessor) and v.item_attributes for v in values[1:]):
            raise NotWire(f"{spec.name} with attributes as an argument")
        if spec.params[0].kind == "map":
            if not target.whole:
                raise NotWire(f"{spec.name} on one attribute")
            return wire.wire_editor(spec.name, values)
        if target.whole:
            raise NotWire(f"{spec.name} on all attributes")
        if spec.name == "set":
            return wire.wire_set(target, values[1])
        return spec.build(*values)

    def argument(self, spec: Spec, param: Param, node: Any, column: int) -> tuple[Any, int]:
        where = f"{spec.name}: argument {param.name!r}"
        column = getattr(node, "column", 0) or column
        kind = param.kind
        if kind in ("target", "map"):
            if not isinstance(node, g.Path) or (len(node.fields) == 1 and node.fields[0].isupper()):
                raise CompileError(f"{where} must be a path (e.g. attributes[\"key\"])", column)
            accessor = self.accessor(node)
            if kind == "target" and accessor.set is None:
                raise CompileError(f"{where}: {accessor.text} cannot be set", column)
            if kind == "map" and accessor.map is None and not (self.wire and accessor.item_attributes):
                raise CompileError(f"{where}: {accessor.text} is not a map", column)
            return accessor, _LEVELS[accessor.level]
        if kind == "value":
            compiled = self.value(node)
            return compiled.fn, compiled.level
        if kind == "values":
            compiled = self.value(node)
            return compiled.fn, compiled.level
        if kind == "func":
            if not isinstance(node, g.Path) or len(node.fields) != 1 or node.keys:
                raise CompileError(f"{where} must name a function such as SHA256", column)
            return node.fields[0], CONST
        if kind == "strs":
            if not isinstance(node, g.ListLit) or not all(
                    isinstance(i, g.Literal) and isinstance(i.value, str) for i in node.items):
                raise CompileError(f"{where} must be a list of literal strings", column)
            return [i.value for i in node.items], CONST
        if not isinstance(node, g.Literal):
            raise CompileError(f"{where} must be a literal {'string' if kind != 'int' else 'integer'}", column)
        value = node.value
        if kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise CompileError(f"{where} must be an integer, got {type_name(value)}", column)
            return value, CONST
        if not isinstance(value, str):
            raise CompileError(f"{where} must be a string, got {type_name(value)}", column)
        if param.choices and value not in param.choices:
            raise CompileError(f"{where} must be one of {', '.join(param.choices)}, got {value!r}", column)
        if kind == "regex":
            try:
                return go_regex(value), CONST
            except re.error as exc:
                raise CompileError(f"{where}: invalid regular expression {value!r}: {exc}", column) from None
        return value, CONST

    # --- booleans

    def boolean(self, node: Any) -> _Compiled:
        if isinstance(node, g.Logic):
            parts = [self.boolean(item) for item in node.items]
            level = max(p.level for p in parts)
            fns = [p.fn for p in parts]
            if node.op == "and":
                if len(fns) == 2:
                    a, b = fns
                    return _Compiled(lambda ctx: a(ctx) and b(ctx), level)
                return _Compiled(lambda ctx: all(f(ctx) for f in fns), level)
            if len(fns) == 2:
                a, b = fns
                return _Compiled(lambda ctx: a(ctx) or b(ctx), level)
            return _Compiled(lambda ctx: any(f(ctx) for f in fns), level)
        if isinstance(node, g.Not):
            inner = self.boolean(node.operand)
            f = inner.fn
            return _Compiled(lambda ctx: not f(ctx), inner.level)
        if isinstance(node, g.Compare):
            return self.compare(node)
        compiled = self.value(node)
        if compiled.const:
            if not isinstance(compiled.value, bool):
                raise CompileError(f"a condition must be a boolean, got {type_name(compiled.value)}")
            return compiled
        fn = compiled.fn

        def checked(ctx: Ctx) -> bool:
            value = fn(ctx)
            if value is True or value is False:
                return value
            raise TypeError(f"a condition must be a boolean, got {type_name(value)}")
        return _Compiled(checked, compiled.level)

    def compare(self, node: g.Compare) -> _Compiled:
        left, right = self.value(node.left), self.value(node.right)
        op = node.op
        level = max(left.level, right.level)
        if left.const and not right.const:  # keep the literal on the right
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        lf = left.fn
        if right.const:
            c = right.value
            if op in ("==", "!=") and (isinstance(c, str | bytes) or c is None):
                # Python's == already gives OTTL's answer for these (a string never equals another type).
                if c is None:
                    return _Compiled((lambda ctx: lf(ctx) is None) if op == "==" else
                                     (lambda ctx: lf(ctx) is not None), level)
                return _Compiled((lambda ctx: lf(ctx) == c) if op == "==" else (lambda ctx: lf(ctx) != c), level)
            if op in ("==", "!=") and _is_num(c):
                # Python's == is OTTL's for numbers, except that a bool is no number in OTTL.
                def num_equal(ctx: Ctx) -> bool:
                    v = lf(ctx)
                    return v == c and v.__class__ is not bool
                if op == "==":
                    return _Compiled(num_equal, level)
                return _Compiled(lambda ctx: not num_equal(ctx), level)
            if op == "==":
                return _Compiled(lambda ctx: equal(lf(ctx), c), level)
            if op == "!=":
                return _Compiled(lambda ctx: not equal(lf(ctx), c), level)
            return _Compiled(lambda ctx: _less(lf(ctx), c, op), level)
        rf = right.fn
        if op == "==":
            return _Compiled(lambda ctx: equal(lf(ctx), rf(ctx)), level)
        if op == "!=":
            return _Compiled(lambda ctx: not equal(lf(ctx), rf(ctx)), level)
        return _Compiled(lambda ctx: _less(lf(ctx), rf(ctx), op), level)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass
class CompiledCondition:
    text: str
    context: str
    fn: Callable[[Ctx], bool]
    #: 0 resource, 1 scope, 2 item: the deepest thing the condition reads (-1: a constant).
    level: int
    uses_cache: bool = False


@dataclass
class CompiledStatement:
    text: str
    context: str
    editor: str
    run: Callable[[Ctx], None]
    condition: CompiledCondition | None
    #: The level the editor writes (0 resource, 1 scope, 2 item or cache).
    write_level: int
    uses_cache: bool = False
    #: Optional extra guard: when set, run only if this holds too (group-level ``conditions``).
    guards: list[CompiledCondition] = field(default_factory=list)


def _error(text: str, exc: Exception) -> CompileError:
    if isinstance(exc, g.OttlSyntaxError):
        return CompileError(f"{exc.problem}" + (f"; expected {', '.join(exc.expected)}" if exc.expected else ""),
                            exc.column)
    assert isinstance(exc, CompileError)
    return exc


def compile_condition(text: str, context: str, wire: bool = False) -> CompiledCondition:
    """A boolean expression in ``context``. Raises ``CompileError`` (with ``column``) when it is invalid.

    ``wire``: for items of ``gateway.ottl.wire``'s view; raises ``NotWire`` when the view cannot run it."""
    try:
        tree = g.parse_condition(text)
    except g.OttlSyntaxError as exc:
        raise _error(text, exc) from None
    compiler = _Compiler(context, wire)
    compiled = compiler.boolean(tree)
    return CompiledCondition(text, context, compiled.fn, compiled.level, compiler.reads_cache)


#: Editors of a whole attributes map that keep ``Ctx.view`` in step (or change values only, never keys).
_KEEP_VIEW = frozenset({"delete_key", "truncate_all", "replace_all_matches"})


def _invalidating(run: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    """``run``, then forget the item's attribute view: the editor may have added, removed or renamed keys."""
    def wrapped(ctx: Ctx) -> None:
        try:
            run(ctx)
        finally:
            ctx.view = None
    return wrapped


def compile_statement(text: str, context: str, wire: bool = False) -> CompiledStatement:
    """``editor(...) [where condition]`` in ``context``. Raises ``CompileError`` when it is invalid.

    ``wire``: for items of ``gateway.ottl.wire``'s view; raises ``NotWire`` when the view cannot run it."""
    try:
        tree = g.parse_statement(text)
    except g.OttlSyntaxError as exc:
        raise _error(text, exc) from None
    compiler = _Compiler(context, wire)
    call = tree.editor
    spec = EDITORS.get(call.name)
    if spec is None:
        hint = " (converters return values: use set(target, " + call.name + "(...)))" \
            if call.name in CONVERTERS else ""
        raise CompileError(f"unknown editor {call.name}{hint}; valid: {', '.join(sorted(EDITORS))}", call.column)
    run, _ = compiler.call(spec, call)
    write_level = ITEM
    first = call.args[0].value if call.args else None
    if isinstance(first, g.Path) and not (len(first.fields) == 1 and first.fields[0].isupper()):
        target = compiler.accessor(first)
        write_level = _LEVELS[target.level]
        # The view's editors keep its key list in step (wire.py), whatever they change.
        if target.item_attributes and not wire and (
                len(first.keys) > 1 or (target.whole and call.name not in _KEEP_VIEW)):
            run = _invalidating(run)
    condition = None
    if tree.where is not None:
        compiled = compiler.boolean(tree.where)
        condition = CompiledCondition(text, context, compiled.fn, compiled.level, compiler.reads_cache)
    return CompiledStatement(text, context, call.name, run, condition, write_level, compiler.reads_cache)


_HIERARCHY = {"traces": ("resource", "scope", "span", "spanevent"),
              "metrics": ("resource", "scope", "metric", "datapoint"),
              "logs": ("resource", "scope", "log")}


def _path_heads(node: Any) -> Iterable[str]:
    if isinstance(node, g.Path):
        yield "scope" if node.fields[0] == "instrumentation_scope" else node.fields[0]
        for key in node.keys:
            yield from _path_heads(key)
    elif isinstance(node, g.Call):
        for arg in node.args:
            yield from _path_heads(arg.value)
        for key in node.keys:
            yield from _path_heads(key)
    elif isinstance(node, g.Statement):
        yield from _path_heads(node.editor)
        if node.where is not None:
            yield from _path_heads(node.where)
    elif isinstance(node, g.MapLit):
        for _, v in node.items:
            yield from _path_heads(v)
    elif isinstance(node, g.ListLit | g.Logic):
        for v in node.items:
            yield from _path_heads(v)
    elif isinstance(node, g.Math | g.Compare):
        yield from _path_heads(node.left)
        yield from _path_heads(node.right)
    elif isinstance(node, g.Not | g.Neg):
        yield from _path_heads(node.operand)


def infer_context(texts: Iterable[str], signal: str, conditions: bool = False) -> str:
    """The context of statements (or conditions) whose paths carry a context prefix (``span.name``).

    The deepest context any path names wins: ``resource.attributes`` alone runs once per resource, together with
    ``span.name`` once per span. Raises ``CompileError`` when no path names a context of the signal.
    """
    hierarchy = _HIERARCHY[signal]
    deepest = -1
    for text in texts:
        try:
            tree = g.parse_condition(text) if conditions else g.parse_statement(text)
        except g.OttlSyntaxError as exc:
            raise _error(text, exc) from None
        for head in _path_heads(tree):
            if head in hierarchy:
                deepest = max(deepest, hierarchy.index(head))
            elif head in CONTEXTS:
                raise CompileError(f"{text!r}: the {head} context is not available for {signal}")
    if deepest < 0:
        raise CompileError(f"cannot infer the context: prefix paths with one of {', '.join(hierarchy)} "
                           "(e.g. span.attributes[\"k\"]), or give the group a context")
    return hierarchy[deepest]
