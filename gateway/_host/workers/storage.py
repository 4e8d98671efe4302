"""``file_storage`` with workers: a directory of its own per worker, and what another worker count left behind.

A persistent queue's directory is locked by one process, so N workers cannot share one: with ``--workers N``
(N > 1) worker ``i`` keeps its queues, tail_sampling buffers and KPI state in ``<directory>/worker-<i>``
(``adjust_config`` rewrites the extension's ``directory``). What the gateway acknowledged under another worker
count must still be sent, so at start each process takes over the data no process of the current count owns:

- ``--workers 1`` (a gateway on its own, home ``<directory>``): every ``worker-<j>`` subdirectory;
- worker ``i`` of N: ``worker-<j>`` for every ``j >= N`` with ``j % N == i``, and worker 0 also what lies in
  ``<directory>`` itself (written by a gateway on its own).

Each owner's subdirectory (``exporter_otlp_traces``, ``processor_tail_sampling``, ``connector_kpi_kpi``...) is
moved into the home by a rename when the home has none of that name. When both have one, an exporter's queue is
merged: the unsent records are appended to the home's queue (sender metadata included) and the old directory is
removed afterwards, so a crash in between sends some records twice, never none. Other owners' data is moved
beside the home's own as ``<owner>.from-<where>``, for the owner to take over in its own format: tail_sampling
replays such logs into its own at start (``TraceStorage.take_over_adopted``). A subdirectory locked by a
running process is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from gateway.helpers.persistent_queue import merge_queue

__all__ = ["WORKER_PREFIX", "adopt", "foreign_directories", "worker_home"]

log = logging.getLogger("otelgw.workers")

WORKER_PREFIX = "worker-"
_WORKER_DIR = re.compile(r"worker-(\d+)")


def worker_home(directory: Path, index: int, count: int) -> Path:
    """Where worker ``index`` of ``count`` keeps its data: ``directory`` itself for a gateway on its own."""
    return directory if count <= 1 else directory / f"{WORKER_PREFIX}{index}"


def _worker_dirs(directory: Path) -> Iterator[tuple[int, Path]]:
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            match = _WORKER_DIR.fullmatch(entry.name)
            if match and entry.is_dir():
                yield int(match.group(1)), entry


def foreign_directories(directory: Path, index: int, count: int) -> list[tuple[Path, bool]]:
    """The directories whose owners' data this process takes over, each with whether it is ``directory`` itself
    (whose ``worker-<j>`` entries are not owners' data)."""
    if count <= 1:
        return [(path, False) for _, path in sorted(_worker_dirs(directory))]
    found = [(path, False) for j, path in sorted(_worker_dirs(directory)) if j >= count and j % count == index]
    return [(directory, True), *found] if index == 0 else found


def _locked_elsewhere(owner: Path) -> bool:
    """True when a running process holds the owner's lock file (a persistent queue, tail_sampling storage)."""
    lock = owner / "lock"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock, if taken
    return False


def _free_name(home: Path, name: str) -> Path:
    path, n = home / name, 1
    while path.exists():
        n += 1
        path = home / f"{name}-{n}"
    return path


def adopt(directory: Path, index: int, count: int, fsync: bool) -> None:
    """Move or merge into this process's home the owners' data of ``foreign_directories`` (module docstring)."""
    home = worker_home(directory, index, count)
    if not directory.is_dir():
        return  # the extension reports a missing directory itself
    home.mkdir(mode=0o750, exist_ok=True)
    for source, is_root in foreign_directories(directory, index, count):
        for owner in sorted(source.iterdir()):
            if not owner.is_dir() or (is_root and _WORKER_DIR.fullmatch(owner.name)):
                continue
            target = home / owner.name
            if _locked_elsewhere(owner):
                log.warning("file_storage data left alone: a running process holds it",
                            extra={"directory": str(owner)})
                continue
            if not target.exists():
                owner.rename(target)
                log.info("file_storage data of another worker count taken over",
                         extra={"from": str(owner), "to": str(target)})
            elif owner.name.startswith("exporter_"):
                records = merge_queue(owner, target, fsync)
                shutil.rmtree(owner)
                log.info("persistent queue of another worker count merged into this worker's",
                         extra={"from": str(owner), "to": str(target), "records": records})
            else:  # beside the home's own, for its owner to take over (tail_sampling replays such logs)
                beside = _free_name(home, f"{owner.name}.from-{source.name if not is_root else 'single'}")
                owner.rename(beside)
                log.warning("file_storage data of another worker count put beside this worker's, for its owner to "
                            "take over at start", extra={"from": str(owner), "to": str(beside)})
        if not is_root:
            with contextlib.suppress(OSError):
                source.rmdir()  # only when empty: what could not be taken over stays
