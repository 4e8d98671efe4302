"""Child processes that must not outlive the otelgw process that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable, Mapping

__all__ = ["PARENT_ENV", "die_with_parent", "die_with_starter", "started_by_me"]

#: Set by an otelgw process in the environment of an otelgw child it starts (``started_by_me``): its own pid.
PARENT_ENV = "OTELGW_DIE_WITH_PARENT"


def _prctl_pdeathsig() -> None:
    # PR_SET_PDEATHSIG (1): SIGTERM, which every otelgw command treats as "drain and stop", once the parent dies,
    # even by SIGKILL.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


#: A ``preexec_fn`` for ``subprocess``/``asyncio`` process creation: the child gets SIGTERM when its parent dies
#: (Linux); elsewhere None, and the parent's own shutdown path is what stops its children.
die_with_parent: Callable[[], None] | None = _prctl_pdeathsig if sys.platform == "linux" else None


def started_by_me(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for an otelgw child that must end with this process, asked of the child itself (``die_with_starter``)
    instead of a ``preexec_fn``. A ``preexec_fn`` makes Python fork where it would otherwise vfork, and a fork
    runs the fork handlers of gRPC, which print "skipping fork() handlers" when gRPC threads are busy, as the
    demo's OpenTelemetry SDK and trace backend are."""
    return {**env, PARENT_ENV: str(os.getpid())}


def die_with_starter() -> None:
    """First thing in every otelgw command: when an otelgw process started this one with ``started_by_me``, get
    SIGTERM when it dies, and act on it at once if it is gone already. The variable is not passed on."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None or die_with_parent is None:
        return
    die_with_parent()
    if str(os.getppid()) != parent:  # it died before the request took effect: no signal will come
        os.kill(os.getpid(), signal.SIGTERM)
