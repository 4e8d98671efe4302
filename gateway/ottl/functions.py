"""OTTL's editors (lower case, change the item) and converters (upper case, return a value).

Each function is a ``Spec``: its parameters, each with the kind of argument it takes, and a ``build`` that gets
the compiled arguments once and returns the closure run per item. Arguments that are patterns or options must be
literals, so regular expressions compile once and a bad one is a config error with its position.

Map editors work on the repeated ``KeyValue`` field in place (``attributes``, a map nested in an attribute, a
kvlist body) or on a dict (``cache``); they never build a dict of all attributes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .paths import Accessor, Ctx, drop_key, item_view
from .values import Time, from_any, set_any, set_attribute

__all__ = ["CONVERTERS", "EDITORS", "Param", "Spec", "glob_regex", "go_regex", "go_replacement", "replacer"]


@dataclass(frozen=True)
class Param:
    name: str
    #: value (any expression), target (a settable path), map (a map path), str/int/bool (a literal),
    #: regex (a literal string, compiled), glob (a literal string), strs (a list literal of strings),
    #: values (a list literal of expressions, or an expression giving a slice)
    kind: str
    optional: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    name: str
    params: tuple[Param, ...]
    build: Callable[..., Callable[..., Any]]
    #: True when the function reads the item itself (not only its arguments), e.g. IsRootSpan.
    reads_item: bool = False
    #: Only in these contexts (empty: all).
    contexts: tuple[str, ...] = ()


def go_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern with Python's ``re``: ``(?<name>...)`` and ``(?P<name>...)`` both name groups."""
    return re.compile(re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern))


