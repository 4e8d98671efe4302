"""Which worker this process is (``otelgw run --workers N``), and what that changes in its configuration.

The supervisor starts each worker with ``OTELGW_WORKER=<index>/<count>`` and ``OTELGW_WORKER_DIR=<dir>`` (a
private directory holding the workers' routing sockets and port reports). A process without them is a gateway
on its own: nothing here changes anything for it.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WORKER_ENV", "WorkerContext", "adjust_config", "available_cpus", "current", "reuse_port_error",
           "shared_ports", "tag_logs"]

WORKER_ENV = "OTELGW_WORKER"
WORKER_DIR_ENV = "OTELGW_WORKER_DIR"
#: The bearer token of every worker's own admin endpoint, which only the supervisor calls.
WORKER_TOKEN_ENV = "OTELGW_WORKER_ADMIN_TOKEN"
#: Where a worker listens for what it must serve itself instead of the configured address: loopback, any port.
PRIVATE_ENDPOINT = "127.0.0.1:0"
#: file_storage's default ``directory`` (plugins/extensions/file_storage/config.py).
DEFAULT_STORAGE_DIRECTORY = "/var/lib/otelgw/file_storage"


@dataclass(frozen=True)
class WorkerContext:
    index: int
    count: int
    directory: Path
    admin_token: str

    def socket_path(self, index: int) -> Path:
        """The unix socket on which worker ``index`` takes items routed to it by the others."""
        return self.directory / f"worker-{index}.sock"

    def report_path(self, index: int) -> Path:
        """Where worker ``index`` writes the loopback addresses of its own endpoints (``report.py``)."""
        return self.directory / f"worker-{index}.json"


def _from_environment() -> WorkerContext | None:
    value = os.environ.get(WORKER_ENV)
    if not value:
        return None
    index, _, count = value.partition("/")
    return WorkerContext(int(index), int(count), Path(os.environ[WORKER_DIR_ENV]),
                         os.environ.get(WORKER_TOKEN_ENV, ""))


_CURRENT = _from_environment()


def current() -> WorkerContext | None:
    """This process's place among the workers; None for a gateway on its own (``--workers 1``)."""
    return _CURRENT


class _WorkerField(logging.Filter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "worker"):
            record.worker = self.index
        return True


def tag_logs() -> None:
    """In a worker, every log line of the gateway carries ``"worker": <index>``: the workers share one stderr."""
    if _CURRENT is not None:
        for handler in logging.getLogger("otelgw").handlers:
            handler.addFilter(_WorkerField(_CURRENT.index))


def shared_ports() -> bool:
    """True when receivers must bind with SO_REUSEPORT: this process is one of several workers on the same ports."""
    return _CURRENT is not None and _CURRENT.count > 1


def reuse_port_error() -> str | None:
    """Why this OS cannot let several processes share a listening port, or None when it can."""
    option = getattr(socket, "SO_REUSEPORT", None)
    if option is None:
        return "this operating system has no SO_REUSEPORT"
    with socket.socket() as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, option, 1)
        except OSError as exc:
            return f"SO_REUSEPORT is refused here ({exc.strerror or exc})"
    return None


def _cgroup_cpus() -> float | None:
    """The cgroup v2 CPU quota in CPUs (``cpu.max``: "<quota> <period>" or "max <period>"), None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity call
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _section(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def adjust_config(raw: dict[str, Any]) -> dict[str, Any]:
    """A worker's configuration: the configured files, with every endpoint that is one view of the whole gateway
    (self-metrics, admin, health_check, prometheus exporters, and the debugging extensions) moved to a loopback
    port of its own, and each ``file_storage`` directory to its ``worker-<index>`` subdirectory. The supervisor
    serves those addresses and asks each worker. Unchanged outside a worker."""
    context = _CURRENT
    if context is None or context.count < 2:
        return raw
    service = _section(raw, "service")
    metrics = _section(_section(service, "telemetry"), "metrics")
    if metrics.get("level") != "none" and metrics.get("address", "-") != "":
        metrics["address"] = PRIVATE_ENDPOINT
    admin = service.get("admin")
    if isinstance(admin, dict) and admin.get("endpoint"):
        admin.update(endpoint=PRIVATE_ENDPOINT, token=context.admin_token)
    # A persistent queue's directory is locked by one process: each worker keeps its data apart (workers.storage).
    extensions = raw.get("extensions")
    if isinstance(extensions, dict):
        for cid, section in extensions.items():
            if str(cid).split("/", 1)[0] == "file_storage":
                section = _section(extensions, cid)
                base = Path(str(section.get("directory") or DEFAULT_STORAGE_DIRECTORY))
                if base.is_dir():  # else the extension names the missing base (or creates it, then this)
                    home = base / f"worker-{context.index}"
                    home.mkdir(mode=0o750, exist_ok=True)
                    section["directory"] = str(home)
                elif section.get("create_directory"):
                    section["directory"] = str(base / f"worker-{context.index}")
    for kind, types in (("extensions", ("health_check", "zpages", "pprof")), ("exporters", ("prometheus",))):
        components = raw.get(kind)
        if not isinstance(components, dict):
            continue
        for cid in list(components):
            if str(cid).split("/", 1)[0] in types:
                _section(components, cid)["endpoint"] = PRIVATE_ENDPOINT
    return raw
