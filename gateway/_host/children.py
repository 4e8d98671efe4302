"""Child processes that must not outlive the otelgw process that started them."""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

__all__ = ["die_with_parent"]


def _prctl_pdeathsig() -> None:
    # PR_SET_PDEATHSIG (1): SIGTERM, which every otelgw command treats as "drain and stop", once the parent dies,
    # even by SIGKILL.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


#: A ``preexec_fn`` for ``subprocess``/``asyncio`` process creation: the child gets SIGTERM when its parent dies
#: (Linux); elsewhere None, and the parent's own shutdown path is what stops its children.
die_with_parent: Callable[[], None] | None = _prctl_pdeathsig if sys.platform == "linux" else None
