"""KPI state that survives a restart: the engine's series written to a ``file_storage`` directory.

Up/down counters (queue depth, agents available, CRM backlog) are sums of every event since the gateway started:
a restart that forgets them reports zero agents available until every agent changes state again. With
``storage: file_storage`` the connector writes its state after every flush and at shutdown, and reads it back at
start, so the series go on from where they were (cumulative start times included, so a backend sees no reset).

What is written, per KPI: every series' cell (counter and up/down values, gauge values, histogram buckets, sum
and count), its start time, and for ratios the per-slot numerators and denominators of the sliding window. Slots
are numbered on the monotonic clock, which does not survive a restart, so they are written as ages (slots
before the current one) with the wall-clock time of the write; at restore the wall time that passed moves them
further back, and slots that left the window meanwhile are dropped. A KPI is matched by its definition (name,
type, labels, buckets): one that changed starts empty, the others are restored.

The file is JSON, written to a temporary name and renamed over the old one, so a crash leaves the previous state
whole. A file that cannot be read is logged and set aside (renamed ``.corrupt``); the connector starts empty.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import KpiEngine
    from .rules import CompiledKpi

__all__ = ["FILE_NAME", "StateFile", "restore", "snapshot"]

FILE_NAME = "kpi-state.json"
VERSION = 1


def _identity(kpi: CompiledKpi) -> str:
    k = kpi.kpi
    return json.dumps([k.name, k.type, list(kpi.label_names), list(k.buckets), k.window], default=str)


def _encode_key(key: tuple[Any, ...]) -> list[Any]:
    return [list(_encode_key(v)) if isinstance(v, tuple) else v for v in key]


def _decode_key(key: list[Any]) -> tuple[Any, ...]:
    return tuple(_decode_key(v) if isinstance(v, list) else v for v in key)


def snapshot(engine: KpiEngine) -> dict[str, Any]:
    """The engine's state as JSON-ready data."""
    from .engine import _SLOTS

    now_mono, now_wall = time.monotonic(), time.time()
    kpis: dict[str, Any] = {}
    for kpi, state in zip(engine.kpis, engine._states, strict=True):
        if kpi.type == "ratio":
            current = int(now_mono * _SLOTS / kpi.kpi.window)
            kpis[_identity(kpi)] = {
                "numerators": [[_encode_key(k), {str(current - s): v for s, v in slots.items()}]
                               for k, slots in state.series.items()],
                "denominators": [[_encode_key(k), {str(current - s): v for s, v in slots.items()}]
                                 for k, slots in state.denominators.items()],
            }
        else:
            kpis[_identity(kpi)] = {
                "series": [[_encode_key(k), cell, state.starts.get(k, 0),
                            now_mono - state.touched.get(k, now_mono)] for k, cell in state.series.items()],
            }
    return {"version": VERSION, "written_at": now_wall, "kpis": kpis}


def restore(engine: KpiEngine, data: dict[str, Any]) -> int:
    """Load ``data`` (from :func:`snapshot`) into a fresh engine; returns the series restored."""
    from .engine import _SLOTS

    if data.get("version") != VERSION:
        return 0
    elapsed = max(time.time() - float(data.get("written_at", 0.0)), 0.0)
    now_mono = time.monotonic()
    saved = data.get("kpis") or {}
    restored = 0
    for kpi, state in zip(engine.kpis, engine._states, strict=True):
        entry = saved.get(_identity(kpi))
        if entry is None:
            continue
        if kpi.type == "ratio":
            current = int(now_mono * _SLOTS / kpi.kpi.window)
            moved = int(elapsed * _SLOTS / kpi.kpi.window)
            for name, table in (("numerators", state.series), ("denominators", state.denominators)):
                for key, slots in entry.get(name, []):
                    kept = {current - int(age) - moved: float(v) for age, v in slots.items()
                            if int(age) + moved < _SLOTS}
                    if kept or name == "numerators":
                        table[_decode_key(key)] = kept
                        restored += 1
        else:
            for key, cell, start, idle in entry.get("series", []):
                k = _decode_key(key)
                state.series[k] = cell
                state.starts[k] = int(start)
                state.touched[k] = now_mono - float(idle) - elapsed
                restored += 1
    return restored


class StateFile:
    """The state file of one kpi connector in its ``file_storage`` directory."""

    def __init__(self, directory: Path, fsync: bool) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME
        self.fsync = fsync

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none; raises ValueError (after setting the file aside) when it
        cannot be read."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return data
        except ValueError as exc:
            os.replace(self.path, self.path.with_suffix(".corrupt"))
            raise ValueError(f"{self.path}: unreadable KPI state, set aside as {FILE_NAME[:-5]}.corrupt: {exc}") \
                from None

    def save(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(data, out, separators=(",", ":"))
            if self.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, self.path)
