"""A sampling CPU profiler of the gateway's event loop thread, written out in pprof's protobuf format.

No maintained Python profiler writes pprof's format (py-spy writes speedscope, flame graphs and raw text from
outside the process; yappi writes callgrind and pstat), so this one samples stacks itself: ``setitimer``'s
``ITIMER_PROF`` sends SIGPROF every ``1/hz`` seconds of CPU time the process uses, and the handler, which Python
runs in the main thread between two bytecodes, counts the main thread's stack. Idle waiting in the event loop
uses no CPU and so takes no samples. The cost while profiling is one short Python call per sample (100 per
CPU-second by default); nothing at all when no profile runs.

The profile (``Profile`` in protos/pprof/profile.proto) has one sample type, ``cpu`` in ``nanoseconds``, one
function per code object and one location per (code object, line), leaf first, as pprof expects; it is served
gzip-compressed, as Go's ``/debug/pprof/profile`` is, and ``pprof`` and speedscope read it.

Two details make ``go tool pprof`` show it as written. A function's ``system_name`` is left empty: pprof
"demangles" a function whose name equals its system name, and its C++ heuristics delete what is between ``<``
and ``>``, so ``<module>``, ``<lambda>`` and ``<genexpr>`` would become empty names. And every location is in one
mapping, the Python interpreter, marked as already symbolized, so pprof neither looks for a binary to symbolize
against nor warns that it has none.
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import signal
import sys
import threading
import time
from types import CodeType, FrameType
from typing import Any

from gateway.protos.pprof import profile_pb2

__all__ = ["ProfileBusyError", "cpu_profile", "to_pprof"]

#: Stacks deeper than this are cut at the root end (the leaf, where the time is spent, is always kept).
MAX_DEPTH = 128

_lock = threading.Lock()


class ProfileBusyError(RuntimeError):
    """Another profile is running: SIGPROF has one handler per process."""


Stack = tuple[tuple[CodeType, int], ...]


async def cpu_profile(seconds: float, hz: int = 100) -> bytes:
    """Sample the main thread for ``seconds`` (run from the main thread's event loop); gzip'd pprof bytes."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("the profiler must run in the main thread (SIGPROF handlers run there)")
    if not _lock.acquire(blocking=False):
        raise ProfileBusyError("a CPU profile is already being taken; try again when it is done")
    counts: collections.Counter[Stack] = collections.Counter()

    def sample(signum: int, frame: FrameType | None) -> None:
        stack: list[tuple[CodeType, int]] = []
        while frame is not None and len(stack) < MAX_DEPTH:
            stack.append((frame.f_code, frame.f_lineno))
            frame = frame.f_back
        counts[tuple(stack)] += 1

    period_ns = 1_000_000_000 // hz
    started_ns = time.time_ns()
    previous = signal.signal(signal.SIGPROF, sample)
    try:
        signal.setitimer(signal.ITIMER_PROF, 1 / hz, 1 / hz)
        await asyncio.sleep(seconds)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)
        _lock.release()
    duration_ns = time.time_ns() - started_ns
    return gzip.compress(to_pprof(counts, period_ns, started_ns, duration_ns).SerializeToString())


def to_pprof(counts: collections.Counter[Stack], period_ns: int, started_ns: int, duration_ns: int) -> Any:
    """The ``Profile`` message for stack sample counts: value per sample = count * period, in nanoseconds."""
    profile = profile_pb2.Profile()
    strings: dict[str, int] = {}

    def string(text: str) -> int:
        index = strings.get(text)
        if index is None:
            index = strings[text] = len(profile.string_table)
            profile.string_table.append(text)
        return index

    string("")
    # One mapping for all locations: the interpreter, with function names, files and lines already in place.
    profile.mapping.add(id=1, filename=string(sys.executable or "python"), has_functions=True, has_filenames=True,
                        has_line_numbers=True)
    functions: dict[CodeType, int] = {}
    locations: dict[tuple[CodeType, int], int] = {}

    def location(code: CodeType, line: int) -> int:
        key = (code, line)
        found = locations.get(key)
        if found is not None:
            return found
        function_id = functions.get(code)
        if function_id is None:
            function_id = functions[code] = len(functions) + 1
            name = getattr(code, "co_qualname", code.co_name)
            # no system_name: see the module docstring (pprof would cut "<module>" down to nothing)
            profile.function.add(id=function_id, name=string(name), filename=string(code.co_filename),
                                 start_line=code.co_firstlineno)
        location_id = locations[key] = len(locations) + 1
        profile.location.add(id=location_id, mapping_id=1).line.add(function_id=function_id, line=line)
        return location_id

    profile.sample_type.add(type=string("cpu"), unit=string("nanoseconds"))
    profile.period_type.type = string("cpu")
    profile.period_type.unit = string("nanoseconds")
    profile.period = period_ns
    profile.time_nanos = started_ns
    profile.duration_nanos = duration_ns
    for stack, count in counts.items():
        profile.sample.add(location_id=[location(code, line) for code, line in stack], value=[count * period_ns])
    return profile
