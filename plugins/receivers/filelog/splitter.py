"""Cutting a block of file bytes into log entries: newline-separated, or multiline by start or end pattern,
with ``max_log_size`` and whitespace trimming. Works on bytes; offsets stay byte-exact for checkpoints."""

from __future__ import annotations

import itertools
import re

__all__ = ["Splitter"]


class Splitter:
    """``split(buf, flush)`` → (entries, bytes consumed, offsets of each entry's start in ``buf``).

    Bytes after the last complete entry are not consumed: the reader keeps them for the next read (or emits them
    when ``flush`` is true). An entry longer than ``max_size`` is cut into pieces of ``max_size``.
    """

    def __init__(self, codec: str, max_size: int, start_pattern: str = "", end_pattern: str = "",
                 omit_pattern: bool = False, preserve_leading: bool = False, preserve_trailing: bool = False) -> None:
        self.codec = codec or "utf-8"
        self.newline = "\n".encode(self.codec)
        self.width = len(self.newline)
        self.max_size = max_size
        self.omit_pattern = omit_pattern
        # the patterns are applied to bytes; for UTF-8 and ASCII they mean the same as on text
        self.start = re.compile(start_pattern.encode(self.codec), re.MULTILINE) if start_pattern else None
        self.end = re.compile(end_pattern.encode(self.codec), re.MULTILINE) if end_pattern else None
        self.trim = _trimmer(preserve_leading, preserve_trailing, self.codec)
        #: Whether callers need each entry's offset (stateful operators do); without, lines split faster.
        self.track_offsets = True

    def split(self, buf: bytes, flush: bool) -> tuple[list[bytes], int, list[int]]:
        if self.start is not None:
            return self._by_start(buf, flush)
        if self.end is not None:
            return self._by_end(buf, flush)
        return self._lines(buf, flush)

    def _lines(self, buf: bytes, flush: bool) -> tuple[list[bytes], int, list[int]]:
        newline = self.newline
        last = buf.rfind(newline) if self.width == 1 else _aligned_rfind(buf, newline, self.width)
        consumed = last + self.width if last >= 0 else 0
        pieces = buf[:last].split(newline) if last >= 0 else []
        if self.width > 1 and pieces:
            pieces = _aligned_split(buf[:last], newline, self.width)
        if flush and consumed < len(buf):
            pieces.append(buf[consumed:])
            consumed = len(buf)
        if consumed == 0 and len(buf) >= self.max_size:
            pieces, consumed = [buf[:self.max_size]], self.max_size
        if not self.track_offsets and len(buf) <= self.max_size and self.width == 1:
            # no entry can be too long, and nobody needs offsets: trim and drop empty ones in C
            return list(filter(None, map(self.trim, pieces))), consumed, []
        offsets = _offsets(pieces, self.width)
        return self._finish(pieces, offsets), consumed, offsets

    def _by_start(self, buf: bytes, flush: bool) -> tuple[list[bytes], int, list[int]]:
        assert self.start is not None
        starts = [m.start() for m in self.start.finditer(buf) if m.end() > m.start() or m.start() < len(buf)]
        pieces: list[bytes] = []
        offsets: list[int] = []
        if starts and starts[0] > 0:
            starts.insert(0, 0)  # text before the first match is an entry of its own
        for a, b in itertools.pairwise(starts):
            pieces.append(buf[a:b])
            offsets.append(a)
        consumed = starts[-1] if len(starts) > 1 else 0
        if flush and consumed < len(buf):
            pieces.append(buf[consumed:])
            offsets.append(consumed)
            consumed = len(buf)
        if consumed == 0 and len(buf) >= self.max_size:
            pieces, consumed, offsets = [buf[:self.max_size]], self.max_size, [0]
        if self.omit_pattern:
            pieces = [self.start.sub(b"", p, count=1) for p in pieces]
        return self._finish(pieces, offsets), consumed, offsets

    def _by_end(self, buf: bytes, flush: bool) -> tuple[list[bytes], int, list[int]]:
        assert self.end is not None
        pieces: list[bytes] = []
        offsets: list[int] = []
        pos = 0
        for match in self.end.finditer(buf):
            if match.end() == match.start():
                continue
            end = match.start() if self.omit_pattern else match.end()
            pieces.append(buf[pos:end])
            offsets.append(pos)
            pos = match.end()
        consumed = pos
        if flush and consumed < len(buf):
            pieces.append(buf[consumed:])
            offsets.append(consumed)
            consumed = len(buf)
        if consumed == 0 and len(buf) >= self.max_size:
            pieces, consumed, offsets = [buf[:self.max_size]], self.max_size, [0]
        return self._finish(pieces, offsets), consumed, offsets

    def _finish(self, pieces: list[bytes], offsets: list[int]) -> list[bytes]:
        """Trim, drop empty entries, cut oversized ones (offsets edited in place to stay parallel)."""
        trim, max_size = self.trim, self.max_size
        out: list[bytes] = []
        kept: list[int] = []
        for piece, offset in zip(pieces, offsets, strict=True):
            if len(piece) > max_size:
                for start in range(0, len(piece), max_size):
                    part = trim(piece[start:start + max_size])
                    if part:
                        out.append(part)
                        kept.append(offset + start)
                continue
            piece = trim(piece)
            if piece:
                out.append(piece)
                kept.append(offset)
        offsets[:] = kept
        return out


def _offsets(pieces: list[bytes], width: int) -> list[int]:
    offsets = []
    pos = 0
    for piece in pieces:
        offsets.append(pos)
        pos += len(piece) + width
    return offsets


def _aligned_rfind(buf: bytes, newline: bytes, width: int) -> int:
    end = len(buf)
    while True:
        index = buf.rfind(newline, 0, end)
        if index < 0 or index % width == 0:
            return index
        end = index + width - 1


def _aligned_split(buf: bytes, newline: bytes, width: int) -> list[bytes]:
    pieces, start, pos = [], 0, 0
    while True:
        index = buf.find(newline, pos)
        if index < 0:
            pieces.append(buf[start:])
            return pieces
        if index % width:
            pos = index + 1
            continue
        pieces.append(buf[start:index])
        start = pos = index + width


def _trimmer(leading: bool, trailing: bool, codec: str):  # type: ignore[no-untyped-def]
    if codec.startswith("utf-16"):
        # whitespace in UTF-16 is two bytes wide: trim after decoding instead (the reader does it)
        return lambda b: b
    if leading and trailing:
        return bytes  # (a copy of) the piece as it is
    if leading:
        return bytes.rstrip
    if trailing:
        return bytes.lstrip
    return bytes.strip
