from __future__ import annotations

from dataclasses import dataclass

from gateway import ConfigError, Duration


@dataclass(frozen=True)
class Rotation:
    #: Size in megabytes (MiB, as lumberjack counts) a file may reach before it is rotated.
    max_megabytes: int = 100
    #: Delete backups whose file-name timestamp is older than this many days. 0 = keep regardless of age.
    max_days: int = 0
    #: Keep at most this many backups, newest first. 0 = keep all (max_days may still delete them).
    max_backups: int = 100
    #: Timestamps in backup names in local time instead of UTC.
    localtime: bool = False

    def validate(self) -> None:
        errors = []
        if self.max_megabytes <= 0:
            errors.append("max_megabytes: must be > 0")
        if self.max_days < 0:
            errors.append("max_days: must be >= 0")
        if self.max_backups < 0:
            errors.append("max_backups: must be >= 0")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config:
    #: File to write to (required). Parent directories are created.
    path: str = ""
    #: json: one OTLP/JSON export request per line. proto: 4-byte big-endian length, then the binary request.
    format: str = "json"
    #: Rotate the file by size and prune old copies. Absent = one file that grows without bound.
    rotation: Rotation | None = None
    #: How often buffered writes are flushed to the OS (no fsync). 0 = flush after every request.
    flush_interval: Duration = 1.0
    #: Without rotation: append to an existing file instead of truncating it at start. With rotation the
    #: file is always appended to (and rotated when full), as the Collector's lumberjack writer does.
    append: bool = False

    def validate(self) -> None:
        errors = []
        if not self.path.strip():
            errors.append("path: is required")
        if self.format not in ("json", "proto"):
            errors.append(f"format: must be json or proto, got {self.format!r}")
        if errors:
            raise ConfigError(errors)
