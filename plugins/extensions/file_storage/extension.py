"""The file_storage extension: a directory that exporters' persistent sending queues live in."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import ComponentSettings, Host

from .config import Config

__all__ = ["FileStorage"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class FileStorage:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.directory = Path(config.directory)

    async def start(self, host: Host) -> None:
        if self.config.create_directory:
            self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        if not self.directory.is_dir():
            raise OSError(f"file_storage directory {self.directory} does not exist")

    async def shutdown(self) -> None:
        """Queues close their own files when their exporters stop."""

    def queue_directory(self, owner: str) -> tuple[Path, bool]:
        """The directory for one owner's queue (``exporter_otlp_traces``), and whether to fsync."""
        return self.directory / _UNSAFE.sub("_", owner), self.config.fsync
