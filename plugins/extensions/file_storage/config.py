"""Config of the ``file_storage`` extension, with the Collector's key names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway import ConfigError, Duration


@dataclass(frozen=True)
class Config:
    #: Directory that holds the persistent queues (one subdirectory per exporter and signal). Must exist
    #: unless create_directory is true. Default /var/lib/otelgw/file_storage.
    directory: str = "/var/lib/otelgw/file_storage"
    #: Create the directory (mode 0750) at start when it is missing. Default false, as in the Collector.
    create_directory: bool = False
    #: fsync after every write: nothing accepted is lost even on power loss, at the cost of one disk flush per
    #: request. false (default) survives a crash of the process (SIGKILL, OOM kill) but not of the machine.
    fsync: bool = False
    #: Accepted for Collector compatibility (how long to wait for the file lock); a queue held by another
    #: process fails at start instead. Default 1s.
    timeout: Duration = 1.0

    def validate(self) -> None:
        if not self.directory:
            raise ConfigError("directory: must not be empty")
        if not self.create_directory and not Path(self.directory).is_dir():
            raise ConfigError(f"directory: {self.directory!r} does not exist or is not a directory "
                              f"(set create_directory: true to create it)")
