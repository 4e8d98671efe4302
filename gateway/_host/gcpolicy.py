"""Keep Python's cyclic garbage collector from stopping the gateway when it holds millions of objects.

A full (generation 2) collection visits every tracked object and holds the GIL while it does: with a million
series held by span_metrics and the prometheus exporter that is several million objects and a pause of seconds,
in which no health probe and no request is answered. Almost everything the gateway keeps for long (series,
cumulative state) is freed by reference counting, not by the cycle collector. So after a full collection that
took long, the objects that survived it are moved out of the collector's sight (``gc.freeze``); the next full
collections only visit what was allocated since, and stay short.

The price: a reference cycle among frozen objects that becomes garbage later is not reclaimed. Freezing only
happens after a slow full collection, i.e. once per growth of the heap by a large amount, so what could be
caught that way is what was in flight at those few moments. ``otelgw_gc_frozen_objects`` shows the frozen
count, as counted when it last froze: ``gc.get_freeze_count()`` walks every frozen object (18 ms for two million),
too dear for a gauge read by every scrape and by the admin endpoint's stats every second. Young collections
run less often too (a higher generation-0 threshold): the gateway allocates many short-lived objects per request,
nearly all freed by reference counting.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

__all__ = ["GEN0_THRESHOLD", "SLOW_FULL_COLLECTION_S", "frozen_objects", "install"]

log = logging.getLogger("otelgw.service")

#: Allocations (minus deallocations) between two young collections; CPython's default is 700.
GEN0_THRESHOLD = 20_000
#: A full collection at least this long freezes what survived it.
SLOW_FULL_COLLECTION_S = 0.05

_state: dict[str, Any] = {"installed": False, "started": 0.0, "logged": False, "frozen": 0}


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    if info.get("generation") != 2:
        return
    if phase == "start":
        _state["started"] = time.perf_counter()
        return
    took = time.perf_counter() - _state["started"]
    if took >= SLOW_FULL_COLLECTION_S:
        gc.freeze()
        _state["frozen"] = gc.get_freeze_count()  # one walk per freeze, which is rare; readers take this
        if not _state["logged"]:
            _state["logged"] = True
            log.info("a full garbage collection took %.0f ms; long-lived objects are frozen from now on so "
                     "later collections stay short", took * 1000, extra={"frozen": _state["frozen"]})


def frozen_objects() -> int:
    """Objects frozen by this policy, as counted at the last freeze (0 before any)."""
    return int(_state["frozen"])


def install() -> None:
    """Apply the policy to this process (idempotent). Called by ``otelgw run``."""
    if _state["installed"]:
        return
    _state["installed"] = True
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    gc.callbacks.append(_on_collection)
