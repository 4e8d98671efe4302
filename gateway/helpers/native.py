"""The C twins of a few per-span loops (``_spanscan.c``), or None where they do not run.

The extension is built at install time when a C compiler is there (``setup.py``, optional). Each function in
it has a Python twin next to its caller, which is the reference: the tests run both on the same bytes and
compare. ``OTELGW_PURE_PYTHON=1`` in the environment turns the C twins off (the tests do, to check the Python
ones; a user can, to tell whether a problem is in the C code).
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["VERSION", "spanscan"]

#: The ``SPANSCAN_VERSION`` of ``_spanscan.c`` this code calls: the functions it has and what they take and give.
VERSION = 4


def _load() -> ModuleType | None:
    if os.environ.get("OTELGW_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        import gateway.helpers._spanscan as _spanscan
    except ImportError:  # not built: no compiler at install time
        return None
    if getattr(_spanscan, "VERSION", None) != VERSION:  # built from an older source: reinstall to rebuild
        return None
    return _spanscan


#: The C module, or None: callers pick their Python twin then.
spanscan = _load()
