"""Which files to read and where: files are known by fingerprint (their first bytes), not by name, so a file
renamed by rotation keeps its offset, a copy made by copytruncate resumes where the original was left, and a
truncated or new file starts from its beginning."""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import glob
import os
import time
from collections.abc import Iterable
from stat import S_ISREG
from typing import Any

__all__ = ["FileReader", "Tracker"]

#: Polls a file that vanished is remembered for (by fingerprint), so a rotated file that reappears resumes.
_KNOWN_GENERATIONS = 3
_MAX_KNOWN = 10_000


class FileReader:
    """One file: its fingerprint, how far it has been read and how far that is checkpointed."""

    __slots__ = ("attributes", "committed", "fd", "fingerprint", "missing", "offset", "path", "pending",
                 "pending_since")

    def __init__(self, path: str, fingerprint: bytes, offset: int) -> None:
        self.path = path
        self.fingerprint = fingerprint
        #: Next byte to read (entries before it were handed to the pipeline).
        self.offset = offset
        #: Offset known to be delivered downstream; what the checkpoint stores and a failure rewinds to.
        self.committed = offset
        self.fd: int | None = None
        #: Encoded per-file attributes (log.file.name, ...), set by the receiver.
        self.attributes = b""
        #: Bytes at the end of the file without their newline, and since when they have been waiting.
        self.pending = 0
        self.pending_since = 0.0
        #: Polls since the file was last seen (it is forgotten after a few).
        self.missing = 0

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": base64.b64encode(self.fingerprint).decode(), "offset": self.committed,
                "path": self.path}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileReader:
        return cls(str(data["path"]), base64.b64decode(data["fingerprint"]), int(data["offset"]))

    def __repr__(self) -> str:
        return f"FileReader({self.path!r}, offset={self.offset}, committed={self.committed})"


class Tracker:
    """Every file known by fingerprint (bounded), and the ones open since the last poll."""

    def __init__(self, include: Iterable[str], exclude: Iterable[str], fingerprint_size: int,
                 max_files: int, exclude_older_than: float = 0.0) -> None:
        self.include = list(include)
        self.exclude = list(exclude)
        self.fingerprint_size = fingerprint_size
        self.max_files = max_files
        self.exclude_older_than = exclude_older_than
        #: Every file known: found at a recent poll, or restored from the checkpoint.
        self.readers: list[FileReader] = []
        #: Readers whose file is open since the last poll.
        self.active: list[FileReader] = []
        #: Where the next poll's window starts when more files match than max_concurrent_files.
        self._window = 0
        self.first_poll = True

    def restore(self, readers: list[FileReader]) -> None:
        self.readers.extend(readers)

    def all_readers(self) -> list[FileReader]:
        return self.readers

    def paths(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.include:
            found.update(glob.glob(pattern, recursive=True))
        paths = sorted(p for p in found if not any(fnmatch.fnmatchcase(p, x) for x in self.exclude))
        if self.exclude_older_than > 0:
            cutoff = time.time() - self.exclude_older_than
            paths = [p for p in paths if _mtime(p) >= cutoff]
        return paths

    def _window_of(self, paths: list[str]) -> list[str]:
        """This poll's files: all of them, or the next max_concurrent_files in turn, so none starves."""
        if len(paths) <= self.max_files:
            return paths
        start = self._window % len(paths)
        self._window = start + self.max_files
        return (paths[start:] + paths[:start])[:self.max_files]

    def poll(self, start_at_end: bool, on_error: Any) -> tuple[list[FileReader], list[FileReader]]:
        """Open this poll's files and pair them with known readers by fingerprint.

        Returns (readers of the files found now, readers of files renamed away or deleted since the last poll:
        read them to their end through their still-open descriptor, then close them).
        """
        paths = self.paths()
        window = self._window_of(paths)
        index = _Index(self.readers)
        claimed = _Index([])
        taken: set[FileReader] = set()
        found: list[FileReader] = []
        for path in window:
            opened = self._open(path, on_error)
            if opened is None:
                continue
            fd, head, size = opened
            if claimed.overlaps(head):
                os.close(fd)  # a copy of a file already taken in this poll (copytruncate in progress)
                continue
            reader = index.match(head, taken)
            if reader is None:
                reader = FileReader(path, head, size if (self.first_poll and start_at_end) else 0)
                self.readers.append(reader)
            elif size < reader.offset:
                on_error("truncated", path, None)
                reader.offset = reader.committed = 0
            if reader.fd is not None:
                reader.close()
            reader.fd, reader.path, reader.fingerprint, reader.missing = fd, path, head, 0
            taken.add(reader)
            claimed.add(head)
            found.append(reader)
        lost = self._lost(taken, set(window), set(paths))
        self._age(taken, set(paths))
        self.active = found
        self.first_poll = False
        return found, lost

    def _open(self, path: str, on_error: Any) -> tuple[int, bytes, int] | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            on_error("open", path, exc)
            return None
        try:
            stat = os.fstat(fd)
            if not S_ISREG(stat.st_mode):
                os.close(fd)
                return None
            head = os.pread(fd, self.fingerprint_size, 0)
        except OSError as exc:
            on_error("read", path, exc)
            os.close(fd)
            return None
        if not head:
            os.close(fd)  # empty: nothing to identify it by yet
            return None
        return fd, head, stat.st_size

    def _lost(self, taken: set[FileReader], window: set[str], paths: set[str]) -> list[FileReader]:
        lost = []
        for reader in self.active:
            if reader in taken:
                continue
            if reader.path in paths and reader.path not in window:
                reader.close()  # still there, outside this poll's window: nothing lost, it is read in turn
            else:
                lost.append(reader)  # renamed away or deleted (or replaced by a new file of that name)
        return lost

    def _age(self, taken: set[FileReader], paths: set[str]) -> None:
        keep = []
        for reader in self.readers:
            if reader not in taken and reader.path not in paths:
                reader.missing += 1
            if reader.missing <= _KNOWN_GENERATIONS or reader.fd is not None:
                keep.append(reader)
        if len(keep) > _MAX_KNOWN:
            keep.sort(key=lambda r: r.missing)
            keep = keep[:_MAX_KNOWN]
        self.readers = keep


#: Fingerprints are indexed by their first bytes; shorter ones are searched one by one.
_KEY = 16


class _Index:
    def __init__(self, readers: Iterable[FileReader]) -> None:
        self.long: dict[bytes, list[Any]] = {}
        self.short: list[Any] = []
        for reader in readers:
            self._put(reader.fingerprint, reader)

    def _put(self, fingerprint: bytes, item: Any) -> None:
        if len(fingerprint) >= _KEY:
            self.long.setdefault(fingerprint[:_KEY], []).append(item)
        else:
            self.short.append(item)

    def add(self, head: bytes) -> None:
        self._put(head, head)

    def match(self, head: bytes, taken: set[FileReader]) -> FileReader | None:
        """A known reader whose fingerprint the file starts with."""
        for reader in (*self.long.get(head[:_KEY], ()), *self.short):
            if reader not in taken and head.startswith(reader.fingerprint):
                return reader  # type: ignore[no-any-return]
        return None

    def overlaps(self, head: bytes) -> bool:
        """Whether a head already taken starts with ``head`` or ``head`` starts with it."""
        candidates = self.long.get(head[:_KEY], []) if len(head) >= _KEY else \
            [h for bucket in self.long.values() for h in bucket]
        return any(head.startswith(h) or h.startswith(head) for h in (*candidates, *self.short))


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
