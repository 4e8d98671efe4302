"""Decode YAML mappings into frozen config dataclasses, and validate them, collecting every error with its path.

A component's ``Config`` is a frozen dataclass whose field names are the YAML keys. Decoding overlays the YAML onto
the factory's default config, so omitted keys keep their defaults; unknown keys are rejected with the valid ones
listed. Durations are written as the Collector writes them (``5s``, ``200ms``, ``1m30s``) and held as float seconds;
a bare number in YAML is read as the Collector reads it, in nanoseconds, with a warning naming the key.
"""

from __future__ import annotations

import dataclasses
import enum
import keyword
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union

from gateway._host.confmap import EnvString
from gateway._host.redact import is_secret_key
from gateway.errors import ConfigError

__all__ = ["Duration", "FilePath", "Tagged", "TaggedBlock", "decode", "decode_and_validate", "optional_sections",
           "parse_duration", "raise_if", "tagged_block", "validate_tree"]


class _DurationMarker:
    def __repr__(self) -> str:
        return "duration"


class _FileMarker:
    def __repr__(self) -> str:
        return "file path"


#: A field naming a file the component reads at run time (a certificate, a token, an htpasswd list). ``validate``
#: never opens it, so a CI job validates configs whose secrets are mounted only at run time; ``otelgw run``
#: checks every one at start and names the component, key and path.
FilePath = Annotated[str, _FileMarker()]

#: A field holding a duration in seconds, written in YAML as ``30s``, ``200ms``, ``1h``, ``30d`` (a day is 24 h, a
#: superset of Go's units so SLO periods read naturally), or a number of seconds.
Duration = Annotated[float, _DurationMarker()]

_T = TypeVar("_T")


@dataclass(frozen=True)
class TaggedBlock:
    """A tagged union as the Collector writes one: the value of the ``tag`` field picks the config type, and the
    settings sit under a key named after that value (``{name: slow, type: latency, latency: {threshold_ms: 500}}``).
    Put on the field that holds the decoded settings with :func:`tagged_block`. Since the keys are values, a
    Python keyword (``and``) needs no renaming."""

    tag: str
    #: type name -> config dataclass; a function, so the types may be defined after the union (recursion).
    variants: Callable[[], Mapping[str, type]]


@dataclass(frozen=True)
class Tagged:
    """A tagged union whose settings sit beside the tag (stanza's operators: ``{type: regex_parser, regex: ...}``):
    the ``tag`` key's value picks the dataclass the whole mapping decodes into (the tag is one of its fields).
    Used as ``Annotated[OperatorConfig, Tagged("type", lambda: OPERATOR_TYPES)]``."""

    tag: str
    #: type name -> config dataclass; a function, so the types may be defined after the union.
    variants: Callable[[], Mapping[str, type]]


def tagged_block(tag: str, variants: Callable[[], Mapping[str, type]]) -> dict[str, Any]:
    """Field metadata for a :class:`TaggedBlock`: ``settings: Any = field(default=None, metadata=tagged_block(
    "type", lambda: {"latency": LatencyConfig, ...}))``."""
    return {"tagged_block": TaggedBlock(tag, variants)}


def optional_sections(cls: type[_T]) -> type[_T]:
    """Class decorator for a mapping of optional sections, as the Collector's optional config blocks: a section
    the YAML lists is on (``grpc:`` alone: with its defaults), one it does not list is off (None), whatever the
    default config had. The otlp receiver's ``protocols`` is one."""
    cls.__optional_sections__ = True  # type: ignore[attr-defined]
    return cls


def raise_if(errors: list[str]) -> None:
    """``validate()``'s last line: raise every message at once, or nothing when there is none."""
    if errors:
        raise ConfigError(errors)


