"""The per-item loop of a statement group, written out for its statements: one ``try`` per statement, no dispatch.

A generic loop over (statement, condition) pairs spends, per statement and item, a tuple unpack, a test for a
missing condition and a store of the "ran" flag: about a third of what a cheap editor such as ``delete_key`` on
the received bytes costs itself. The loop made here calls the statements' closures one after the other, each as
the generic loop would: the condition first (when there is one), then the statement, an exception of either
reported for that statement (``report(index, exc)``, which raises for ``error_mode: propagate``) before the next
statement runs. Which statements are active differs per envelope (conditions on the resource or scope were
evaluated already), so a loop is made per set of active statements, the first time it occurs, and kept.

The source is built only from indexes and fixed text (never from statement text), and compiled once per set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .paths import Ctx

__all__ = ["Loop", "make_loop"]

#: loop(ctx, items, report) → True when some statement ran (or its condition or itself failed) on some item.
Loop = Callable[[Ctx, Sequence[Any], Callable[[int, BaseException], None]], bool]


def make_loop(shape: Sequence[tuple[int, bool]], fresh_cache: bool) -> Callable[..., Loop]:
    """A factory for the loop over statements ``shape``: (index in the group, has a condition) in order.

    The factory takes the statements' closures as ``r0, c0, r1, c1, ...`` (each ``c`` a condition or None) and
    returns the loop. ``fresh_cache``: every item starts with an empty ``cache``."""
    body = ["    for item in items:", "        ctx.item = item", "        ctx.view = None"]
    if fresh_cache:
        body.append("        ctx.cache = {}")
    unconditional = False
    for n, (index, conditional) in enumerate(shape):
        if conditional:
            body += ["        try:",
                     f"            if c{n}(ctx):",
                     f"                r{n}(ctx)",
                     "                executed = True",
                     "        except Exception as exc:",
                     "            executed = True",
                     f"            report({index}, exc)"]
        else:
            unconditional = True
            body += ["        try:",
                     f"            r{n}(ctx)",
                     "        except Exception as exc:",
                     f"            report({index}, exc)"]
    params = ", ".join(f"r{n}, c{n}" for n in range(len(shape)))
    # A statement without a condition runs on every item: the loop ran one when there was an item.
    start = "bool(items)" if unconditional else "False"
    source = "\n".join([f"def factory({params}):",
                        "  def loop(ctx, items, report):",
                        f"    executed = {start}",
                        *body,
                        "    return executed",
                        "  return loop"])
    namespace: dict[str, Any] = {}
    exec(compile(source, "<ottl statement loop>", "exec"), namespace)  # fixed text and indexes only
    factory: Callable[..., Loop] = namespace["factory"]
    return factory
