"""Config of the ``filelog`` receiver, key for key the Collector's."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any

from gateway import ComponentID, ConfigError, Duration

from .operators.config import Operator, parse_byte_size, yaml_messages
from .operators.pipeline import check_operators

__all__ = ["ENCODINGS", "Config", "MultilineConfig"]

#: The Collector's encodings (nop: bytes body, no decoding), as Python codecs.
ENCODINGS = {"nop": "", "utf-8": "utf-8", "utf8": "utf-8", "utf-8-raw": "utf-8", "utf-16le": "utf-16-le",
             "utf-16be": "utf-16-be", "ascii": "ascii", "us-ascii": "ascii", "big5": "big5",
             "shift-jis": "shift_jis", "shift_jis": "shift_jis", "latin1": "latin-1", "iso-8859-1": "latin-1",
             "gbk": "gbk"}


@dataclass(frozen=True)
class MultilineConfig:
    #: A log entry starts where this regex matches (at a line start).
    line_start_pattern: str = ""
    #: A log entry ends where this regex matches.
    line_end_pattern: str = ""
    #: Drop the matched pattern from the entry. Default false.
    omit_pattern: bool = False

    def validate(self) -> None:
        if bool(self.line_start_pattern) == bool(self.line_end_pattern):
            raise ConfigError("line_start_pattern: exactly one of line_start_pattern and line_end_pattern is required")
        pattern = self.line_start_pattern or self.line_end_pattern
        key = "line_start_pattern" if self.line_start_pattern else "line_end_pattern"
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{key}: invalid regular expression: {exc}") from None


@dataclass(frozen=True)
class Config:
    #: Glob patterns (``**`` crosses directories) of the files to read (required).
    include: list[str] = field(default_factory=list)
    #: Glob patterns of files not to read, applied to what include matched.
    exclude: list[str] = field(default_factory=list)
    #: Skip files not modified for this long; 0 is off.
    exclude_older_than: Duration = 0.0
    #: Where to start in files found at the first poll: beginning or end (default). Files that appear later are
    #: always read from their beginning, and a file with a checkpoint resumes at it.
    start_at: str = "end"
    #: How often to look for files and new data. Default 200ms.
    poll_interval: Duration = 0.2
    #: Bytes at the start of a file that identify it (its fingerprint). Default 1kb (1000 bytes).
    fingerprint_size: Any = "1kb"
    #: Longest log entry; a longer one is cut into pieces of this size. Default 1MiB.
    max_log_size: Any = "1MiB"
    #: Most files read in one poll (the oldest-named first). Default 1024.
    max_concurrent_files: int = 1024
    #: utf-8 (default), utf-8-raw, utf-16le, utf-16be, ascii, big5, shift-jis, latin1, or nop (bytes body).
    encoding: str = "utf-8"
    #: Attribute log.file.name with the file's name. Default true.
    include_file_name: bool = True
    #: Attribute log.file.path with the file's path. Default false.
    include_file_path: bool = False
    #: Attribute log.file.name_resolved (symlinks followed). Default false.
    include_file_name_resolved: bool = False
    #: Attribute log.file.path_resolved (symlinks followed). Default false.
    include_file_path_resolved: bool = False
    #: Entries spanning lines: line_start_pattern or line_end_pattern.
    multiline: MultilineConfig | None = None
    #: Emit a last entry without its newline (or multiline end) once its file has not grown for this long.
    #: Default 500ms.
    force_flush_period: Duration = 0.5
    #: Keep whitespace at the start of each entry. Default false.
    preserve_leading_whitespaces: bool = False
    #: Keep whitespace at the end of each entry. Default false.
    preserve_trailing_whitespaces: bool = False
    #: Delete each file once read to its end (needs start_at: beginning). Default false.
    delete_after_read: bool = False
    #: Id of a file_storage extension that keeps the read offsets across restarts.
    storage: str | None = None
    #: Attributes added to every entry.
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Resource attributes added to every entry.
    resource: dict[str, Any] = field(default_factory=dict)
    #: stanza operators, in order (see README).
    operators: tuple[Operator, ...] = ()

    def validate(self) -> None:
        errors: list[str] = []
        if not self.include:
            errors.append("include: at least one glob pattern is required")
        if self.start_at not in ("beginning", "end"):
            errors.append(f"start_at: must be beginning or end, got {self.start_at!r}")
        if self.delete_after_read and self.start_at != "beginning":
            errors.append("delete_after_read: needs start_at: beginning (otherwise unread data would be deleted)")
        if self.poll_interval <= 0:
            errors.append("poll_interval: must be > 0")
        for key, minimum in (("fingerprint_size", 16), ("max_log_size", 1)):
            try:
                if parse_byte_size(getattr(self, key)) < minimum:
                    errors.append(f"{key}: must be at least {minimum} bytes, got {getattr(self, key)!r}")
            except ValueError as exc:
                errors.append(f"{key}: {exc}")
        if self.max_concurrent_files < 1:
            errors.append(f"max_concurrent_files: must be >= 1, got {self.max_concurrent_files}")
        if self.encoding.lower() not in ENCODINGS:
            errors.append(f"encoding: must be one of {', '.join(sorted(ENCODINGS))}, got {self.encoding!r}")
        elif ENCODINGS[self.encoding.lower()]:
            codecs.lookup(ENCODINGS[self.encoding.lower()])
        if self.storage:
            try:
                ComponentID.parse(self.storage)
            except ValueError as exc:
                errors.append(f"storage: {exc}")
        decoded = [op for op in self.operators if op is not None]  # the others were reported by the decoder
        if len(decoded) == len(self.operators):  # ids and outputs only make sense for the whole list
            errors.extend(f"operators::{m}" for m in yaml_messages(check_operators(decoded)))
        if errors:
            raise ConfigError(errors)

    @property
    def fingerprint_bytes(self) -> int:
        return parse_byte_size(self.fingerprint_size)

    @property
    def max_log_bytes(self) -> int:
        return parse_byte_size(self.max_log_size)

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding.lower()]
