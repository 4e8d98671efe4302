"""Read offsets on disk, in the directory a ``file_storage`` extension gives this receiver: one JSON file,
replaced atomically (write, fsync if asked, rename) after every delivered batch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .tracker import FileReader

__all__ = ["Checkpoint"]

_FILE = "offsets.json"


class Checkpoint:
    def __init__(self, directory: Path, fsync: bool) -> None:
        self.directory = directory
        self.fsync = fsync
        self._last: bytes = b""

    def load(self) -> list[FileReader]:
        path = self.directory / _FILE
        try:
            data: Any = json.loads(path.read_bytes())
            return [FileReader.from_json(item) for item in data.get("files", [])]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"checkpoint {path} is unreadable ({exc}); move it away to start over") from None

    def save(self, readers: list[FileReader]) -> None:
        payload = json.dumps({"version": 1, "files": [r.to_json() for r in readers]}).encode()
        if payload == self._last:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / (_FILE + ".tmp")
        with open(tmp, "wb") as out:
            out.write(payload)
            if self.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, self.directory / _FILE)
        self._last = payload
