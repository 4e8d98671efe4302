"""Timestamps and severities as stanza parses them: the ``timestamp:`` and ``severity:`` blocks and the
``time_parser`` / ``severity_parser`` operators.

RFC 3339 / ISO 8601 values (what JSON loggers and container runtimes write) take an exact fast path with
nanoseconds; other layouts go through ``datetime.strptime``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
from typing import Any

__all__ = ["SECONDS_CACHE", "SeverityMapper", "TimeParseError", "TimeParser", "parse_rfc3339"]

_NS = 1_000_000_000


class TimeParseError(ValueError):
    """A value that does not match the layout."""


_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(Z|z|[+-]\d{2}:?\d{2})?")


def _days_from_civil(y: int, m: int, d: int) -> int:
    # days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


#: "YYYY-MM-DDTHH:MM:SS" → Unix seconds (as if UTC): lines of one second share it, so most values only need
#: their fraction and zone read.
SECONDS_CACHE: dict[str, int] = {}
_SCALE = [10 ** (9 - n) for n in range(10)]


def parse_rfc3339(text: str, default_offset_s: int | None = 0) -> int | None:
    """Unix nanoseconds of an ISO 8601 timestamp, or None when ``text`` is not one.

    A value without a zone is taken at ``default_offset_s`` (None: refuse it).
    """
    base = SECONDS_CACHE.get(text[:19])
    if base is not None:
        rest = text[19:]
        if rest == "Z":
            return base * _NS
        if rest[-1:] == "Z" and rest[:1] == "." and 1 < len(rest) <= 11 and rest[1:-1].isdigit():
            return base * _NS + int(rest[1:-1]) * _SCALE[len(rest) - 2]
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    y, mo, d, h, mi, s, frac, zone = match.groups()
    month, day, hour, minute, second = int(mo), int(d), int(h), int(mi), int(s)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    if zone is None:
        if default_offset_s is None:
            return None
        offset = default_offset_s
    elif zone in ("Z", "z"):
        offset = 0
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    wall = _days_from_civil(int(y), month, day) * 86400 + hour * 3600 + minute * 60 + second
    if len(SECONDS_CACHE) >= 65536:
        SECONDS_CACHE.clear()
    SECONDS_CACHE[text[:19]] = wall
    seconds = wall - offset
    nanos = int(frac.ljust(9, "0")) if frac else 0
    return seconds * _NS + nanos


# Go's reference-time tokens, longest first, as strptime directives.
_GO_TOKENS = [
    ("January", "%B"), ("Monday", "%A"), ("Z07:00", "%z"), ("-07:00", "%z"), ("Z0700", "%z"), ("-0700", "%z"),
    ("2006", "%Y"), ("Jan", "%b"), ("Mon", "%a"), ("MST", "%Z"), ("-07", "%z"), (".000000000", ".%f"),
    (".000000", ".%f"), (".000", ".%f"), (".999999999", ".%f"), (".999999", ".%f"), (".999", ".%f"),
    (",000000000", ",%f"), (",000000", ",%f"), (",000", ",%f"),
    ("15", "%H"), ("06", "%y"), ("01", "%m"), ("02", "%d"), ("_2", "%d"), ("03", "%I"), ("04", "%M"),
    ("05", "%S"), ("PM", "%p"), ("pm", "%p"), ("1", "%m"), ("2", "%d"), ("3", "%I"), ("4", "%M"), ("5", "%S"),
]


def go_layout_to_strptime(layout: str) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(layout):
        for token, directive in _GO_TOKENS:
            if layout.startswith(token, pos):
                out.append(directive)
                pos += len(token)
                break
        else:
            char = layout[pos]
            out.append("%%" if char == "%" else char)
            pos += 1
    return "".join(out)


# stanza's strptime directives that Python spells differently
_STANZA_DIRECTIVES = {"%L": "%f", "%s": "%f", "%q": "%m", "%g": "%d", "%e": "%d", "%l": "%I", "%P": "%p",
                      "%D": "%m/%d/%y", "%F": "%Y-%m-%d", "%T": "%H:%M:%S", "%i": "%H", "%h": "%b"}
_DIRECTIVE = re.compile(r"%.")
_ISO_LAYOUT = re.compile(r"%Y-%m-%d[T ]%H:%M:%S(\.%f)?(Z|%z|%Ez)?")
_FRACTION = re.compile(r"([.,]\d{6})\d+")
_EPOCH_DIVISORS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": _NS,
                   "s.ms": 1, "s.us": 1, "s.ns": 1}


class TimeParser:
    """``layout_type`` strptime (default), gotime or epoch; ``location`` for values without a zone."""

    def __init__(self, layout_type: str, layout: str, location: str | None) -> None:
        self.layout_type = layout_type
        self.layout = layout
        self._zone: dt.tzinfo | None = zoneinfo.ZoneInfo(location) if location else None
        if layout_type == "epoch":
            if layout not in _EPOCH_DIVISORS:
                raise ValueError(f"epoch layout must be one of {', '.join(_EPOCH_DIVISORS)}, got {layout!r}")
            self._format = ""
        else:
            fmt = go_layout_to_strptime(layout) if layout_type == "gotime" else \
                _DIRECTIVE.sub(lambda m: _STANZA_DIRECTIVES.get(m.group(0), m.group(0)), layout)
            self._format = fmt
        self._iso = layout_type != "epoch" and _ISO_LAYOUT.fullmatch(self._format) is not None

    @property
    def rfc3339(self) -> bool:
        """Whether ``parse`` of a string tries ``parse_rfc3339(value, None)`` first (an ISO 8601 layout)."""
        return self._iso

    def _default_offset(self, seconds_hint: float | None = None) -> int:
        moment = dt.datetime.now(dt.UTC) if seconds_hint is None else dt.datetime.fromtimestamp(seconds_hint, dt.UTC)
        if self._zone is not None:
            offset = moment.astimezone(self._zone).utcoffset()
        else:
            offset = dt.timedelta(seconds=-time.altzone if time.localtime().tm_isdst > 0 else -time.timezone)
        return int(offset.total_seconds()) if offset is not None else 0

    def parse(self, value: Any) -> int:
        """Unix nanoseconds; raises TimeParseError."""
        if self._iso and type(value) is str:
            nanos = parse_rfc3339(value, None)
            if nanos is not None:
                return nanos
        if self.layout_type == "epoch":
            return self._epoch(value)
        if not isinstance(value, str):
            raise TimeParseError(f"expected a string to parse as a timestamp, got {type(value).__name__}")
        if self._iso:
            nanos = parse_rfc3339(value, None)
            if nanos is None:  # no zone in the value (or not ISO at all): the location's offset applies
                nanos = parse_rfc3339(value, self._default_offset())
            if nanos is not None:
                return nanos
        try:
            moment = dt.datetime.strptime(_FRACTION.sub(r"\1", value), self._format)
        except ValueError as exc:
            raise TimeParseError(f"{value!r} does not match layout {self.layout!r}: {exc}") from None
        if moment.tzinfo is None:
            # no zone in the value: the location's, else local time (the Collector's default location)
            moment = moment.replace(tzinfo=self._zone) if self._zone is not None else moment.astimezone()
        if moment.year == 1900 and "%Y" not in self._format and "%y" not in self._format:
            moment = moment.replace(year=dt.datetime.now(moment.tzinfo).year)  # syslog-style: no year
        return int(moment.timestamp()) * _NS + moment.microsecond * 1000

    def _epoch(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TimeParseError(f"expected a number to parse as epoch {self.layout}, got {type(value).__name__}")
        scale = _NS // _EPOCH_DIVISORS[self.layout]  # nanoseconds per unit of the layout
        if isinstance(value, int):
            return value * scale
        if isinstance(value, float):
            return round(value * scale)
        # a string is read exactly (a float would lose the last digits of nanoseconds)
        whole, _, fraction = value.strip().partition(".")
        if not whole.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
            raise TimeParseError(f"{value!r} is not an epoch timestamp")
        nanos = abs(int(whole)) * scale + (int(fraction) * scale // 10 ** len(fraction) if fraction else 0)
        return -nanos if whole.startswith("-") else nanos


_SEVERITY_NAMES = ["default"] + [f"{level}{n if n > 1 else ''}" for level in
                                 ("trace", "debug", "info", "warn", "error", "fatal") for n in (1, 2, 3, 4)]
#: The OpenTelemetry short names (``INFO3``) that overwrite_text writes.
SHORT_NAMES = [name.upper() if name != "default" else "" for name in _SEVERITY_NAMES]
SEVERITY_NUMBERS = {name: i for i, name in enumerate(_SEVERITY_NAMES)}


def _builtin(preset: str) -> dict[str, int]:
    if preset == "none":
        return {}
    mapping = {name: i for i, name in enumerate(_SEVERITY_NAMES) if i} | {str(i): i for i in range(1, 25)}
    if preset == "default":
        for n, suffix in enumerate(("", "2", "3", "4")):
            mapping["warning" + suffix] = 13 + n
            mapping["err" + suffix] = 17 + n
    return mapping


_HTTP_RANGES = {"2xx": (200, 299), "3xx": (300, 399), "4xx": (400, 499), "5xx": (500, 599)}


def _values(raw: Any) -> list[str]:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} cannot be mapped to a severity")
    if isinstance(raw, int):
        return [str(raw)]
    if isinstance(raw, str):
        if raw in _HTTP_RANGES:
            low, high = _HTTP_RANGES[raw]
            return [str(i) for i in range(low, high + 1)]
        return [raw.lower()]
    if isinstance(raw, dict) and set(raw) == {"min", "max"} and all(isinstance(raw[k], int) for k in raw):
        low, high = sorted((raw["min"], raw["max"]))
        if high - low > 100_000:
            raise ValueError(f"range {low}..{high} is too wide (at most 100000 values)")
        return [str(i) for i in range(low, high + 1)]
    raise ValueError(f"{raw!r} cannot be mapped to a severity: use a string, a number, a list, "
                     f"2xx..5xx or {{min: N, max: M}}")


class SeverityMapper:
    """Value → severity number, from a ``preset`` (default, otel/aliases, none) and a ``mapping``."""

    def __init__(self, preset: str, mapping: dict[str, Any], overwrite_text: bool) -> None:
        if preset not in ("default", "otel", "aliases", "none"):
            raise ValueError(f"preset must be default, otel, aliases or none, got {preset!r}")
        self.map = _builtin(preset)
        for level, raw in mapping.items():
            number = SEVERITY_NUMBERS.get(str(level).lower())
            if number is None:
                raise ValueError(f"mapping: {level!r} is not a severity (trace, debug2, info, warn, error, fatal4 ...)")
            for item in (raw if isinstance(raw, list) else [raw]):
                for value in _values(item):
                    self.map[value] = number
        self.overwrite_text = overwrite_text

    def number(self, value: Any) -> int:
        """The severity number of ``value``; 0 (default) when it maps to none."""
        if type(value) is str:
            return self.map.get(value.lower(), 0)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return self.map.get(value.lower() if isinstance(value, str) else str(value), 0)

    def text(self, value: Any, number: int) -> str:
        if self.overwrite_text:
            return SHORT_NAMES[number]
        return value if type(value) is str else str(value)
