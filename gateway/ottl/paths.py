"""Paths: what ``name``, ``attributes["k"]``, ``resource.attributes["k"]`` ... mean in each OTTL context.

A path resolves, once at compile time, to an ``Accessor``: a getter closure, a setter closure (None when
read-only), a map closure when the path is a map that editors change in place (a repeated ``KeyValue`` field or
the cache dict), and the level it reads (``resource``, ``scope`` or ``item``), which decides whether a condition can
run once per envelope instead of once per item.

Every closure takes the evaluation context ``Ctx``: the resource, scope, item (span, span event, metric, data
point, log record), the item's parent (the span of an event, the metric of a data point) and the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from .values import Time, find, from_any, set_any, set_attribute, to_dict

__all__ = ["CONTEXTS", "Accessor", "Ctx", "PathError", "drop_key", "item_view", "resolve"]

#: Every context, and what its items are.
CONTEXTS = ("resource", "scope", "span", "spanevent", "metric", "datapoint", "log")

#: The parent context an item's own paths can name (``span.name`` from a span event).
_PARENTS = {"spanevent": "span", "datapoint": "metric"}


class PathError(ValueError):
    """A path that does not exist in the context, or is used in a way it does not support."""


class Ctx:
    """What one evaluation sees. Reused across items of an envelope: only ``item`` (and ``cache``) change."""

    __slots__ = ("cache", "context", "item", "parent", "resource", "scope", "view")

    def __init__(self, context: str, resource: Any = None, scope: Any = None, item: Any = None,
                 parent: Any = None) -> None:
        self.context = context
        self.resource = resource
        self.scope = scope
        self.item = item
        self.parent = parent
        self.cache: dict[str, Any] = {}
        #: The item's attributes as (repeated field, KeyValue list, key list), built on first use per item and
        #: kept in step by the editors that change them (see ``item_view``); None when not built or stale.
        self.view: tuple[Any, list[Any], list[str]] | None = None


def item_view(ctx: Ctx) -> tuple[Any, list[Any], list[str]]:
    """The item's attributes, their KeyValue wrappers and their keys, built once per item.

    Reading a KeyValue through upb builds a Python wrapper each time; holding them in a list keeps them alive
    for every later statement on the same item, and the key list makes a lookup one C-level ``list.index``.
    """
    view = ctx.view
    if view is None:
        attributes = ctx.item.attributes
        kvs = attributes[:]
        view = ctx.view = (attributes, kvs, [kv.key for kv in kvs])
    return view


def drop_key(view: tuple[Any, list[Any], list[str]], key: str) -> None:
    """Delete the first attribute ``key`` from an attribute view (the repeated field, its elements, their keys: the
    OTLP classes' ``item_view`` or the bytes' ``wire.wire_view``), keeping the three in step."""
    field, elements, keys = view
    if key in keys:
        i = keys.index(key)
        del field[i]
        del elements[i]
        del keys[i]


Getter = Callable[[Ctx], Any]
Setter = Callable[[Ctx, Any], None]


@dataclass(frozen=True)
class Accessor:
    get: Getter
    set: Setter | None
    #: For map paths: the repeated KeyValue field (or dict) to edit in place; None when the path is no map.
    map: Getter | None
    level: str  # "resource", "scope", "item" or "cache"
    text: str
    #: The path is the item's own ``attributes`` (whole, or one key): editors may use and keep ``item_view``.
    item_attributes: bool = False
    #: The path is a whole map (``attributes``, ``cache``), not one of its keys.
    whole: bool = False


# --- conversions between fields and OTTL values -------------------------------------------------------------------

def _time_get(ns: int) -> Time:
    return Time(ns)


def _time_in(value: Any) -> int:
    if isinstance(value, Time):
        return value.ns
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected a time, got {type(value).__name__}")


def _int_in(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"expected an int, got {type(value).__name__}")


def _str_in(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _bytes_in(size: int) -> Callable[[Any], bytes]:
    def convert(value: Any) -> bytes:
        if isinstance(value, bytes) and len(value) == size:
            return value
        raise TypeError(f"expected {size} bytes, got {value!r}")
    return convert


def _hex_in(size: int) -> Callable[[Any], bytes]:
    def convert(value: Any) -> bytes:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
        if len(raw) != size:
            raise TypeError(f"expected {size * 2} hex digits, got {value!r}")
        return raw
    return convert


# A field: (getter of the message, converter of a value to set, or None when read-only).
_Field = tuple[Callable[[Any], Any], Callable[[Any, Any], None] | None]


#: Getters of plain scalar fields, by identity: an item-level read of one becomes one C-level ``attrgetter``.
_PLAIN: dict[Callable[[Any], Any], str] = {}


def _plain(name: str, convert: Callable[[Any], Any]) -> _Field:
    get = attrgetter(name)
    _PLAIN[get] = name

    def put(msg: Any, value: Any) -> None:
        setattr(msg, name, convert(value))
    return get, put


def _time(name: str) -> _Field:
    def get(msg: Any) -> Any:
        return Time(getattr(msg, name))

    def put(msg: Any, value: Any) -> None:
        setattr(msg, name, _time_in(value))
    return get, put


def _id(name: str, size: int, hex_string: bool) -> _Field:
    convert = _hex_in(size) if hex_string else _bytes_in(size)

    def get(msg: Any) -> Any:
        raw = getattr(msg, name)
        return raw.hex() if hex_string else raw

    def put(msg: Any, value: Any) -> None:
        setattr(msg, name, convert(value))
    return get, put


def _read_only(get: Callable[[Any], Any]) -> _Field:
    return get, None


def _status_code_put(msg: Any, value: Any) -> None:
    msg.status.code = _int_in(value)


def _status_message_put(msg: Any, value: Any) -> None:
    msg.status.message = _str_in(value)


def _body_put(msg: Any, value: Any) -> None:
    set_any(msg.body, value)


def _number_value(kind: str) -> _Field:
    def get(msg: Any) -> Any:
        return getattr(msg, kind) if msg.WhichOneof("value") == kind else (0.0 if kind == "as_double" else 0)

    def put(msg: Any, value: Any) -> None:
        if kind == "as_double":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"expected a double, got {type(value).__name__}")
            msg.as_double = float(value)
        else:
            msg.as_int = _int_in(value)
    return get, put


def _metric_type(msg: Any) -> int:
    # METRIC_DATA_TYPE_*: the data oneof's position, 0 when unset.
    return {None: 0, "gauge": 1, "sum": 2, "histogram": 3, "exponential_histogram": 4, "summary": 5}[
        msg.WhichOneof("data")]


def _metric_data(msg: Any) -> Any:
    kind = msg.WhichOneof("data")
    return getattr(msg, kind) if kind is not None else None


def _temporality_put(msg: Any, value: Any) -> None:
    data = _metric_data(msg)
    if data is not None and hasattr(data, "aggregation_temporality"):
        data.aggregation_temporality = _int_in(value)


def _monotonic_put(msg: Any, value: Any) -> None:
    if msg.WhichOneof("data") == "sum":
        if not isinstance(value, bool):
            raise TypeError(f"expected a bool, got {type(value).__name__}")
        msg.sum.is_monotonic = value


_RESOURCE: dict[str, _Field] = {
    "dropped_attributes_count": _plain("dropped_attributes_count", _int_in),
}
_SCOPE: dict[str, _Field] = {
    "name": _plain("name", _str_in),
    "version": _plain("version", _str_in),
    "dropped_attributes_count": _plain("dropped_attributes_count", _int_in),
}
_SPAN: dict[str, _Field] = {
    "trace_id": _id("trace_id", 16, False),
    "trace_id.string": _id("trace_id", 16, True),
    "span_id": _id("span_id", 8, False),
    "span_id.string": _id("span_id", 8, True),
    "parent_span_id": _id("parent_span_id", 8, False),
    "parent_span_id.string": _id("parent_span_id", 8, True),
    "trace_state": _plain("trace_state", _str_in),
    "name": _plain("name", _str_in),
    "kind": _plain("kind", _int_in),
    "start_time_unix_nano": _plain("start_time_unix_nano", _int_in),
    "end_time_unix_nano": _plain("end_time_unix_nano", _int_in),
    "start_time": _time("start_time_unix_nano"),
    "end_time": _time("end_time_unix_nano"),
    "duration": _read_only(lambda s: s.end_time_unix_nano - s.start_time_unix_nano),
    "dropped_attributes_count": _plain("dropped_attributes_count", _int_in),
    "dropped_events_count": _plain("dropped_events_count", _int_in),
    "dropped_links_count": _plain("dropped_links_count", _int_in),
    "status.code": (lambda s: s.status.code, _status_code_put),
    "status.message": (lambda s: s.status.message, _status_message_put),
    "flags": _plain("flags", _int_in),
}
_SPANEVENT: dict[str, _Field] = {
    "name": _plain("name", _str_in),
    "time_unix_nano": _plain("time_unix_nano", _int_in),
    "time": _time("time_unix_nano"),
    "dropped_attributes_count": _plain("dropped_attributes_count", _int_in),
}
_METRIC: dict[str, _Field] = {
    "name": _plain("name", _str_in),
    "description": _plain("description", _str_in),
    "unit": _plain("unit", _str_in),
    "type": _read_only(_metric_type),
    "aggregation_temporality": (
        lambda m: getattr(_metric_data(m), "aggregation_temporality", 0), _temporality_put),
    "is_monotonic": (lambda m: m.sum.is_monotonic if m.WhichOneof("data") == "sum" else False, _monotonic_put),
}
_DATAPOINT: dict[str, _Field] = {
    "start_time_unix_nano": _plain("start_time_unix_nano", _int_in),
    "time_unix_nano": _plain("time_unix_nano", _int_in),
    "start_time": _time("start_time_unix_nano"),
    "time": _time("time_unix_nano"),
    "value_double": _number_value("as_double"),
    "value_int": _number_value("as_int"),
    "count": _plain("count", _int_in),
    "sum": (lambda p: p.sum, lambda p, v: setattr(p, "sum", float(v))),
    "flags": _plain("flags", _int_in),
}
_LOG: dict[str, _Field] = {
    "time_unix_nano": _plain("time_unix_nano", _int_in),
    "observed_time_unix_nano": _plain("observed_time_unix_nano", _int_in),
    "time": _time("time_unix_nano"),
    "observed_time": _time("observed_time_unix_nano"),
    "severity_number": _plain("severity_number", _int_in),
    "severity_text": _plain("severity_text", _str_in),
    "body": (lambda r: from_any(r.body), _body_put),
    "body.string": (lambda r: _body_string(r.body), lambda r, v: setattr(r.body, "string_value", _str_in(v))),
    "dropped_attributes_count": _plain("dropped_attributes_count", _int_in),
    "flags": _plain("flags", _int_in),
    "trace_id": _id("trace_id", 16, False),
    "trace_id.string": _id("trace_id", 16, True),
    "span_id": _id("span_id", 8, False),
    "span_id.string": _id("span_id", 8, True),
    "event_name": _plain("event_name", _str_in),
}

_FIELDS: dict[str, dict[str, _Field]] = {"resource": _RESOURCE, "scope": _SCOPE, "span": _SPAN,
                                         "spanevent": _SPANEVENT, "metric": _METRIC, "datapoint": _DATAPOINT,
                                         "log": _LOG}
#: Which message kinds have ``attributes`` (metrics do not).
_HAS_ATTRIBUTES = frozenset({"resource", "scope", "span", "spanevent", "datapoint", "log"})


def _body_string(body: Any) -> str:
    value = from_any(body)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, default=lambda v: v.hex() if isinstance(v, bytes) else str(v), separators=(",", ":"))


def index(value: Any, key: Any) -> Any:
    """``value[key]`` with OTTL's rules: a missing map key is nil; a slice index out of range is an error."""
    if isinstance(value, dict):
        if not isinstance(key, str):
            raise TypeError(f"a map key must be a string, got {type(key).__name__}")
        return value.get(key)
    if isinstance(value, list):
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError(f"a slice index must be an int, got {type(key).__name__}")
        if not 0 <= key < len(value):
            raise IndexError(f"index {key} out of range for a slice of {len(value)}")
        return value[key]
    if value is None:
        return None
    raise TypeError(f"cannot index a {type(value).__name__}")


