"""One output file: buffered writes, size-based rotation with lumberjack's backup names, pruning of backups.

A backup of ``/var/otel/traces.json`` is ``/var/otel/traces-2006-01-02T15-04-05.000.json`` (UTC unless
``localtime``), the naming the Collector's file exporter inherits from lumberjack, so existing cleanup scripts
and log shippers keep working. Writes go to Python's buffered file; ``flush`` hands them to the OS without an
fsync, so a write costs a memory copy and the event loop never waits on the disk.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from .config import Config

__all__ = ["FileWriter", "backup_name"]

_MEGABYTE = 1024 * 1024
_STAMP = "%Y-%m-%dT%H-%M-%S"


def backup_name(path: Path, when: datetime) -> Path:
    """``dir/name-2006-01-02T15-04-05.000.ext`` for ``dir/name.ext``."""
    stamp = when.strftime(_STAMP) + f".{when.microsecond // 1000:03d}"
    return path.with_name(f"{path.stem}-{stamp}{path.suffix}")


class FileWriter:
    def __init__(self, config: Config) -> None:
        self.path = Path(config.path)
        self.config = config
        self.rotation = config.rotation
        self._max_bytes = self.rotation.max_megabytes * _MEGABYTE if self.rotation else 0
        self._file: BinaryIO | None = None
        self._size = 0

    @property
    def is_open(self) -> bool:
        return self._file is not None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append = self.config.append or self.rotation is not None
        self._file = open(self.path, "ab" if append else "wb")  # noqa: SIM115 - held open until close()
        self._size = self._file.tell()

    def write(self, record: bytes) -> None:
        """Append one record; rotate first if it would take the file past max_megabytes."""
        if self._file is None:
            raise OSError(f"{self.path} is not open")
        # An oversized record still gets written, alone in a fresh file, rather than refused forever.
        if self._max_bytes and self._size and self._size + len(record) > self._max_bytes:
            self._rotate()
        self._file.write(record)
        self._size += len(record)
        if self.config.flush_interval <= 0:
            self._file.flush()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()  # flushes
            finally:
                self._file = None

    # ------------------------------------------------------------------ rotation

    def _now(self) -> datetime:
        return datetime.now() if self.rotation and self.rotation.localtime else datetime.now(UTC)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        when = self._now()
        target = backup_name(self.path, when)
        while target.exists():  # two rotations in one millisecond must not overwrite a backup
            when += timedelta(milliseconds=1)
            target = backup_name(self.path, when)
        try:
            os.replace(self.path, target)
        finally:
            # Rotated or not, keep a file open so later writes do not fail for want of one.
            self._file = open(self.path, "ab")  # noqa: SIM115
            self._size = self._file.tell()
        self._prune()

    def backups(self) -> list[tuple[datetime, Path]]:
        """Existing backups of this file, newest first."""
        prefix, suffix = f"{self.path.stem}-", self.path.suffix
        found = []
        try:
            entries = list(self.path.parent.iterdir())
        except OSError:
            return []
        for entry in entries:
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(suffix)) or entry == self.path:
                continue
            stamp = name[len(prefix):len(name) - len(suffix)] if suffix else name[len(prefix):]
            try:
                when = datetime.strptime(stamp, _STAMP + ".%f")
            except ValueError:
                continue  # not one of ours
            found.append((when, entry))
        found.sort(reverse=True)
        return found

    def _prune(self) -> None:
        assert self.rotation is not None
        keep, days = self.rotation.max_backups, self.rotation.max_days
        cutoff = self._now().replace(tzinfo=None) - timedelta(days=days)
        for index, (when, path) in enumerate(self.backups()):
            if (keep and index >= keep) or (days and when < cutoff):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
