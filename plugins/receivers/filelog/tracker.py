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
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["FileReader", "Tracker"]

#: Polls a file that vanished is remembered for (by fingerprint), so a rotated file that reappears resumes.
_KNOWN_GENERATIONS = 3
_MAX_KNOWN = 10_000


class FileReader:
    """One file: its fingerprint, how far it has been read and how far that is checkpointed."""

    __slots__ = ("attributes", "committed", "fd", "fingerprint", "offset", "path", "pending", "pending_since")

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
    def __init__(self, include: Iterable[str], exclude: Iterable[str], fingerprint_size: int,
                 max_files: int, exclude_older_than: float = 0.0) -> None:
        self.include = list(include)
        self.exclude = list(exclude)
        self.fingerprint_size = fingerprint_size
        self.max_files = max_files
        self.exclude_older_than = exclude_older_than
        #: Readers of the files found at the previous poll.
        self.active: list[FileReader] = []
        #: Readers of files no longer found, newest generation last, kept to recognise them when they reappear.
        self.known: deque[list[FileReader]] = deque(maxlen=_KNOWN_GENERATIONS)
        self.first_poll = True

    def restore(self, readers: list[FileReader]) -> None:
        self.known.append(readers)

    def all_readers(self) -> list[FileReader]:
        return self.active + [r for generation in self.known for r in generation]

    def paths(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.include:
            found.update(glob.glob(pattern, recursive=True))
        paths = sorted(p for p in found if not any(fnmatch.fnmatchcase(p, x)
                                                   for x in self.exclude))
        if self.exclude_older_than > 0:
            cutoff = time.time() - self.exclude_older_than
            paths = [p for p in paths if _mtime(p) >= cutoff]
        return paths

    def poll(self, start_at_end: bool, on_error: Any) -> tuple[list[FileReader], list[FileReader]]:
        """Open this poll's files and pair them with known readers.

        Returns (readers of files found now, readers of files that disappeared since the last poll; read
        them to their end through their still-open descriptor before they are forgotten).
        """
        candidates = self.active + [r for generation in reversed(self.known) for r in generation]
        claimed: list[bytes] = []
        found: list[FileReader] = []
        for path in self.paths():
            if len(found) >= self.max_files:
                break
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as exc:
                on_error("open", path, exc)
                continue
            try:
                head = os.pread(fd, self.fingerprint_size, 0)
                if not os.path.isfile(path):
                    head = b""
            except OSError as exc:
                on_error("read", path, exc)
                head = b""
            if not head or any(head.startswith(c) or c.startswith(head) for c in claimed):
                os.close(fd)  # empty, or a copy of a file already read in this poll (copytruncate in progress)
                continue
            reader = next((r for r in candidates if head.startswith(r.fingerprint)), None)
            if reader is None:
                size = os.fstat(fd).st_size
                offset = size if (self.first_poll and start_at_end) else 0
                reader = FileReader(path, head, offset)
            else:
                candidates.remove(reader)
                size = os.fstat(fd).st_size
                if size < reader.offset:
                    on_error("truncated", path, None)
                    reader.offset = reader.committed = 0
            reader.close()
            reader.fd = fd
            reader.path = path
            reader.fingerprint = head
            claimed.append(head)
            found.append(reader)
        found_set = set(found)
        lost = [r for r in self.active if r not in found_set]
        generations = [[r for r in g if r not in found_set] for g in self.known] + [lost]
        while sum(len(g) for g in generations) > _MAX_KNOWN and len(generations) > 1:
            generations.pop(0)
        self.known = deque(generations, maxlen=_KNOWN_GENERATIONS)
        self.active = found
        self.first_poll = False
        return found, lost


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