def _locator(level: str) -> Callable[[Ctx], Any]:
    if level == "resource":
        return lambda ctx: ctx.resource
    if level == "scope":
        return lambda ctx: ctx.scope
    if level == "parent":
        return lambda ctx: ctx.parent
    return lambda ctx: ctx.item


def _nested_any(root: Any, keys: tuple[Any, ...], create: bool) -> Any:
    """Walk AnyValue ``root`` down ``keys`` (map keys, slice indexes); None when a step is missing."""
    value = root
    for key in keys:
        if isinstance(key, str):
            if value.WhichOneof("value") != "kvlist_value":
                if not create:
                    return None
                value.kvlist_value.SetInParent()
                del value.kvlist_value.values[:]
            found = find(value.kvlist_value.values, key)
            if found is None:
                if not create:
                    return None
                found = value.kvlist_value.values.add(key=key).value
            value = found
        else:
            if value.WhichOneof("value") != "array_value" or not 0 <= key < len(value.array_value.values):
                if create:
                    raise IndexError(f"index {key} out of range")
                return None
            value = value.array_value.values[key]
    return value


def _attributes(level: str, text: str, keys: tuple[Any, ...], body: bool = False) -> Accessor:
    """``attributes``, ``attributes["k"]...`` (or a log's ``body["k"]...``) at one level."""
    locate = _locator(level)
    if body:
        def kvs(ctx: Ctx) -> Any:
            b = ctx.item.body
            return b.kvlist_value.values if b.WhichOneof("value") == "kvlist_value" else None
    else:
        def kvs(ctx: Ctx) -> Any:
            return locate(ctx).attributes
    out_level = "item" if level == "parent" else level
    if not keys:
        if body:  # unreachable: a bare body is a plain field
            raise PathError(text)

        def get_all(ctx: Ctx) -> Any:
            return to_dict(kvs(ctx))

        def set_all(ctx: Ctx, value: Any) -> None:
            if not isinstance(value, dict):
                raise TypeError(f"expected a map, got {type(value).__name__}")
            attributes = kvs(ctx)
            del attributes[:]
            for k, v in value.items():
                set_any(attributes.add(key=str(k)).value, v)
        return Accessor(get_all, set_all, kvs, out_level, text, item_attributes=level == "item" and not body,
                        whole=True)
    first, rest = keys[0], keys[1:]
    if not isinstance(first, str):
        raise PathError(f"{text}: the first key of a map must be a string, got {first!r}")
    if not rest and level == "item" and not body:
        def get_viewed(ctx: Ctx) -> Any:
            view = ctx.view
            if view is None:  # one lookup: a scan that stops at the key is cheaper than building the view
                for kv in ctx.item.attributes:
                    if kv.key == first:
                        return from_any(kv.value)
                return None
            _, kvs_, keys_ = view
            if first in keys_:
                return from_any(kvs_[keys_.index(first)].value)
            return None

        def set_viewed(ctx: Ctx, value: Any) -> None:
            if value is None:
                return
            attributes, kvs_, keys_ = item_view(ctx)
            if first in keys_:
                set_any(kvs_[keys_.index(first)].value, value)
                return
            kv = attributes.add()
            kv.key = first
            set_any(kv.value, value)
            kvs_.append(kv)
            keys_.append(first)

        def map_viewed(ctx: Ctx) -> Any:
            _, kvs_, keys_ = item_view(ctx)
            if first not in keys_:
                return None
            value = kvs_[keys_.index(first)].value
            return value.kvlist_value.values if value.WhichOneof("value") == "kvlist_value" else None
        return Accessor(get_viewed, set_viewed, map_viewed, out_level, text, item_attributes=True)
    if not rest:
        def get_one(ctx: Ctx) -> Any:
            attributes = kvs(ctx)
            if attributes is None:
                return None
            for kv in attributes:
                if kv.key == first:
                    return from_any(kv.value)
            return None

        def set_one(ctx: Ctx, value: Any) -> None:
            if value is None:
                return
            attributes = kvs(ctx)
            if attributes is None:
                if not body:
                    return
                ctx.item.body.kvlist_value.SetInParent()
                attributes = ctx.item.body.kvlist_value.values
            set_attribute(attributes, first, value)

        def map_one(ctx: Ctx) -> Any:
            attributes = kvs(ctx)
            value = find(attributes, first) if attributes is not None else None
            if value is None or value.WhichOneof("value") != "kvlist_value":
                return None
            return value.kvlist_value.values
        return Accessor(get_one, set_one, map_one, out_level, text)

    def get_deep(ctx: Ctx) -> Any:
        attributes = kvs(ctx)
        value = find(attributes, first) if attributes is not None else None
        if value is None:
            return None
        result = from_any(value)
        for key in rest:
            result = index(result, key)
        return result

    def set_deep(ctx: Ctx, value: Any) -> None:
        if value is None:
            return
        attributes = kvs(ctx)
        if attributes is None:
            return
        root = find(attributes, first)
        if root is None:
            root = attributes.add(key=first).value
        set_any(_nested_any(root, rest, create=True), value)

    def map_deep(ctx: Ctx) -> Any:
        attributes = kvs(ctx)
        root = find(attributes, first) if attributes is not None else None
        value = _nested_any(root, rest, create=False) if root is not None else None
        if value is None or value.WhichOneof("value") != "kvlist_value":
            return None
        return value.kvlist_value.values
    return Accessor(get_deep, set_deep, map_deep, out_level, text)


