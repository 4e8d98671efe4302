"""hostmetrics: config, the values every scraper reports against what the OS says, root_path, a gateway run."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import psutil
import pytest

from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.testing import Sink, settings_for
from plugins.receivers.hostmetrics.factory import factory
from plugins.receivers.hostmetrics.receiver import HostMetricsReceiver, set_root_path

ALL = {name: None for name in ("cpu", "memory", "load", "disk", "filesystem", "network", "paging", "processes")}


def receiver(data: dict[str, Any], sink: Sink | None = None) -> HostMetricsReceiver:
    config = decode(factory.create_default_config(), data)
    assert validate_tree(config) == []
    return factory.create_metrics(settings_for(Kind.RECEIVER, "hostmetrics", Signal.METRICS), config,  # type: ignore[misc]
                                  sink or Sink())


def metrics(request: Any) -> dict[str, Any]:
    return {m.name: m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def points(metric: Any) -> list[tuple[float, dict[str, str]]]:
    data = getattr(metric, metric.WhichOneof("data"))
    return [(p.as_int if p.WhichOneof("value") == "as_int" else p.as_double,
             {kv.key: kv.value.string_value for kv in p.attributes}) for p in data.data_points]


def test_every_system_scraper_reports_semantic_convention_metrics() -> None:
    set_root_path("")
    found = metrics(receiver({"scrapers": ALL}).collect())
    expected = {
        "system.cpu.time": "s", "system.memory.usage": "By", "system.cpu.load_average.1m": "{thread}",
        "system.cpu.load_average.5m": "{thread}", "system.cpu.load_average.15m": "{thread}", "system.disk.io": "By",
        "system.disk.operations": "{operations}", "system.filesystem.usage": "By", "system.network.io": "By",
        "system.network.packets": "{packets}", "system.paging.usage": "By", "system.processes.count": "{processes}",
    }
    assert {name: found[name].unit for name in expected} == expected
    cpu = points(found["system.cpu.time"])
    assert {a["cpu"] for _, a in cpu} == {f"cpu{i}" for i in range(psutil.cpu_count())}
    assert {a["state"] for _, a in cpu} >= {"user", "system", "idle"}
    assert found["system.cpu.time"].sum.is_monotonic
    assert found["system.cpu.time"].sum.data_points[0].start_time_unix_nano == int(psutil.boot_time() * 1e9)
    memory = dict((a["state"], v) for v, a in points(found["system.memory.usage"]))
    assert not found["system.memory.usage"].sum.is_monotonic
    assert abs(memory["used"] - psutil.virtual_memory().used) < 512 * 1024**2
    root = [(v, a) for v, a in points(found["system.filesystem.usage"]) if a["mountpoint"] == "/"]
    stat = os.statvfs("/")
    assert {a["state"] for _, a in root} == {"used", "free", "reserved"}
    assert sum(v for v, _ in root) == stat.f_blocks * stat.f_frsize
    loopback = {a["direction"]: v for v, a in points(found["system.network.io"]) if a["device"] == "lo"}
    assert loopback["receive"] > 0 and set(loopback) == {"receive", "transmit"}
    load = points(found["system.cpu.load_average.1m"])[0][0]
    assert abs(load - os.getloadavg()[0]) < 2
    processes = sum(v for v, _ in points(found["system.processes.count"]))
    assert abs(processes - len(psutil.pids())) < 50


def test_metrics_toggles_and_filters() -> None:
    found = metrics(receiver({"scrapers": {
        "memory": {"metrics": {"system.memory.utilization": {"enabled": True}, "system.memory.usage": {
            "enabled": False}}},
        "network": {"include": {"interfaces": ["lo"]}},
        "disk": {"exclude": {"devices": ["loop.*"], "match_type": "regexp"}},
    }}).collect())
    assert "system.memory.usage" not in found
    assert 0 < sum(v for v, a in points(found["system.memory.utilization"]) if a["state"] == "used") < 1
    assert {a["device"] for _, a in points(found["system.network.io"])} == {"lo"}
    assert not any(a["device"].startswith("loop") for _, a in points(found["system.disk.io"]))


def test_process_scraper_reports_this_process_under_its_own_resource() -> None:
    me = psutil.Process()
    scraper = receiver({"scrapers": {"process": {"include": {"names": [me.name()]}}}})
    before = me.memory_info().rss
    request = scraper.collect()
    after = me.memory_info().rss
    mine = [rm for rm in request.resource_metrics
            if any(kv.key == "process.pid" and kv.value.int_value == os.getpid() for kv in rm.resource.attributes)]
    assert len(mine) == 1
    found = metrics(type(request)(resource_metrics=mine))
    assert {"process.cpu.time", "process.memory.usage", "process.memory.virtual"} <= set(found)
    rss = points(found["process.memory.usage"])[0][0]
    # Bracketed by readings just before and after the scrape: in a full run, threads other tests left behind can
    # move this process's memory by more than any fixed tolerance between two readings.
    assert min(before, after) - 64 * 1024**2 < rss < max(before, after) + 64 * 1024**2
    attributes = {kv.key for kv in mine[0].resource.attributes}
    assert {"process.executable.name", "process.command_line", "process.owner"} <= attributes


def test_root_path_reads_the_hosts_proc(tmp_path: Path) -> None:
    """A root_path with its own proc/: memory and CPU come from there, not from this machine's /proc."""
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 50 kB\n"
                                  "Cached: 200 kB\nShared: 0 kB\nActive: 0 kB\nInactive: 0 kB\nSlab: 10 kB\n"
                                  "SReclaimable: 5 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
    (proc / "stat").write_text("cpu  100 0 50 1000 0 0 0 0 0 0\ncpu0 100 0 50 1000 0 0 0 0 0 0\n"
                               "btime 1700000000\n")
    try:
        found = metrics(receiver({"root_path": str(tmp_path), "scrapers": {"memory": None, "cpu": None}}).collect())
    finally:
        set_root_path("")
    memory = {a["state"]: v for v, a in points(found["system.memory.usage"])}
    assert memory["free"] == 100 * 1024 and memory["cached"] == (200 + 5) * 1024  # psutil adds SReclaimable
    cpu = {a["state"]: v for v, a in points(found["system.cpu.time"]) if a["cpu"] == "cpu0"}
    assert len(points(found["system.cpu.time"])) == len(cpu) and cpu["idle"] == 1000 / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize(("data", "errors"), [
    ({}, ["scrapers: at least one scraper is required: cpu, memory, load, disk, filesystem, network, paging, "
          "processes, process"]),
    ({"scrapers": {"gpu": None}}, ["scrapers::gpu: unknown scraper; valid scrapers are: cpu, memory, load, disk, "
                                   "filesystem, network, paging, processes, process"]),
    ({"scrapers": {"cpu": {"include": {"devices": ["x"]}}}}, ["scrapers::cpu::include: not a setting of the cpu "
                                                              "scraper"]),
    ({"scrapers": {"disk": {"include": {"devices": ["("], "match_type": "regexp"}}}},
     ["scrapers::disk::include::devices::0: invalid regular expression '(': missing ), unterminated subpattern "
      "at position 0"]),
    ({"root_path": "hostfs", "collection_interval": 0, "scrapers": {"load": None}},
     ["collection_interval: must be > 0", "root_path: must be an absolute path, got 'hostfs'"]),
])
def test_invalid_configs(data: dict[str, Any], errors: list[str]) -> None:
    assert validate_tree(decode(factory.create_default_config(), data)) == errors


async def test_collects_every_interval_into_the_pipeline() -> None:
    sink = Sink()
    component = receiver({"collection_interval": "100ms", "initial_delay": "0s", "scrapers": {"load": None}}, sink)
    await component.start(None)
    try:
        for _ in range(50):
            if len(sink.batches[Signal.METRICS]) >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await component.shutdown()
    assert len(sink.batches[Signal.METRICS]) >= 3
    assert socket.gethostname()  # system metrics carry no host identity: resourcedetection adds it
    assert all(not rm.resource.attributes for b in sink.batches[Signal.METRICS] for rm in b.resource_metrics)