#: Warnings of the decode in progress (:func:`decode`'s ``warnings``); None when nobody listens.
_WARNINGS: ContextVar[list[str] | None] = ContextVar("config_warnings", default=None)

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """``"1m30s"`` → 90.0. Plain numbers are seconds. Raises ValueError with a readable message."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '5s' or '200ms', got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
        if not math.isfinite(seconds):  # YAML .nan / .inf: every comparison with NaN is false, so catch it here
            raise ValueError(f"duration must be a finite number, got {value!r}")
        if seconds < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return seconds
    text = str(value).strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"expected a duration such as '5s', '200ms' or '1m30s', got {value!r}")
    if not math.isfinite(total):  # hundreds of digits overflow to inf
        raise ValueError(f"duration is too large, got {value!r}")
    return total


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return repr(typing.get_args(tp)[1])
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return "mapping" if dataclasses.is_dataclass(tp) else getattr(tp, "__name__", str(tp))


def _join(path: str, key: Any) -> str:
    return f"{path}::{key}" if path else str(key)


def _wants_string(tp: Any) -> bool:
    """True when a field of type ``tp`` takes a string as it is (str, an Optional str, a Literal of strings)."""
    origin = typing.get_origin(tp)
    if tp is str:
        return True
    if origin is Annotated:
        return not isinstance(typing.get_args(tp)[1], _DurationMarker) and _wants_string(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return any(_wants_string(a) for a in typing.get_args(tp))
    return origin is Literal and any(isinstance(a, str) for a in typing.get_args(tp))


def _decode_value(tp: Any, value: Any, default: Any, path: str, errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(value, EnvString):
        # A whole-scalar ${env:...}: the string as written for a string field, its YAML reading otherwise.
        value = str(value) if _wants_string(tp) else value.typed
    if tp is Any:
        return value
    if origin is Annotated:
        if isinstance(args[1], Tagged):
            return _decode_tagged(args[1], value, default, path, errors)
        if isinstance(args[1], _DurationMarker):
            try:
                if isinstance(value, int | float) and not isinstance(value, bool) and value != 0:
                    # Go's time.Duration decodes a number as nanoseconds; so does otelgw, and says so.
                    seconds = parse_duration(value) / 1e9
                    warnings = _WARNINGS.get()
                    if warnings is not None:
                        warnings.append(f"{path}: the bare number {value!r} is read as the Collector reads it, "
                                        f"in nanoseconds; write it with a unit ('{value}ns', '{value}s')")
                    return seconds
                return parse_duration(value)
            except ValueError as exc:
                errors.append(f"{path}: {exc}")
                return default
        return _decode_value(args[0], value, default, path, errors)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            inner_default = default if default is not None else None
            return _decode_value(options[0], value, inner_default, path, errors)
        for option in options:
            trial: list[str] = []
            result = _decode_value(option, value, default, path, trial)
            if not trial:
                return result
        errors.append(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
        return default
    if origin is Literal:
        if value in args:
            return value
        errors.append(f"{path}: must be one of {', '.join(repr(a) for a in args)}, got {value!r}")
        return default
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        base = default if dataclasses.is_dataclass(default) else None
        if getattr(tp, "__optional_sections__", False):
            # the sections the YAML lists replace the default ones: start from none
            return _decode_dataclass(tp, None, {} if value is None else value, path, errors)
        if value is None:
            return base if base is not None else _decode_dataclass(tp, None, {}, path, errors)
        return _decode_dataclass(tp, base, value, path, errors)
    if origin in (list, tuple) or tp in (list, tuple):
        if value is None:
            value = []
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__} {value!r}")
            return default
        item_tp = args[0] if args else Any
        items = [_decode_value(item_tp, item, None, _join(path, i), errors) for i, item in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, Mapping) or tp is dict:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
            return default
        val_tp = args[1] if len(args) == 2 else Any
        base_map = default if isinstance(default, Mapping) else {}
        return {
            str(k): _decode_value(val_tp, v, base_map.get(str(k)), _join(path, k), errors) for k, v in value.items()
        }
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            errors.append(f"{path}: must be one of {', '.join(repr(m.value) for m in tp)}, got {value!r}")
            return default
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an int too large for a float
                number = math.inf
            if math.isfinite(number):
                return number
            # NaN passes every `< 0` check in validate() and inf breaks arithmetic, so neither gets that far.
            errors.append(f"{path}: must be a finite number, got {value!r}")
            return default
    elif tp is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    errors.append(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return default


def _decode_dataclass(cls: type, base: Any, data: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(data, Mapping):
        errors.append(f"{path or '<root>'}: expected a mapping, got {type(data).__name__} {data!r}")
        return base if base is not None else cls()
    hints = typing.get_type_hints(cls, include_extras=True)
    # A YAML key that is a Python keyword (Prometheus' ``global``) is held by a field with a trailing underscore.
    fields = {_yaml_key(f.name): f for f in dataclasses.fields(cls) if f.init and "tagged_block" not in f.metadata}
    by_name = {f.name: f for f in fields.values()}  # ``global_`` is accepted too, for callers that rename keys
    values: dict[str, Any] = {}
    variants: Mapping[str, type] = {}
    for union in (f for f in dataclasses.fields(cls) if "tagged_block" in f.metadata):
        variants = union.metadata["tagged_block"].variants()
        data = _decode_tagged_block(union, data, base, path, errors, values)
    for key, raw in data.items():
        if key not in fields and key in by_name:
            key = _yaml_key(key)
        if key not in fields:
            valid = ", ".join([*sorted(fields), *sorted(variants)]) or "(none)"
            errors.append(f"{_join(path, key)}: unknown key; valid keys are: {valid}")
            continue
        name = fields[key].name
        if raw is None and getattr(cls, "__optional_sections__", False):
            raw = {}  # a section listed without settings is on, with its defaults
        current = getattr(base, name) if base is not None else _field_default(fields[key])
        before = len(errors)
        values[name] = _decode_value(hints[name], raw, current, _join(path, key), errors)
        if len(errors) > before and (not fields[key].repr or is_secret_key((*path.split("::"), key))):
            # a secret (declared with field(repr=False)) is never echoed, not even in an error message
            errors[before:] = [_hide(message, raw) for message in errors[before:]]
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except ConfigError as exc:  # a config whose own construction checks what it was given
        errors.extend(exc.prefixed(path).messages)
    except (TypeError, ValueError) as exc:
        errors.append(f"{path or '<root>'}: {exc}")
    return base


def _decode_tagged(spec: Tagged, value: Any, default: Any, path: str, errors: list[str]) -> Any:
    variants = spec.variants()
    if not isinstance(value, Mapping):
        errors.append(f"{path}: expected a mapping with {spec.tag}, got {type(value).__name__} {value!r}")
        return default
    chosen = _chosen(spec.tag, variants, value, path, errors)
    return default if chosen is None else _decode_dataclass(variants[chosen], None, value, path, errors)


def _chosen(tag: str, variants: Mapping[str, type], data: Mapping[str, Any], path: str,
            errors: list[str]) -> str | None:
    """The variant the tag names, or None after reporting a tag that names none."""
    chosen = data.get(tag)
    if isinstance(chosen, str) and chosen in variants:
        return str(chosen)
    got = "missing" if chosen is None else f"got {chosen!r}"
    errors.append(f"{_join(path, tag)}: must be one of {', '.join(sorted(variants))}; {got}")
    return None


def _decode_tagged_block(union: dataclasses.Field[Any], data: Mapping[str, Any], base: Any, path: str,
                         errors: list[str], values: dict[str, Any]) -> dict[str, Any]:
    """Decode the block the tag picks into ``values[union.name]``; return the keys left for the other fields."""
    spec: TaggedBlock = union.metadata["tagged_block"]
    variants = spec.variants()
    chosen = _chosen(spec.tag, variants, data, path, errors)
    if chosen is not None:
        current = getattr(base, union.name, None)
        default = current if type(current) is variants[chosen] else None
        values[union.name] = _decode_value(variants[chosen], data.get(chosen), default, _join(path, chosen), errors)
        for key in data:
            if key in variants and key != chosen:
                errors.append(f"{_join(path, key)}: not used when {spec.tag} is {chosen!r}")
    # a block of a type not allowed here (``composite`` under ``and``) was reported with the tag already
    given = data.get(spec.tag)
    return {key: value for key, value in data.items()
            if key not in variants and not (isinstance(given, str) and key == given)}


def _hide(message: str, raw: Any) -> str:
    head, got, _ = message.partition(", got ")  # the decoder's messages end with the value they got
    if got:
        return f"{head}, got <hidden>"
    for shown in {repr(raw), str(raw)}:
        if shown:
            message = message.replace(shown, "<hidden>")
    return message


def _yaml_key(name: str) -> str:
    bare = name.removesuffix("_")
    return bare if keyword.iskeyword(bare) else name


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def decode(default: Any, data: Mapping[str, Any] | None, warnings: list[str] | None = None) -> Any:
    """Overlay ``data`` onto the ``default`` config dataclass; raise ``ConfigError`` with every problem found.

    Paths in messages are relative to the component (``timeout: expected ...``); the caller prefixes its own.
    What is accepted with a caveat (a duration without a unit) is appended to ``warnings`` when it is given.
    A default that is not a dataclass (a component with free-form config) gets ``data`` as it is.
    """
    config, errors = decode_and_validate(default, data, warnings, validate=False)
    if errors:
        raise ConfigError(errors)
    return config


def decode_and_validate(default: Any, data: Any, warnings: list[str] | None = None, *,
                        validate: bool = True) -> tuple[Any, list[str]]:
    """Decode as :func:`decode` does, then run every ``validate()`` even where some fields had the wrong type
    (those keep their defaults, and their checks are not repeated): every error comes back at once, and
    nothing is raised. Returns the config (partly defaults when there are errors) and the messages."""
    if not dataclasses.is_dataclass(default):
        return (data if data is not None else default), []
    errors: list[str] = []
    token = _WARNINGS.set(warnings)
    try:
        result = _decode_dataclass(type(default), default, data if data is not None else {}, "", errors)
    finally:
        _WARNINGS.reset(token)
    if result is None:
        return default, errors
    if validate:
        failed = {message.partition(": ")[0] for message in errors}

        def repeats(message: str) -> bool:
            key = message.partition(": ")[0]
            return any(key == path or key.startswith(f"{path}::") for path in failed)

        errors.extend(message for message in validate_tree(result) if not repeats(message))
    return result, errors


def validate_tree(config: Any, path: str = "") -> list[str]:
    """Run ``validate()`` on ``config`` and on every dataclass nested in it; return all messages with paths."""
    errors: list[str] = []
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        for field in dataclasses.fields(config):
            union = field.metadata.get("tagged_block")
            # a tagged block's settings sit under the key its tag names (``latency``), not the field's name
            key = getattr(config, union.tag) if union is not None else _yaml_key(field.name)
            errors.extend(validate_tree(getattr(config, field.name), _join(path, key)))
        validate = getattr(config, "validate", None)
        if callable(validate):
            try:
                validate()
            except ConfigError as exc:
                errors.extend(exc.prefixed(path).messages)
            except Exception as exc:  # a check that trips over a malformed value: still an error, not a crash
                errors.append(f"{path or '<root>'}: invalid value ({type(exc).__name__}: {exc})")
    elif isinstance(config, list | tuple):
        for i, item in enumerate(config):
            errors.extend(validate_tree(item, _join(path, i)))
    elif isinstance(config, Mapping):
        for key, item in config.items():
            errors.extend(validate_tree(item, _join(path, key)))
    return errors
