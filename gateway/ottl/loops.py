"""The per-item loop of a statement group, written out for its statements: one ``try`` per statement, no dispatch.

A generic loop over (statement, condition) pairs spends, per statement and item, a tuple unpack, a test for a
missing condition and a store of the "ran" flag: about a third of what a cheap editor such as ``delete_key`` on
the received bytes costs itself. The loop made here calls the statements' closures one after the other, each as
the generic loop would: the condition first (when there is one), then the statement, an exception of either
reported for that statement (``report(index, exc)``, which raises for ``error_mode: propagate``) before the next
statement runs. Which statements are active differs per envelope (conditions on the resource or scope were
evaluated already), so a loop is made per set of active statements, the first time it occurs, and kept.

A statement can also bring its body as source (``Inline``, the cheapest editors on the received bytes do: see
``wire.py``): the loop then runs that body in place of the call, which saves a Python call per item, a tenth of
the benchmark's transform. The closure such a statement is otherwise called as is made from the same source
(``inline_closure``), so the two cannot differ.

The sources are built from indexes, fixed text and the bodies of ``Inline``s (fixed text of this package, never
statement text: values reach them as names bound to objects), and compiled once per set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .paths import Ctx

__all__ = ["INLINE_MARK", "Inline", "Loop", "inline_closure", "make_loop"]

#: loop(ctx, items, report) → True when some statement ran (or its condition or itself failed) on some item.
Loop = Callable[[Ctx, Sequence[Any], Callable[[int, BaseException], None]], bool]

#: The attribute of a statement closure that holds its ``Inline``.
INLINE_MARK = "_otelgw_inline"


@dataclass(frozen=True)
class Inline:
    """A statement's body as source: ``lines`` (indented from column 0) run with ``ctx`` bound, and the objects
    they name as ``{name}`` (``names``), which each loop binds under names of its own. The lines run inside the
    loop: no ``return``, ``break`` or ``continue``, and no assignment to ``ctx``, ``item``, ``items``,
    ``executed``, ``report`` or ``exc``; other local names are the body's own (each body assigns before it reads)."""

    lines: tuple[str, ...]
    names: dict[str, Any] = field(default_factory=dict)

    def source(self, prefix: str, indent: str) -> list[str]:
        renamed = {name: f"{prefix}{name}" for name in self.names}
        return [indent + line.format(**renamed) for line in self.lines]


def _compile(source: list[str], bindings: dict[str, Any], name: str) -> Any:
    namespace: dict[str, Any] = dict(bindings)
    exec(compile("\n".join(source), f"<ottl {name}>", "exec"), namespace)  # fixed text and indexes only
    return namespace[name]


def inline_closure(inline: Inline) -> Callable[[Ctx], None]:
    """The statement's closure, made from its ``Inline`` (and marked with it, for ``make_loop``)."""
    run: Callable[[Ctx], None] = _compile(["def run(ctx):", *inline.source("", "    ")], inline.names, "run")
    setattr(run, INLINE_MARK, inline)
    return run


def make_loop(active: Sequence[tuple[int, Callable[[Ctx], Any], Callable[[Ctx], Any] | None]],
              fresh_cache: bool) -> Loop:
    """The loop over the ``active`` statements: (index in the group, closure, condition or None) in order.
    ``fresh_cache``: every item starts with an empty ``cache``."""
    body = ["    for item in items:", "        ctx.item = item", "        ctx.view = None"]
    if fresh_cache:
        body.append("        ctx.cache = {}")
    bindings: dict[str, Any] = {}
    unconditional = False
    for n, (index, run, condition) in enumerate(active):
        inline: Inline | None = getattr(run, INLINE_MARK, None)
        if inline is not None:
            bindings.update({f"s{n}_{name}": value for name, value in inline.names.items()})
        else:
            bindings[f"r{n}"] = run
        if condition is not None:
            bindings[f"c{n}"] = condition
            statement = inline.source(f"s{n}_", " " * 16) if inline is not None else [f"                r{n}(ctx)"]
            body += ["        try:",
                     f"            if c{n}(ctx):",
                     *statement,
                     "                executed = True",
                     "        except Exception as exc:",
                     "            executed = True",
                     f"            report({index}, exc)"]
        else:
            unconditional = True
            statement = inline.source(f"s{n}_", " " * 12) if inline is not None else [f"            r{n}(ctx)"]
            body += ["        try:",
                     *statement,
                     "        except Exception as exc:",
                     f"            report({index}, exc)"]
    # A statement without a condition runs on every item: the loop ran one when there was an item.
    start = "bool(items)" if unconditional else "False"
    loop: Loop = _compile(["def loop(ctx, items, report):", f"    executed = {start}", *body, "    return executed"],
                          bindings, "loop")
    return loop
