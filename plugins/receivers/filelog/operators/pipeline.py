"""The operators of one receiver as a graph: built from the config, checked (ids, outputs, cycles), and run over
lists of entries in topological order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway import ConfigError

from .base import ErrorSink, Operator
from .config import (
    AddConfig,
    ContainerConfig,
    CopyConfig,
    FilterConfig,
    FlattenConfig,
    JsonParserConfig,
    KeyValueParserConfig,
    MoveConfig,
    OperatorConfig,
    RegexParserConfig,
    RemoveConfig,
    RouterConfig,
    SeverityParserConfig,
    TimeParserConfig,
)
from .container import ContainerOp
from .entry import Entry
from .ops import (
    AddOp,
    CopyOp,
    FilterOp,
    FlattenOp,
    JsonParserOp,
    KeyValueParserOp,
    MoveOp,
    RegexParserOp,
    RemoveOp,
    RouterOp,
    SeverityParserOp,
    TimeParserOp,
)

__all__ = ["END", "Pipeline", "build_pipeline", "check_operators"]

#: The output id of the receiver itself (entries become log records).
END = ""

_BUILDERS: dict[type[OperatorConfig], Any] = {
    JsonParserConfig: JsonParserOp, RegexParserConfig: RegexParserOp, KeyValueParserConfig: KeyValueParserOp,
    ContainerConfig: ContainerOp, TimeParserConfig: TimeParserOp, SeverityParserConfig: SeverityParserOp,
    MoveConfig: MoveOp, CopyConfig: CopyOp, AddConfig: AddOp, RemoveConfig: RemoveOp, FlattenConfig: FlattenOp,
    FilterConfig: FilterOp,
}


def _ids(configs: Sequence[OperatorConfig]) -> list[str]:
    return [c.id or c.type for c in configs]


def _targets(config: OperatorConfig, next_id: str) -> tuple[str, ...]:
    if isinstance(config, RouterConfig):
        routes = tuple(o for r in config.routes for o in (r.output if isinstance(r.output, list) else [r.output]))
        default = config.default if isinstance(config.default, list) else ([config.default] if config.default else [])
        return tuple(str(t) for t in (*routes, *default))
    return config.outputs or (next_id,)


def check_operators(configs: Sequence[OperatorConfig]) -> list[str]:
    """Graph errors with their paths: duplicate ids, outputs that name no operator, cycles; and every field,
    expression and regex compiled once, so a typo fails at start-up."""
    errors: list[str] = []
    ids = _ids(configs)
    seen: set[str] = set()
    for i, op_id in enumerate(ids):
        if op_id in seen:
            errors.append(f"{i}::id: duplicate operator id {op_id!r} (give each operator of one type its own id)")
        seen.add(op_id)
    graph: dict[str, tuple[str, ...]] = {}
    for i, config in enumerate(configs):
        next_id = ids[i + 1] if i + 1 < len(ids) else END
        targets = _targets(config, next_id)
        for target in targets:
            if target != END and target not in seen:
                errors.append(f"{i}::output: {target!r} is not the id of an operator in this list")
        graph[ids[i]] = targets
        try:
            config.validate()  # type: ignore[attr-defined]
        except ConfigError:
            continue  # reported by validate_tree with its key path; building it would only repeat that
        try:
            _build_one(config, targets, ErrorSink(_NullLogger(), lambda _i, _n: None))  # type: ignore[arg-type]
        except (ValueError, KeyError) as exc:
            errors.append(f"{i}: {exc}")
        except Exception as exc:
            errors.append(f"{i}: {type(exc).__name__}: {exc}")
    if not errors and _has_cycle(graph):
        errors.append("operators form a cycle: outputs must lead to the end of the list")
    return errors


def _has_cycle(graph: dict[str, tuple[str, ...]]) -> bool:
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if node == END or state.get(node) == 2:
            return False
        if state.get(node) == 1:
            return True
        state[node] = 1
        if any(visit(t) for t in graph.get(node, ())):
            return True
        state[node] = 2
        return False

    return any(visit(n) for n in graph)


def _build_one(config: OperatorConfig, targets: tuple[str, ...], errors: ErrorSink) -> Operator:
    op_id = config.id or config.type
    if isinstance(config, RouterConfig):
        router = RouterOp(config, errors)
        router.id = op_id
        return router
    operator: Operator = _BUILDERS[type(config)](config, targets, errors)
    operator.id = op_id
    return operator


class _NullLogger:
    def isEnabledFor(self, _level: int) -> bool:
        return False

    def warning(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def debug(self, *_args: Any, **_kwargs: Any) -> None:
        pass


class Pipeline:
    """Runs entries through the operators; what reaches ``END`` is returned."""

    def __init__(self, operators: list[Operator]) -> None:
        self.operators = operators
        self.order = [op.id for op in operators]  # config order is a valid topological order when outputs point
        self._by_id = {op.id: op for op in operators}
        self._topological()
        self.stateful = [op for op in operators if type(op).held_offset is not Operator.held_offset]

    def _topological(self) -> None:
        order: list[str] = []
        seen: set[str] = set()

        def visit(op_id: str) -> None:
            if op_id == END or op_id in seen:
                return
            seen.add(op_id)
            op = self._by_id[op_id]
            for target in (op.targets if isinstance(op, RouterOp) else op.outputs):
                visit(target)
            order.append(op_id)

        for op in self.operators:
            visit(op.id)
        self.order = order[::-1]

    def run(self, entries: list[Entry]) -> list[Entry]:
        if not self.operators:
            return entries
        return self._drain({self.operators[0].id: entries})  # the list's first operator is the entry

    def _drain(self, pending: dict[str, list[Entry]]) -> list[Entry]:
        done: list[Entry] = pending.pop(END, [])
        for op_id in self.order:
            batch = pending.pop(op_id, None)
            if not batch:
                continue
            for target, out in self._by_id[op_id].route(batch):
                if not out:
                    continue
                if target == END:
                    done.extend(out)
                else:
                    pending.setdefault(target, []).extend(out)
        return done

    def held_offset(self, source: Any) -> int | None:
        offsets = [o for op in self.stateful if (o := op.held_offset(source)) is not None]
        return min(offsets) if offsets else None

    def flush(self, older_than: float | None) -> list[Entry]:
        """Entries stateful operators held longer than ``older_than`` (None: all), run through what follows."""
        pending: dict[str, list[Entry]] = {}
        for op in self.stateful:
            held = op.flush(older_than)
            if held:
                for target in op.outputs:
                    pending.setdefault(target, []).extend(held)
        return self._drain(pending) if pending else []


def build_pipeline(configs: Sequence[OperatorConfig], errors: ErrorSink) -> Pipeline:
    errs = check_operators(configs)
    if errs:
        raise ConfigError(errs)
    ids = _ids(configs)
    operators = [_build_one(c, _targets(c, ids[i + 1] if i + 1 < len(ids) else END), errors)
                 for i, c in enumerate(configs)]
    return Pipeline(operators)
