"""The process scraper: one OTLP resource per process (pid, executable, command line, owner) with its CPU time,
memory and disk I/O. Processes that vanish or deny access while read are counted, never fatal."""

from __future__ import annotations

from collections.abc import Callable

import psutil
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from .builder import Metrics
from .config import ScraperConfig

__all__ = ["scrape_processes_each"]

_ATTRS = ["pid", "ppid", "name", "exe", "cmdline", "username", "cpu_times", "memory_info", "io_counters",
          "create_time", "num_threads"]


def _resource(info: dict, config: ScraperConfig) -> list[KeyValue]:
    attrs: dict[str, str | int] = {"process.pid": info["pid"], "process.parent_pid": info.get("ppid") or 0,
                                   "process.executable.name": info.get("name") or ""}
    if info.get("exe"):
        attrs["process.executable.path"] = info["exe"]
    cmdline = info.get("cmdline") or []
    if cmdline:
        attrs["process.command"] = cmdline[0]
        attrs["process.command_line"] = " ".join(cmdline)
    if info.get("username"):
        attrs["process.owner"] = info["username"]
    return [KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))
            for k, v in attrs.items()]


def scrape_processes_each(request: ExportMetricsServiceRequest, config: ScraperConfig, scope_name: str,
                          now_ns: int, on_error: Callable[[str, str], None]) -> int:
    """Add one resource per wanted process to ``request``; returns the number of processes reported."""
    enabled = {name: toggle.enabled for name, toggle in config.metrics.items()}
    reported = 0
    for process in psutil.process_iter(_ATTRS, ad_value=None):
        info = process.info
        name = info.get("name") or ""
        if config.include is not None and not config.include.matches("names", name):
            continue
        if config.exclude is not None and config.exclude.matches("names", name):
            continue
        if info.get("cpu_times") is None or info.get("memory_info") is None:
            if not config.mute_process_name_error:
                on_error("access_denied", f"cannot read process {info.get('pid')} ({name or 'unknown name'})")
            continue
        rm = request.resource_metrics.add()
        rm.resource.attributes.extend(_resource(info, config))
        scope = rm.scope_metrics.add()
        scope.scope.name = scope_name
        start_ns = int((info.get("create_time") or 0) * 1e9)
        metrics = Metrics(scope, now_ns, start_ns, enabled)
        cpu = info["cpu_times"]
        cpu_states = [(cpu.user, {"state": "user"}), (cpu.system, {"state": "system"})]
        if getattr(cpu, "iowait", None) is not None:
            cpu_states.append((cpu.iowait, {"state": "wait"}))
        metrics.sum("process.cpu.time", "s", "Total CPU seconds broken down by different states.", cpu_states,
                    monotonic=True, as_int=False)
        memory = info["memory_info"]
        metrics.sum("process.memory.usage", "By", "The amount of physical memory in use.", [(memory.rss, {})],
                    monotonic=False)
        metrics.sum("process.memory.virtual", "By", "Virtual memory size.", [(memory.vms, {})], monotonic=False)
        io = info.get("io_counters")
        if io is not None:
            metrics.sum("process.disk.io", "By", "Disk bytes transferred.",
                        [(io.read_bytes, {"direction": "read"}), (io.write_bytes, {"direction": "write"})],
                        monotonic=True)
        elif not config.mute_process_io_error:
            on_error("io_counters", f"cannot read I/O counters of process {info['pid']} ({name})")
        metrics.sum("process.threads", "{threads}", "Process threads count.", [(info.get("num_threads") or 0, {})],
                    monotonic=False, default=False)
        reported += 1
    return reported
