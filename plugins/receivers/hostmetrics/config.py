"""Config of the ``hostmetrics`` receiver, with the Collector's keys (``collection_interval``, ``root_path``,
``scrapers`` and each scraper's filters)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway import ConfigError, Duration

SCRAPERS = ("cpu", "memory", "load", "disk", "filesystem", "network", "paging", "processes", "process")
#: Which filter keys each scraper reads; any other is a config error.
_FILTER_KEYS = {
    "disk": ("include", "exclude"),
    "network": ("include", "exclude"),
    "process": ("include", "exclude"),
    "filesystem": ("include_devices", "exclude_devices", "include_fs_types", "exclude_fs_types",
                   "include_mount_points", "exclude_mount_points"),
}
#: The list each filter of each scraper matches against.
FILTER_LIST = {"disk": "devices", "network": "interfaces", "process": "names", "include_devices": "devices",
               "exclude_devices": "devices", "include_fs_types": "fs_types", "exclude_fs_types": "fs_types",
               "include_mount_points": "mount_points", "exclude_mount_points": "mount_points"}


@dataclass(frozen=True)
class Filter:
    #: disk, filesystem: device names.
    devices: list[str] = field(default_factory=list)
    #: network: interface names.
    interfaces: list[str] = field(default_factory=list)
    #: process: executable names.
    names: list[str] = field(default_factory=list)
    #: filesystem: file system types (ext4, tmpfs...).
    fs_types: list[str] = field(default_factory=list)
    #: filesystem: mount points.
    mount_points: list[str] = field(default_factory=list)
    #: strict (exact names) or regexp (each entry a fully anchored regular expression).
    match_type: str = "strict"

    def validate(self) -> None:
        errors = []
        if self.match_type not in ("strict", "regexp"):
            errors.append(f"match_type: must be strict or regexp, got {self.match_type!r}")
        elif self.match_type == "regexp":
            for key in ("devices", "interfaces", "names", "fs_types", "mount_points"):
                for i, pattern in enumerate(getattr(self, key)):
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        errors.append(f"{key}::{i}: invalid regular expression {pattern!r}: {exc}")
        if errors:
            raise ConfigError(errors)

    def matches(self, key: str, value: str) -> bool:
        items = getattr(self, key)
        if self.match_type == "strict":
            return value in items
        return any(re.fullmatch(pattern, value) for pattern in items)


@dataclass(frozen=True)
class MetricToggle:
    enabled: bool = True


@dataclass(frozen=True)
class ScraperConfig:
    """One scraper's settings. ``cpu:`` with nothing after it enables the scraper with defaults."""

    #: disk, network, process: only these devices, interfaces or process names.
    include: Filter | None = None
    #: disk, network, process: not these.
    exclude: Filter | None = None
    include_devices: Filter | None = None
    exclude_devices: Filter | None = None
    include_fs_types: Filter | None = None
    exclude_fs_types: Filter | None = None
    include_mount_points: Filter | None = None
    exclude_mount_points: Filter | None = None
    #: filesystem: also report virtual file systems (tmpfs, proc, ...). Default false.
    include_virtual_filesystems: bool = False
    #: process: do not log processes whose name, executable, I/O or owner cannot be read. Default false.
    mute_process_name_error: bool = False
    mute_process_exe_error: bool = False
    mute_process_io_error: bool = False
    mute_process_user_error: bool = False
    #: Turn metrics on or off by name: ``{system.cpu.utilization: {enabled: true}}``.
    metrics: dict[str, MetricToggle] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    #: How often every scraper runs. Default 1m.
    collection_interval: Duration = 60.0
    #: Wait before the first collection. Default 1s.
    initial_delay: Duration = 1.0
    #: Where the host's file system is mounted when otelgw runs in a container (``/hostfs``): /proc, /sys and
    #: mount points are read under it. Empty reads this machine's. Process-wide: all hostmetrics receivers of a
    #: gateway must use the same root_path.
    root_path: str = ""
    #: Scrapers to run: cpu, memory, load, disk, filesystem, network, paging, processes, process.
    scrapers: dict[str, ScraperConfig] = field(default_factory=dict)

    def validate(self) -> None:
        errors = []
        if self.collection_interval <= 0:
            errors.append("collection_interval: must be > 0")
        if not self.scrapers:
            errors.append(f"scrapers: at least one scraper is required: {', '.join(SCRAPERS)}")
        if self.root_path and not self.root_path.startswith("/"):
            errors.append(f"root_path: must be an absolute path, got {self.root_path!r}")
        for name, scraper in self.scrapers.items():
            if name not in SCRAPERS:
                errors.append(f"scrapers::{name}: unknown scraper; valid scrapers are: {', '.join(SCRAPERS)}")
                continue
            allowed = _FILTER_KEYS.get(name, ())
            for key in ("include", "exclude", *_FILTER_KEYS["filesystem"]):
                if getattr(scraper, key) is not None and key not in allowed:
                    errors.append(f"scrapers::{name}::{key}: not a setting of the {name} scraper")
        if errors:
            raise ConfigError(errors)
