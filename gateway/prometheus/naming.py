"""OTLP → Prometheus names and label values (docs/protocols.md §5.1 and §5.3), as the Collector's translator does them.

Names are split into tokens on every character that is not an ASCII letter or digit, the UCUM unit (and its
``/per`` part) is appended as a word unless the name already holds it, monotonic sums get ``_total`` and gauges with
unit ``1`` get ``_ratio``. Results are cached: a gateway sees the same few hundred metric names over and over.
"""

from __future__ import annotations

import base64
import json
import math
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = [
    "PER_UNITS",
    "UNITS",
    "any_value_raw",
    "any_value_str",
    "format_float",
    "label_name",
    "metric_name",
    "unit_word",
]

#: UCUM unit → the Prometheus word appended to the name (contrib's map; ``1`` adds nothing).
UNITS: dict[str, str] = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
    "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "B": "bytes", "KB": "kilobytes", "MB": "megabytes", "GB": "gigabytes", "TB": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent", "$": "dollars",
}
#: The ``/x`` part of a unit: ``By/s`` → ``bytes_per_second``.
PER_UNITS: dict[str, str] = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
                             "y": "year"}

_NOT_ALNUM = re.compile(r"[^a-zA-Z0-9]+")
_FORBIDDEN = re.compile(r"[^a-zA-Z0-9_:]+")
_LABEL_FORBIDDEN = re.compile(r"[^a-zA-Z0-9]")


def _tokens(text: str) -> list[str]:
    return [t for t in _NOT_ALNUM.split(text) if t]


def _unit_words(unit: str) -> tuple[str, str]:
    """(main, per) words of a UCUM unit: ``By/s`` → ("bytes", "second"); ``{packet}`` and ``1`` → ("", "")."""
    main, _, per = unit.partition("/")
    main, per = main.strip(), per.strip()
    main_word = per_word = ""
    if main and "{" not in main and "}" not in main:
        main_word = "_".join(_tokens(UNITS.get(main, main)))
    if per and "{" not in per and "}" not in per:
        per_word = "_".join(_tokens(PER_UNITS.get(per, per)))
    return main_word, per_word


def unit_word(unit: str) -> str:
    """The Prometheus form of a UCUM unit: ``ms`` → ``milliseconds``, ``By/s`` → ``bytes_per_second``."""
    main, per = _unit_words(unit)
    return "_".join(w for w in (main, "per" if per else "", per) if w)


@lru_cache(maxsize=4096)
def metric_name(name: str, unit: str = "", *, counter: bool = False, ratio_gauge: bool = False,
                namespace: str = "", add_suffixes: bool = True) -> str:
    """The Prometheus metric name of an OTLP metric (before any ``_bucket``/``_sum``/``_count`` suffix).

    ``counter`` is true for monotonic sums (``_total``), ``ratio_gauge`` for gauges (``_ratio`` when unit is 1).
    A unit word already among the name's words is not added again (``memory_bytes`` in ``By`` stays as it is).
    """
    if not add_suffixes:
        cleaned = "_".join(t for t in _FORBIDDEN.split(name) if t)
        if namespace:
            cleaned = f"{namespace}_{cleaned}"
        return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned
    tokens = _tokens(name)
    main, per = _unit_words(unit)
    if main and main not in tokens:
        tokens.append(main)
    if per and per not in tokens:
        tokens += ["per", per]
    if counter:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if ratio_gauge and unit == "1":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    if namespace:
        tokens.insert(0, namespace)
    result = "_".join(tokens)
    return f"_{result}" if result[:1].isdigit() else result


@lru_cache(maxsize=8192)
def label_name(key: str) -> str:
    """An attribute key as a label name: non-alphanumerics become ``_``; a leading digit or lone ``_`` gets ``key``."""
    if not key:
        return key
    name = _LABEL_FORBIDDEN.sub("_", key)
    if name[0].isdigit():
        return "key_" + name
    if name.startswith("_") and not name.startswith("__"):
        return "key" + name
    return name


def format_float(value: float) -> str:
    """Shortest round-trip decimal without exponent, as Go's ``FormatFloat(v, 'f', -1, 64)``: 0.005, 10, +Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def any_value_raw(value: AnyValue) -> Any:
    """An AnyValue as the plain Python value it holds (bytes as base64 text, for JSON)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_raw(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value_raw(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)


def any_value_str(value: AnyValue) -> str:
    """An attribute value as label text: bool true/false, numbers as JSON, bytes base64, arrays and maps JSON."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return format_float(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return json.dumps(any_value_raw(value), separators=(",", ":"), ensure_ascii=False, allow_nan=True)
