"""Measuring the process: resident memory, the container's memory limit, and giving freed memory back.

Resident memory (RSS) is what the kernel's OOM killer and a cgroup limit count, so that is what the limiter
watches; the Collector watches the Go heap instead, which Python has no equivalent of.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from pathlib import Path

__all__ = ["Limits", "container_limit_bytes", "release_memory", "resident_bytes", "total_memory_bytes"]

MIB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: cgroup v1 reports "no limit" as a huge number near 2**63 rounded down to a page.
_NO_LIMIT_ABOVE = 1 << 60


def resident_bytes() -> int:
    """Current RSS of this process; 0 where /proc is not available."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max" or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value < _NO_LIMIT_ABOVE else None


def container_limit_bytes(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The cgroup memory limit of this process (v2 memory.max, then v1 memory.limit_in_bytes), if any."""
    own = ""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hierarchy, _, path = line.partition(":")[2].partition(":")
            if hierarchy in ("", "memory") or "memory" in hierarchy.split(","):
                own = path.lstrip("/")
                if hierarchy == "":
                    break
    except OSError:
        pass
    candidates = [root / own / "memory.max", root / "memory.max",
                  root / "memory" / own / "memory.limit_in_bytes", root / "memory" / "memory.limit_in_bytes"]
    for candidate in candidates:
        value = _read_int(candidate)
        if value is not None:
            return value
    return None


def total_memory_bytes() -> int:
    """The container's limit, or the machine's RAM when there is none."""
    limit = container_limit_bytes()
    if limit is not None:
        return limit
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def _load_malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc.malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS): freed memory stays with the allocator
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_memory() -> None:
    """Collect garbage and hand free heap pages back to the kernel, so RSS falls once data has left.

    Without malloc_trim, glibc keeps freed small blocks in its arenas and RSS never drops below a past peak:
    the limiter would go on refusing after the pressure is gone.
    """
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class Limits:
    """Hard and soft limit in bytes, computed once from the config and the container."""

    def __init__(self, limit_mib: int, spike_limit_mib: int, limit_percentage: int,
                 spike_limit_percentage: int, total: int | None = None) -> None:
        if limit_mib > 0:
            self.hard = limit_mib * MIB
            spike = spike_limit_mib * MIB if spike_limit_mib else self.hard // 5
        else:
            total = total_memory_bytes() if total is None else total
            self.hard = total * limit_percentage // 100
            spike = total * spike_limit_percentage // 100 if spike_limit_percentage else self.hard // 5
        self.soft = max(self.hard - spike, 0)