_TEMPLATE_PART = re.compile(r"\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def go_replacement(template: str) -> Callable[[re.Match[str]], str]:
    """Go's ``Regexp.Expand`` template (``$1``, ``${1}``, ``$name``, ``$$``) as a ``re.sub`` replacement function."""
    if "$" not in template:
        return lambda match: template
    return _NamedExpand(template).expand


class _NamedExpand:
    """Expands a parsed Go template; group references are ints (numbers) or ``_Group`` (names)."""

    def __init__(self, template: str) -> None:
        self.parts: list[Any] = []
        pos = 0
        for m in _TEMPLATE_PART.finditer(template):
            self.parts.append(template[pos:m.start()])
            if m.group(1) == "$":
                self.parts.append("$")
            else:
                name = m.group(2) or m.group(3)
                self.parts.append(int(name) if name.isdigit() else _Group(name))
            pos = m.end()
        self.parts.append(template[pos:])

    def expand(self, match: re.Match[str]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            key = part if isinstance(part, int) else part.name
            try:
                out.append(match.group(key) or "")
            except (IndexError, re.error):
                out.append("")  # Go expands an unknown group to nothing
        return "".join(out)


@dataclass(frozen=True)
class _Group:
    name: str


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as in the Collector's replace_match (``*``, ``?``, ``[abc]``, ``{a,b}``) → an anchored regex."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "{":
            end = pattern.find("}", i)
            if end > i:
                out.append("(?:" + "|".join(fnmatch.translate(a)[4:-3] for a in pattern[i + 1:end].split(",")) + ")")
                i = end + 1
                continue
        out.append(fnmatch.translate(ch)[4:-3] if ch in "*?[" else re.escape(ch))
        if ch == "[":
            end = pattern.find("]", i)
            if end > i:
                out[-1] = fnmatch.translate(pattern[i:end + 1])[4:-3]
                i = end + 1
                continue
        i += 1
    return re.compile("(?s:" + "".join(out) + r")\Z")


# --- editors -----------------------------------------------------------------------------------------------------

def _set(target: Accessor, value: Callable[[Ctx], Any]) -> Callable[[Ctx], None]:
    put = target.set
    assert put is not None

    def run(ctx: Ctx) -> None:
        put(ctx, value(ctx))
    return run


def _delete_key(target: Accessor, key: str) -> Callable[[Ctx], None]:
    get_map = target.map
    assert get_map is not None
    if target.item_attributes and target.whole:
        def run_viewed(ctx: Ctx) -> None:
            drop_key(item_view(ctx), key)
        return run_viewed

    def run(ctx: Ctx) -> None:
        kvs = get_map(ctx)
        if kvs is None:
            return
        if isinstance(kvs, dict):
            kvs.pop(key, None)
            return
        for i, kv in enumerate(kvs):
            if kv.key == key:
                del kvs[i]
                return
    return run


def _delete_where(target: Accessor, drop: Callable[[str], bool]) -> Callable[[Ctx], None]:
    get_map = target.map
    assert get_map is not None

    def run(ctx: Ctx) -> None:
        kvs = get_map(ctx)
        if kvs is None:
            return
        if isinstance(kvs, dict):
            for k in [k for k in kvs if drop(k)]:
                del kvs[k]
            return
        doomed = [i for i, kv in enumerate(kvs) if drop(kv.key)]
        for i in reversed(doomed):
            del kvs[i]
    return run


def _delete_matching_keys(target: Accessor, pattern: re.Pattern[str]) -> Callable[[Ctx], None]:
    search = pattern.search
    return _delete_where(target, lambda k: search(k) is not None)


def _keep_keys(target: Accessor, keys: list[str]) -> Callable[[Ctx], None]:
    keep = frozenset(keys)
    return _delete_where(target, lambda k: k not in keep)


def _keep_matching_keys(target: Accessor, pattern: re.Pattern[str]) -> Callable[[Ctx], None]:
    search = pattern.search
    return _delete_where(target, lambda k: search(k) is None)


def _limit(target: Accessor, limit: int, priority_keys: list[str] | None) -> Callable[[Ctx], None]:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    priority = list(dict.fromkeys(priority_keys or []))
    if len(priority) > limit:
        raise ValueError(f"{len(priority)} priority keys exceed the limit of {limit}")
    get_map = target.map
    assert get_map is not None

    def run(ctx: Ctx) -> None:
        kvs = get_map(ctx)
        if kvs is None or len(kvs) <= limit:
            return
        keys = list(kvs) if isinstance(kvs, dict) else [kv.key for kv in kvs]
        present = set(keys)
        kept = {k for k in priority if k in present}
        for k in keys:
            if len(kept) >= limit:
                break
            kept.add(k)
        if isinstance(kvs, dict):
            for k in keys:
                if k not in kept:
                    del kvs[k]
            return
        for i in range(len(keys) - 1, -1, -1):
            if keys[i] not in kept:
                del kvs[i]
    return run


def _truncate_all(target: Accessor, limit: int) -> Callable[[Ctx], None]:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    get_map = target.map
    assert get_map is not None
    if target.item_attributes and target.whole:
        def run_viewed(ctx: Ctx) -> None:
            for kv in item_view(ctx)[1]:
                value = kv.value
                # string_value is "" for every other type, so one length test rules them out.
                if len(value.string_value) > limit:
                    value.string_value = value.string_value[:limit]
        return run_viewed

    def run(ctx: Ctx) -> None:
        kvs = get_map(ctx)
        if kvs is None:
            return
        if isinstance(kvs, dict):
            for k, v in kvs.items():
                if isinstance(v, str) and len(v) > limit:
                    kvs[k] = v[:limit]
            return
        for kv in kvs:
            value = kv.value
            # string_value is "" for every other type, so one length test rules them out.
            if len(value.string_value) > limit:
                value.string_value = value.string_value[:limit]
    return run


def _replace_pattern(target: Accessor, pattern: re.Pattern[str], replacement: str,
                     function: str | None, fmt: str | None) -> Callable[[Ctx], None]:
    get, put = target.get, target.set
    assert put is not None
    repl = replacer(replacement, function, fmt)
    sub = pattern.sub

    def run(ctx: Ctx) -> None:
        value = get(ctx)
        if isinstance(value, str):
            new = sub(repl, value)
            if new != value:
                put(ctx, new)
    return run


def replacer(replacement: str, function: str | None, fmt: str | None) -> Callable[[re.Match[str]], str]:
    expand = go_replacement(replacement)
    if function is None:
        return expand
    hasher = _HASHERS.get(function)
    if hasher is None:
        raise ValueError(f"function must be one of {', '.join(sorted(_HASHERS))}, got {function!r}")
    template = fmt or "%s"
    if template.count("%s") != 1:
        raise ValueError(f"replacementFormat must contain %s exactly once, got {template!r}")
    return lambda match: template.replace("%s", str(hasher(expand(match))))


def _replace_all_patterns(target: Accessor, mode: str, pattern: re.Pattern[str], replacement: str,
                          function: str | None, fmt: str | None) -> Callable[[Ctx], None]:
    get_map = target.map
    assert get_map is not None
    repl = replacer(replacement, function, fmt)
    sub = pattern.sub
    search = pattern.search

    def run(ctx: Ctx) -> None:
        kvs = get_map(ctx)
        if kvs is None:
            return
        if isinstance(kvs, dict):
            if mode == "value":
                for k, v in list(kvs.items()):
                    if isinstance(v, str) and search(v):
                        kvs[k] = sub(repl, v)
            else:
                for k in list(kvs):
                    if search(k):
                        kvs[sub(repl, k)] = kvs.pop(k)
            return
        for kv in kvs:
            if mode == "value":
                text = kv.value.string_value
                if text and search(text):
                    kv.value.string_value = sub(repl, text)
            elif search(kv.key):
                kv.key = sub(repl, kv.key)
    return run


def _replace_match(target: Accessor, glob: str, replacement: str) -> Callable[[Ctx], None]:
    matcher = glob_regex(glob).match
    get, put = target.get, target.set
    assert put is not None

    def run(ctx: Ctx) -> None:
        value = get(ctx)
        if isinstance(value, str) and matcher(value):
            put(ctx, replacement)
    return run


def _replace_all_matches(target: Accessor, glob: str, replacement: str) -> Callable[[Ctx], None]:
    matcher = glob_regex(glob).match
    get_map = target.map
    assert get_map is not None

    def run(ctx: Ctx) -> None:
        kvs = get_map(ctx)
        if kvs is None:
            return
        if isinstance(kvs, dict):
            for k, v in kvs.items():
                if isinstance(v, str) and matcher(v):
                    kvs[k] = replacement
            return
        for kv in kvs:
            if kv.value.WhichOneof("value") == "string_value" and matcher(kv.value.string_value):
                kv.value.string_value = replacement
    return run


def _merge_maps(target: Accessor, source: Callable[[Ctx], Any], strategy: str) -> Callable[[Ctx], None]:
    get_map = target.map
    assert get_map is not None

    def run(ctx: Ctx) -> None:
        kvs = get_map(ctx)
        src = source(ctx)
        if kvs is None or not isinstance(src, dict):
            return
        if isinstance(kvs, dict):
            for k, v in src.items():
                if strategy == "upsert" or (strategy == "insert") == (k not in kvs):
                    kvs[k] = v
            return
        index = {kv.key: kv for kv in kvs} if strategy != "upsert" else None
        for k, v in src.items():
            if index is None:
                set_attribute(kvs, k, v)
            elif strategy == "insert" and k not in index:
                set_any(kvs.add(key=k).value, v)
            elif strategy == "update" and k in index:
                set_any(index[k].value, v)
    return run


def _flatten(target: Accessor, prefix: str | None, depth: int | None) -> Callable[[Ctx], None]:
    get_map = target.map
    assert get_map is not None
    max_depth = depth if depth is not None else 1 << 30
    if max_depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")

    def flat(value: Any, key: str, level: int, out: dict[str, Any]) -> None:
        if isinstance(value, dict) and level < max_depth:
            for k, v in value.items():
                flat(v, f"{key}.{k}" if key else k, level + 1, out)
        elif isinstance(value, list) and level < max_depth:
            for i, v in enumerate(value):
                flat(v, f"{key}.{i}" if key else str(i), level + 1, out)
        else:
            out[key] = value

    def run(ctx: Ctx) -> None:
        kvs = get_map(ctx)
        if kvs is None:
            return
        current = dict(kvs) if isinstance(kvs, dict) else {kv.key: from_any(kv.value) for kv in kvs}
        out: dict[str, Any] = {}
        for k, v in current.items():
            flat(v, f"{prefix}.{k}" if prefix else k, 0, out)
        if isinstance(kvs, dict):
            kvs.clear()
            kvs.update(out)
            return
        del kvs[:]
        for k, v in out.items():
            set_any(kvs.add(key=k).value, v)
    return run


# --- converters --------------------------------------------------------------------------------------------------

def _string_like(value: Any) -> str | None:
    """A value as the Collector's StringLikeGetter sees it: strings, numbers, bools, bytes (hex), maps (JSON)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=_json_default)
    if isinstance(value, Time):
        return datetime.fromtimestamp(value.ns / 1e9, UTC).isoformat()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _concat(values: Callable[[Ctx], Any], delimiter: str) -> Callable[[Ctx], Any]:
    def run(ctx: Ctx) -> Any:
        items = values(ctx)
        if not isinstance(items, list):
            raise TypeError(f"Concat needs a list of values, got {type(items).__name__}")
        return delimiter.join("<nil>" if v is None else _string_like(v) or "" for v in items)
    return run


def _split(target: Callable[[Ctx], Any], delimiter: str) -> Callable[[Ctx], Any]:
    def run(ctx: Ctx) -> Any:
        value = _string_like(target(ctx))
        return None if value is None else value.split(delimiter)
    return run


def _parse_json(target: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
    def run(ctx: Ctx) -> Any:
        value = target(ctx)
        if isinstance(value, bytes):
            value = value.decode()
        if not isinstance(value, str):
            raise TypeError(f"ParseJSON needs a string, got {type(value).__name__}")
        parsed = json.loads(value)
        if not isinstance(parsed, dict | list):
            raise ValueError(f"ParseJSON: expected a JSON object or array, got {type(parsed).__name__}")
        return parsed
    return run


def _parse_key_value(target: Callable[[Ctx], Any], delimiter: str | None,
                     pair_delimiter: str | None) -> Callable[[Ctx], Any]:
    kv_sep = "=" if delimiter is None else delimiter
    pair_sep = " " if pair_delimiter is None else pair_delimiter
    if not kv_sep or not pair_sep or kv_sep == pair_sep:
        raise ValueError("delimiter and pair_delimiter must be non-empty and differ")

    def pairs(text: str) -> list[str]:
        out, current, quote, i = [], [], "", 0
        while i < len(text):
            ch = text[i]
            if quote:
                if ch == quote:
                    quote = ""
                current.append(ch)
                i += 1
                continue
            if ch in "\"'":
                quote = ch
                current.append(ch)
                i += 1
                continue
            if text.startswith(pair_sep, i):
                out.append("".join(current))
                current = []
                i += len(pair_sep)
                continue
            current.append(ch)
            i += 1
        if quote:
            raise ValueError(f"ParseKeyValue: unclosed quote in {text[:64]!r}")
        out.append("".join(current))
        return [p for p in out if p.strip()]

    def run(ctx: Ctx) -> Any:
        value = target(ctx)
        if not isinstance(value, str) or not value:
            raise TypeError("ParseKeyValue needs a non-empty string")
        result: dict[str, Any] = {}
        for pair in pairs(value):
            key, sep, val = pair.strip().partition(kv_sep)
            if not sep:
                raise ValueError(f"ParseKeyValue: cannot split {pair!r} into key and value")
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
                val = val[1:-1]
            key = key.strip().strip("\"'")
            result[key] = val
        return result
    return run


def _is_match(target: Callable[[Ctx], Any], pattern: re.Pattern[str]) -> Callable[[Ctx], Any]:
    search = pattern.search

    def run(ctx: Ctx) -> Any:
        value = target(ctx)
        if value is None:
            return False
        if not isinstance(value, str):
            value = _string_like(value)
        return search(value) is not None
    return run


def _is_type(check: Callable[[Any], bool]) -> Callable[..., Callable[[Ctx], Any]]:
    def build(target: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        return lambda ctx: check(target(ctx))
    return build


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                return int(float(value))
            except (ValueError, OverflowError):
                return None
    return None


def _to_double(value: Any) -> Any:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _unary(fn: Callable[[Any], Any]) -> Callable[..., Callable[[Ctx], Any]]:
    def build(target: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        return lambda ctx: fn(target(ctx))
    return build


def _len(value: Any) -> int:
    if isinstance(value, str | bytes | list | dict):
        return len(value)
    raise TypeError(f"Len: unsupported type {type(value).__name__}")


_CAMEL_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def _convert_case(target: Callable[[Ctx], Any], case: str) -> Callable[[Ctx], Any]:
    def convert(text: str) -> str:
        if case == "lower":
            return text.lower()
        if case == "upper":
            return text.upper()
        words = [w for w in _CAMEL_SPLIT.split(text) if w]
        if case == "snake":
            return "_".join(w.lower() for w in words)
        return "".join(w[:1].upper() + w[1:].lower() for w in words)  # camel (Go's strcase.ToCamel)

    def run(ctx: Ctx) -> Any:
        value = target(ctx)
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"ConvertCase needs a string, got {type(value).__name__}")
        return convert(value)
    return run


def _substring(target: Callable[[Ctx], Any], start: Callable[[Ctx], Any],
               length: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
    def run(ctx: Ctx) -> Any:
        value, s, n = target(ctx), start(ctx), length(ctx)
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"Substring needs a string, got {type(value).__name__}")
        if not isinstance(s, int) or not isinstance(n, int) or s < 0 or n <= 0 or s + n > len(value):
            raise ValueError(f"Substring: start {s} and length {n} are out of range for {len(value)} characters")
        return value[s:s + n]
    return run


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _fnv(text: str) -> int:
    # FNV-1a, 64 bit, as a signed int64 (Go's int64(hash.Sum64())).
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h - (1 << 64) if h >= 1 << 63 else h


_HASHERS: dict[str, Callable[[str], Any]] = {"SHA256": _sha256, "SHA1": _sha1, "MD5": _md5, "FNV": _fnv}


def _hash(fn: Callable[[str], Any]) -> Callable[..., Callable[[Ctx], Any]]:
    def build(target: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        def run(ctx: Ctx) -> Any:
            value = _string_like(target(ctx))
            return None if value is None else fn(value)
        return run
    return build


def _now() -> Callable[[Ctx], Any]:
    return lambda ctx: Time(time.time_ns())


def _unix(divisor: int) -> Callable[..., Callable[[Ctx], Any]]:
    def build(target: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        def run(ctx: Ctx) -> Any:
            value = target(ctx)
            if not isinstance(value, Time):
                raise TypeError(f"expected a time, got {type(value).__name__}")
            return value.ns // divisor
        return run
    return build


def _time(target: Callable[[Ctx], Any], fmt: str) -> Callable[[Ctx], Any]:
    if not fmt:
        raise ValueError("format must not be empty")

    def run(ctx: Ctx) -> Any:
        value = target(ctx)
        if not isinstance(value, str):
            raise TypeError(f"Time needs a string, got {type(value).__name__}")
        parsed = datetime.strptime(value, fmt)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        whole = int(parsed.replace(microsecond=0).timestamp())
        return Time(whole * 1_000_000_000 + parsed.microsecond * 1000)
    return run


def _extract_patterns(target: Callable[[Ctx], Any], pattern: re.Pattern[str]) -> Callable[[Ctx], Any]:
    if not pattern.groupindex:
        raise ValueError("the pattern needs at least one named group, e.g. (?P<name>...)")
    search = pattern.search

    def run(ctx: Ctx) -> Any:
        value = target(ctx)
        if not isinstance(value, str):
            raise TypeError(f"ExtractPatterns needs a string, got {type(value).__name__}")
        match = search(value)
        if match is None:
            return {}
        return {k: v for k, v in match.groupdict().items() if v is not None}
    return run


def _is_root_span() -> Callable[[Ctx], Any]:
    return lambda ctx: not ctx.item.parent_span_id


def _id(size: int) -> Callable[..., Callable[[Ctx], Any]]:
    def build(target: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
        def run(ctx: Ctx) -> Any:
            value = target(ctx)
            if isinstance(value, str):
                value = bytes.fromhex(value)
            if not isinstance(value, bytes) or len(value) != size:
                raise ValueError(f"expected {size} bytes, got {value!r}")
            return value
        return run
    return build


V, T, M = "value", "target", "map"
EDITORS: dict[str, Spec] = {s.name: s for s in [
    Spec("set", (Param("target", T), Param("value", V)), _set),
    Spec("delete_key", (Param("target", M), Param("key", "str")), _delete_key),
    Spec("delete_matching_keys", (Param("target", M), Param("pattern", "regex")), _delete_matching_keys),
    Spec("keep_keys", (Param("target", M), Param("keys", "strs")), _keep_keys),
    Spec("keep_matching_keys", (Param("target", M), Param("pattern", "regex")), _keep_matching_keys),
    Spec("limit", (Param("target", M), Param("limit", "int"), Param("priority_keys", "strs", optional=True)),
         _limit),
    Spec("truncate_all", (Param("target", M), Param("limit", "int")), _truncate_all),
    Spec("replace_pattern", (Param("target", T), Param("regex", "regex"), Param("replacement", "str"),
                             Param("function", "func", optional=True),
                             Param("replacementFormat", "str", optional=True)), _replace_pattern),
    Spec("replace_all_patterns", (Param("target", M), Param("mode", "str", choices=("key", "value")),
                                  Param("regex", "regex"), Param("replacement", "str"),
                                  Param("function", "func", optional=True),
                                  Param("replacementFormat", "str", optional=True)), _replace_all_patterns),
    Spec("replace_match", (Param("target", T), Param("pattern", "str"), Param("replacement", "str")),
         _replace_match),
    Spec("replace_all_matches", (Param("target", M), Param("pattern", "str"), Param("replacement", "str")),
         _replace_all_matches),
    Spec("merge_maps", (Param("target", M), Param("source", V),
                        Param("strategy", "str", choices=("insert", "update", "upsert"))), _merge_maps),
    Spec("flatten", (Param("target", M), Param("prefix", "str", optional=True),
                     Param("depth", "int", optional=True)), _flatten),
]}

CONVERTERS: dict[str, Spec] = {s.name: s for s in [
    Spec("Concat", (Param("vals", "values"), Param("delimiter", "str")), _concat),
    Spec("Split", (Param("target", V), Param("delimiter", "str")), _split),
    Spec("ParseJSON", (Param("target", V),), _parse_json),
    Spec("ParseKeyValue", (Param("target", V), Param("delimiter", "str", optional=True),
                           Param("pair_delimiter", "str", optional=True)), _parse_key_value),
    Spec("IsMatch", (Param("target", V), Param("pattern", "regex")), _is_match),
    Spec("IsString", (Param("value", V),), _is_type(lambda v: isinstance(v, str))),
    Spec("IsInt", (Param("value", V),), _is_type(lambda v: isinstance(v, int) and not isinstance(v, bool))),
    Spec("IsDouble", (Param("value", V),), _is_type(lambda v: isinstance(v, float))),
    Spec("IsBool", (Param("value", V),), _is_type(lambda v: isinstance(v, bool))),
    Spec("IsMap", (Param("value", V),), _is_type(lambda v: isinstance(v, dict))),
    Spec("IsList", (Param("value", V),), _is_type(lambda v: isinstance(v, list))),
    Spec("Int", (Param("value", V),), _unary(_to_int)),
    Spec("Double", (Param("value", V),), _unary(_to_double)),
    Spec("String", (Param("value", V),), _unary(lambda v: "" if v is None else _string_like(v))),
    Spec("Len", (Param("target", V),), _unary(_len)),
    Spec("ConvertCase", (Param("target", V), Param("toCase", "str", choices=("lower", "upper", "snake", "camel"))),
         _convert_case),
    Spec("Substring", (Param("target", V), Param("start", V), Param("length", V)), _substring),
    Spec("SHA256", (Param("value", V),), _hash(_sha256)),
    Spec("SHA1", (Param("value", V),), _hash(_sha1)),
    Spec("MD5", (Param("value", V),), _hash(_md5)),
    Spec("FNV", (Param("value", V),), _hash(_fnv)),
    Spec("Now", (), _now, reads_item=True),
    Spec("UnixNano", (Param("time", V),), _unix(1)),
    Spec("UnixMicro", (Param("time", V),), _unix(1000)),
    Spec("UnixMilli", (Param("time", V),), _unix(1_000_000)),
    Spec("UnixSeconds", (Param("time", V),), _unix(1_000_000_000)),
    Spec("Time", (Param("time", V), Param("format", "str")), _time),
    Spec("ExtractPatterns", (Param("target", V), Param("pattern", "regex")), _extract_patterns),
    Spec("IsRootSpan", (), _is_root_span, reads_item=True, contexts=("span",)),
    Spec("SpanID", (Param("bytes", V),), _id(8)),
    Spec("TraceID", (Param("bytes", V),), _id(16)),
]}
