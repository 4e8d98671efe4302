"""The disk, filesystem and network scrapers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

import psutil

from .builder import Metrics
from .config import ScraperConfig

__all__ = ["scrape_disk", "scrape_filesystem", "scrape_network"]


def _wanted(config: ScraperConfig, key: str, value: str, include: str = "include", exclude: str = "exclude") -> bool:
    included, excluded = getattr(config, include), getattr(config, exclude)
    if included is not None and not included.matches(key, value):
        return False
    return not (excluded is not None and excluded.matches(key, value))


def scrape_disk(metrics: Metrics, config: ScraperConfig) -> None:
    disks = {name: io for name, io in (psutil.disk_io_counters(perdisk=True) or {}).items()
             if _wanted(config, "devices", name)}
    def directions(read: str, write: str, scale: float = 1.0) -> Iterator[tuple[float, dict[str, str]]]:
        for device, io in disks.items():
            yield getattr(io, read) * scale, {"device": device, "direction": "read"}
            yield getattr(io, write) * scale, {"device": device, "direction": "write"}

    metrics.sum("system.disk.io", "By", "Disk bytes transferred.", directions("read_bytes", "write_bytes"),
                monotonic=True)
    metrics.sum("system.disk.operations", "{operations}", "Disk operations count.",
                directions("read_count", "write_count"), monotonic=True)
    metrics.sum("system.disk.operation_time", "s", "Time spent in disk operations.",
                directions("read_time", "write_time", 1e-3), monotonic=True, as_int=False)
    if disks and hasattr(next(iter(disks.values())), "busy_time"):
        metrics.sum("system.disk.io_time", "s", "Time disk spent activated.",
                    ((io.busy_time / 1000, {"device": d}) for d, io in disks.items()), monotonic=True, as_int=False)
    if disks and hasattr(next(iter(disks.values())), "read_merged_count"):
        metrics.sum("system.disk.merged", "{operations}", "The number of disk reads/writes merged into single "
                    "physical disk access operations.", directions("read_merged_count", "write_merged_count"),
                    monotonic=True)


class _Partition(NamedTuple):
    device: str
    mountpoint: str
    fstype: str
    opts: str


def _partitions(root_path: str, virtual: bool) -> list[_Partition]:
    if not root_path:
        return [_Partition(p.device, p.mountpoint, p.fstype, p.opts) for p in psutil.disk_partitions(all=virtual)]
    # psutil reads <procfs>/self/mounts, which inside a container is the container's own mount table; the host's
    # is the one of its init process. Reading that needs ptrace access to it (a container without CAP_SYS_PTRACE
    # has none): then the container's own table is used, whose mounts under root_path are the host's.
    partitions = []
    try:
        with open(os.path.join(root_path, "proc/1/mounts")) as mounts:
            lines = mounts.read().splitlines()
    except OSError:
        prefix = root_path.rstrip("/")
        return [_Partition(p.device, p.mountpoint[len(prefix):] or "/", p.fstype, p.opts)
                for p in psutil.disk_partitions(all=virtual)
                if p.mountpoint == prefix or p.mountpoint.startswith(prefix + "/")]
    for line in lines:
        fields = line.split()
        if len(fields) >= 4:
            device, mountpoint, fstype, opts = (f.replace("\\040", " ") for f in fields[:4])
            if virtual or device.startswith("/"):
                partitions.append(_Partition(device, mountpoint, fstype, opts))
    return partitions


def scrape_filesystem(metrics: Metrics, config: ScraperConfig, root_path: str) -> None:
    usage_points: list[tuple[float, dict[str, str]]] = []
    inode_points: list[tuple[float, dict[str, str]]] = []
    utilization: list[tuple[float, dict[str, str]]] = []
    for part in _partitions(root_path, config.include_virtual_filesystems):
        if not (_wanted(config, "devices", part.device, "include_devices", "exclude_devices")
                and _wanted(config, "fs_types", part.fstype, "include_fs_types", "exclude_fs_types")
                and _wanted(config, "mount_points", part.mountpoint, "include_mount_points", "exclude_mount_points")):
            continue
        try:
            # statvfs gives free vs available (the difference is reserved for root); psutil's disk_usage does not.
            stat = os.statvfs(os.path.join(root_path or "/", part.mountpoint.lstrip("/")))
        except OSError:
            continue  # unmounted meanwhile, or not readable: the Collector skips it too
        attrs = {"device": part.device, "mode": "ro" if "ro" in part.opts.split(",") else "rw",
                 "mountpoint": part.mountpoint, "type": part.fstype}
        total = stat.f_blocks * stat.f_frsize
        free = stat.f_bavail * stat.f_frsize
        reserved = (stat.f_bfree - stat.f_bavail) * stat.f_frsize
        used = total - stat.f_bfree * stat.f_frsize
        usage_points += [(used, {**attrs, "state": "used"}), (free, {**attrs, "state": "free"}),
                         (reserved, {**attrs, "state": "reserved"})]
        inode_points += [(stat.f_files - stat.f_ffree, {**attrs, "state": "used"}),
                         (stat.f_ffree, {**attrs, "state": "free"})]
        if total:
            utilization.append((used / total, attrs))
    metrics.sum("system.filesystem.usage", "By", "Filesystem bytes used.", usage_points, monotonic=False)
    metrics.sum("system.filesystem.inodes.usage", "{inodes}", "FileSystem inodes used.", inode_points,
                monotonic=False)
    metrics.gauge("system.filesystem.utilization", "1", "Fraction of filesystem bytes used.", utilization,
                  default=False)


def scrape_network(metrics: Metrics, config: ScraperConfig) -> None:
    nics = {name: io for name, io in psutil.net_io_counters(pernic=True).items()
            if _wanted(config, "interfaces", name)}

    def directions(receive: str, transmit: str) -> Iterator[tuple[float, dict[str, str]]]:
        for device, io in nics.items():
            yield getattr(io, receive), {"device": device, "direction": "receive"}
            yield getattr(io, transmit), {"device": device, "direction": "transmit"}

    metrics.sum("system.network.io", "By", "The number of bytes transmitted and received.",
                directions("bytes_recv", "bytes_sent"), monotonic=True)
    metrics.sum("system.network.packets", "{packets}", "The number of packets transferred.",
                directions("packets_recv", "packets_sent"), monotonic=True)
    metrics.sum("system.network.errors", "{errors}", "The number of errors encountered.",
                directions("errin", "errout"), monotonic=True)
    metrics.sum("system.network.dropped", "{packets}", "The number of packets dropped.",
                directions("dropin", "dropout"), monotonic=True)
    if metrics.on("system.network.connections"):
        try:
            states: dict[str, int] = {}
            for conn in psutil.net_connections(kind="tcp"):
                states[conn.status] = states.get(conn.status, 0) + 1
        except (psutil.AccessDenied, OSError):
            return
        metrics.sum("system.network.connections", "{connections}", "The number of connections.",
                    ((n, {"protocol": "tcp", "state": s}) for s, n in sorted(states.items())), monotonic=False)
