"""Keep glibc's allocator from handing every request's memory back to the kernel and faulting it in again.

A request of a few hundred kilobytes is held in buffers of that size (grpc's slices, the ``bytes`` of the
request, the bytes a batch is joined into). With glibc's defaults, a block over 128 KiB is its own ``mmap``
until the first one is freed, after which the threshold moves up; and whenever the free space at the top of the
heap passes the trim threshold (twice that), it is given back to the kernel. Under a steady stream of such
requests this gives back and takes again the same pages all the time: on the realistic pipeline's traffic a
gRPC server that does nothing with its requests took about 110 page faults per request (every page of every
request, zeroed by the kernel), and about two with the settings here, for a third less CPU per request
(``bench.malloc``).

So ``otelgw run`` sets the mmap threshold to ``MMAP_THRESHOLD`` (blocks below it come from the heap, which
keeps them for reuse) and the trim threshold to ``TRIM_THRESHOLD`` (free space at the top of the heap up to
that size stays with the process). The cost is that much memory held after a burst; ``memory_limiter`` still
hands it back when it must (``malloc_trim``, which ignores the threshold). Only on glibc (the Debian image, most
Linux distributions); musl and other systems keep their own behaviour. ``OTELGW_MALLOC_TUNING=off`` leaves
glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "applied", "install"]

#: Blocks at least this large are mapped on their own (and unmapped when freed): larger than any request the
#: receivers take by default.
MMAP_THRESHOLD = 8 << 20
#: Free memory at the top of the heap kept by the process before it is given back to the kernel.
TRIM_THRESHOLD = 32 << 20
# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_state = {"installed": False, "applied": False}


def install() -> bool:
    """Apply the settings to this process (idempotent); True when they are in effect."""
    if _state["installed"]:
        return _state["applied"]
    _state["installed"] = True
    if os.environ.get("OTELGW_MALLOC_TUNING", "").lower() in ("off", "0", "false", "no"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _state["applied"] = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                             and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _state["applied"]


def applied() -> bool:
    """Whether ``install`` put the settings in effect in this process."""
    return _state["applied"]
