"""The cpu, memory, load, paging and processes scrapers (OpenTelemetry semantic conventions for system metrics)."""

from __future__ import annotations

import os

import psutil

from .builder import Metrics

__all__ = ["scrape_cpu", "scrape_load", "scrape_memory", "scrape_paging", "scrape_processes"]

_CPU_STATES = {"user": "user", "system": "system", "idle": "idle", "irq": "interrupt", "nice": "nice",
               "softirq": "softirq", "steal": "steal", "iowait": "wait"}


def scrape_cpu(metrics: Metrics) -> None:
    per_cpu = psutil.cpu_times(percpu=True)
    metrics.sum("system.cpu.time", "s", "Total seconds each logical CPU spent on each mode.",
                ((getattr(times, field), {"cpu": f"cpu{i}", "state": state})
                 for i, times in enumerate(per_cpu) for field, state in _CPU_STATES.items()
                 if hasattr(times, field)), monotonic=True, as_int=False)
    metrics.sum("system.cpu.logical.count", "{cpu}", "Number of available logical CPUs.",
                [(psutil.cpu_count(logical=True) or 0, {})], monotonic=False, default=False)
    metrics.sum("system.cpu.physical.count", "{cpu}", "Number of available physical CPUs.",
                [(psutil.cpu_count(logical=False) or 0, {})], monotonic=False, default=False)
    if metrics.on("system.cpu.utilization", False):
        percents = psutil.cpu_times_percent(percpu=True)  # since the previous call: the collection interval
        metrics.gauge("system.cpu.utilization", "1", "Difference in system.cpu.time since the last "
                      "measurement per logical CPU, divided by the elapsed time.",
                      ((getattr(p, field) / 100, {"cpu": f"cpu{i}", "state": state})
                       for i, p in enumerate(percents) for field, state in _CPU_STATES.items() if hasattr(p, field)),
                      default=False)


def scrape_memory(metrics: Metrics) -> None:
    memory = psutil.virtual_memory()
    states = {"used": memory.used, "free": memory.free}
    for field, state in (("buffers", "buffered"), ("cached", "cached")):
        if hasattr(memory, field):
            states[state] = getattr(memory, field)
    slab = getattr(memory, "slab", None)
    if slab is not None:  # psutil gives the total; the reclaimable split is not read here
        states["slab_reclaimable"] = slab
    metrics.sum("system.memory.usage", "By", "Bytes of memory in use.",
                ((value, {"state": state}) for state, value in states.items()), monotonic=False)
    metrics.gauge("system.memory.utilization", "1", "Percentage of memory bytes in use.",
                  ((value / memory.total if memory.total else 0.0, {"state": state})
                   for state, value in states.items()), default=False)
    metrics.sum("system.memory.limit", "By", "Total bytes of memory available.", [(memory.total, {})],
                monotonic=False, default=False)


def scrape_load(metrics: Metrics) -> None:
    one, five, fifteen = psutil.getloadavg()
    for name, value in (("1m", one), ("5m", five), ("15m", fifteen)):
        metrics.gauge(f"system.cpu.load_average.{name}", "{thread}",
                      f"Average CPU Load over {name.rstrip('m')} minute(s).", [(value, {})])


def scrape_paging(metrics: Metrics) -> None:
    swap = psutil.swap_memory()
    metrics.sum("system.paging.usage", "By", "Swap (unix) or pagefile (windows) usage.",
                [(swap.used, {"device": "swap", "state": "used"}), (swap.free, {"device": "swap", "state": "free"})],
                monotonic=False)
    metrics.gauge("system.paging.utilization", "1", "Swap (unix) or pagefile (windows) utilization.",
                  [(swap.used / swap.total if swap.total else 0.0, {"device": "swap", "state": "used"}),
                   (swap.free / swap.total if swap.total else 0.0, {"device": "swap", "state": "free"})],
                  default=False)
    metrics.sum("system.paging.operations", "{operations}", "The number of paging operations.",
                [(swap.sin, {"direction": "page_in", "type": "major"}),
                 (swap.sout, {"direction": "page_out", "type": "major"})], monotonic=True)


def scrape_processes(metrics: Metrics) -> None:
    counts: dict[str, int] = {}
    for process in psutil.process_iter(["status"]):
        status = _STATUS.get(process.info.get("status") or "", "unknown")
        counts[status] = counts.get(status, 0) + 1
    metrics.sum("system.processes.count", "{processes}", "Total number of processes in each state.",
                ((count, {"status": status}) for status, count in sorted(counts.items())), monotonic=False)
    created = _forks()
    if created is not None:
        metrics.sum("system.processes.created", "{processes}", "Total number of created processes.",
                    [(created, {})], monotonic=True)


_STATUS = {psutil.STATUS_RUNNING: "running", psutil.STATUS_SLEEPING: "sleeping", psutil.STATUS_DISK_SLEEP: "blocked",
           psutil.STATUS_ZOMBIE: "zombies", psutil.STATUS_STOPPED: "stopped", psutil.STATUS_TRACING_STOP: "stopped",
           psutil.STATUS_IDLE: "idle", psutil.STATUS_DEAD: "dead", psutil.STATUS_WAKING: "running"}


def _forks() -> int | None:
    # psutil has no fork counter; /proc/stat's "processes" line is the one the Collector reads too.
    try:
        with open(os.path.join(psutil.PROCFS_PATH, "stat")) as stat:
            for line in stat:
                if line.startswith("processes "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None