def _cache(text: str, keys: tuple[Any, ...]) -> Accessor:
    if not keys:
        def set_all(ctx: Ctx, value: Any) -> None:
            if not isinstance(value, dict):
                raise TypeError(f"expected a map, got {type(value).__name__}")
            ctx.cache = dict(value)
        return Accessor(lambda ctx: ctx.cache, set_all, lambda ctx: ctx.cache, "cache", text)
    first, rest = keys[0], keys[1:]
    if not isinstance(first, str):
        raise PathError(f"{text}: cache keys must be strings")

    def get(ctx: Ctx) -> Any:
        value = ctx.cache.get(first)
        for key in rest:
            value = index(value, key)
        return value

    def put(ctx: Ctx, value: Any) -> None:
        if value is None:
            return
        if not rest:
            ctx.cache[first] = value
            return
        node: Any = ctx.cache.setdefault(first, {})
        for key in rest[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        node[rest[-1]] = value

    def as_map(ctx: Ctx) -> Any:
        value = get(ctx)
        return value if isinstance(value, dict) else None
    return Accessor(get, put, as_map, "cache", text)


def _field(kind: str, level: str, name: str, text: str, keys: tuple[Any, ...]) -> Accessor:
    table = _FIELDS[kind]
    if name not in table:
        valid = sorted({*table, *(["attributes"] if kind in _HAS_ATTRIBUTES else [])})
        raise PathError(f"{text}: {kind} has no field {name!r}; valid: {', '.join(valid)}")
    read, write = table[name]
    locate = _locator(level)
    out_level = "item" if level == "parent" else level
    if keys:
        if kind == "log" and name == "body":
            return _attributes("item", text, keys, body=True)

        def get_indexed(ctx: Ctx) -> Any:
            value = read(locate(ctx))
            for key in keys:
                value = index(value, key)
            return value
        return Accessor(get_indexed, None, None, out_level, text)

    plain = _PLAIN.get(read)
    if plain is not None:
        get: Getter = attrgetter(f"{'parent' if level == 'parent' else level}.{plain}")
    else:
        def get(ctx: Ctx) -> Any:
            return read(locate(ctx))

    put: Setter | None = None
    if write is not None:
        w = write

        def put(ctx: Ctx, value: Any) -> None:
            if value is not None:
                w(locate(ctx), value)
    as_map: Getter | None = None
    if kind == "log" and name == "body":
        def as_map(ctx: Ctx) -> Any:
            body = ctx.item.body
            return body.kvlist_value.values if body.WhichOneof("value") == "kvlist_value" else None
    return Accessor(get, put, as_map, out_level, text)


def resolve(context: str, fields: tuple[str, ...], keys: tuple[Any, ...]) -> Accessor:
    """The accessor of a path in ``context``. ``keys`` are literal map keys and slice indexes."""
    text = ".".join(fields) + "".join(f"[{k!r}]".replace("'", '"') for k in keys)
    head = fields[0]
    if head == "cache":
        if len(fields) > 1:
            raise PathError(f"{text}: cache takes keys (cache[\"k\"]), not fields")
        return _cache(text, keys)
    if head == "instrumentation_scope":
        head = "scope"
    if head in ("resource", "scope") and (len(fields) > 1 or context == head):
        kind, level, rest = head, head, fields[1:]
        if context == "resource" and head == "scope":
            raise PathError(f"{text}: the resource context has no scope")
    elif head == context and len(fields) > 1:
        kind, level, rest = context, "item", fields[1:]
    elif _PARENTS.get(context) == head and len(fields) > 1:
        kind, level, rest = head, "parent", fields[1:]
    else:
        kind, level, rest = context, "item", fields
    if context in ("resource", "scope") and kind == context:
        level = context
    if not rest:
        raise PathError(f"{text}: a field is required after {head!r}")
    name = ".".join(rest)
    if name == "attributes":
        if kind not in _HAS_ATTRIBUTES:
            raise PathError(f"{text}: {kind} has no attributes")
        return _attributes(level, text, keys)
    return _field(kind, level, name, text, keys)
