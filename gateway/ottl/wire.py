"""Span statements run on the received bytes: span attributes edited as serialized ``KeyValue``s.

Reading a span's attributes through the OTLP classes builds a Python wrapper per ``KeyValue`` (and per
``AnyValue``), and those wrappers were most of what transform cost. Here the request the receiver parsed is parsed
once more, in C, as ``gateway.protos.otelgw.ottl_views_pb2.TracesEdit``: the same request, field for field, except
that each attribute is one ``bytes`` object. The statements run on that view, and the view is serialized and parsed
as the OTLP request again. A key is found with one dictionary lookup per attribute (``_KEYS``: serialized KeyValue
to key, learned once per distinct attribute); values are decoded only when a statement reads them.

Exactly the same statements, with exactly the slow path's effect, or not at all:

- ``compile_statement(..., wire=True)`` compiles a statement with the span's ``attributes`` paths bound to the view
  (``attributes_accessor``); editors that read and set one attribute through their target (``set``,
  ``replace_pattern``, ``replace_match``) are the usual functions, map editors on the whole ``attributes`` have
  their own here (``wire_editor``). What the view does not support (``limit``, ``merge_maps``, ``flatten``, a
  nested key, a map editor on one attribute, replacing all attributes, another context) raises ``NotWire``, and
  the group keeps the OTLP path.
- A value is set as the OTLP classes would set it in place: when the attribute held a plain string (key, then a
  value that is a string and nothing else), its bytes are written anew; otherwise (unknown fields, repeated fields,
  other value types) the ``KeyValue`` is parsed, changed with the same ``set_any`` and serialized.
- A key is read from the bytes only when the ``KeyValue`` is canonical (the key field, then the value field that
  ends the message); anything else is parsed with the OTLP class, which knows every other encoding.
- ``delete_key``, ``truncate_all`` and ``set`` from another attribute, the editors run on nearly every span, are
  written as ``loops.Inline`` bodies, so the group's loop runs them without a call; their closures are made from
  the same bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from gateway.helpers.protowire import varint
from gateway.protos.otelgw.ottl_views_pb2 import TracesEdit

from . import functions
from .loops import Inline, inline_closure
from .paths import Accessor, Ctx
from .values import from_any, set_any

__all__ = ["NotWire", "TracesEdit", "attributes_accessor", "real_resource", "real_scope", "wire_editor",
           "wire_view"]


class NotWire(Exception):
    """The statement needs the OTLP classes: its group runs on the parsed request."""


#: Serialized KeyValue → its key. Most attributes repeat across spans (the same method, route, scheme...), so most
#: lookups hit; one whose value is new each time (an address, an id) is read from its bytes (``_learn``). The
#: table is emptied when full: at most ``_KEYS_LIMIT`` KeyValues of at most ``_CACHED_SIZE`` bytes, a few MiB.
_KEYS: dict[bytes, str] = {}
_KEYS_LIMIT = 1 << 13
_CACHED_SIZE = 256
#: Key → its serialized ``key`` field (what starts a canonical KeyValue with that key).
_PREFIXES: dict[str, bytes] = {}


def _canonical_key(kv: bytes) -> str | None:
    """The key of a KeyValue written as its key field (length below 128) and then at most its value field, else
    None. Every KeyValue here parsed once already (the receiver's parse), so its fields are well formed: a value
    field whose one-byte length reaches the end exactly is the last field, and a longer length could not fit."""
    if len(kv) > 1 and kv[0] == 0x0A and kv[1] < 0x80:
        end = kv[1] + 2
        if end == len(kv) or (kv[end] == 0x12 and kv[end + 1] + end + 2 == len(kv)):
            return kv[2:end].decode()
    return None


_misses = 0


def _remember(table: dict[Any, Any], entry: Any, value: Any) -> None:
    """Keep one miss in eight of a cache table (emptied when full). What recurs is kept after a few sightings; what
    is new every time (an address, an id) rarely takes a place, so the table is not emptied every few thousand
    spans by values that never come again."""
    global _misses
    _misses += 1
    if not _misses & 7:
        if len(table) >= _KEYS_LIMIT:
            table.clear()
        table[entry] = value


#: A canonical KeyValue's key field (tag, length, key) → the key: what ``_learn`` reads a new KeyValue's key from.
#: Keys are few (a few dozen per service) even where values are new on every span (addresses, ids).
_KEY_FIELDS: dict[bytes, str] = {}


def _learn(kv: bytes) -> str:
    """The key of a KeyValue not in ``_KEYS`` (``_canonical_key`` inlined: this runs for about one attribute per
    span, the one whose value is new each time, so its calls showed in profiles)."""
    size = len(kv)
    if size > 1 and kv[0] == 0x0A and kv[1] < 0x80:
        end = kv[1] + 2
        if end == size or (kv[end] == 0x12 and kv[end + 1] + end + 2 == size):
            field = kv[:end]
            key = _KEY_FIELDS.get(field)
            if key is None:
                key = field[2:].decode()
                if len(_KEY_FIELDS) >= _KEYS_LIMIT:
                    _KEY_FIELDS.clear()
                _KEY_FIELDS[field] = key
            if size <= _CACHED_SIZE:
                _remember(_KEYS, kv, key)
            return key
    key = KeyValue.FromString(kv).key
    if size <= _CACHED_SIZE:
        _remember(_KEYS, kv, key)
    return key


def _plain_string(kv: bytes) -> str | None:
    """The value of a KeyValue that is key, then a value holding one string and nothing else; else None."""
    if len(kv) < 2 or kv[0] != 0x0A or kv[1] > 0x7F:
        return None
    end = 2 + kv[1]
    size = len(kv)
    if end + 4 > size or kv[end] != 0x12 or kv[end + 1] > 0x7F or end + 2 + kv[end + 1] != size \
            or kv[end + 2] != 0x0A or kv[end + 3] > 0x7F or end + 4 + kv[end + 3] != size:
        return None
    return kv[end + 4:].decode()


#: Serialized KeyValue → its string value, for KeyValues that are ``_plain_string``s read by statements (kept as
#: ``_KEYS`` is).
_STRINGS: dict[bytes, str] = {}


def _value(kv: bytes) -> Any:
    """The OTTL value of a serialized KeyValue's value (``from_any``)."""
    text = _STRINGS.get(kv)
    if text is not None:
        return text
    text = _plain_string(kv)
    if text is None:
        return from_any(KeyValue.FromString(kv).value)
    if len(kv) <= _CACHED_SIZE:
        _remember(_STRINGS, kv, text)
    return text


def _prefix(key: str) -> bytes:
    prefix = _PREFIXES.get(key)
    if prefix is None:
        prefix = KeyValue(key=key).SerializeToString()
        if len(_PREFIXES) < 4096:
            _PREFIXES[key] = prefix
    return prefix


def _value_field(value: Any) -> bytes:
    """The serialized ``value`` field of a KeyValue whose value ``set_any`` set to ``value`` on an empty one."""
    if value.__class__ is str:
        data = value.encode()
        any_value = b"\x0a" + varint(len(data)) + data
    else:
        message = AnyValue()
        set_any(message, value)
        any_value = message.SerializeToString()
    return b"\x12" + varint(len(any_value)) + any_value


#: (key, string) → the serialized KeyValue, for the strings statements set (often the same few values; kept as
#: ``_KEYS`` is).
_ENCODED: dict[tuple[str, str], bytes] = {}


def _encode(key: str, value: Any) -> bytes:
    """A new KeyValue ``key`` = ``value``, as ``attributes.add()`` then ``set_any`` would serialize it."""
    if value.__class__ is not str or len(value) > _CACHED_SIZE:
        return _prefix(key) + _value_field(value)
    pair = (key, value)
    kv = _ENCODED.get(pair)
    if kv is None:
        kv = _prefix(key) + _value_field(value)
        _remember(_ENCODED, pair, kv)
    return kv


def _with_value(kv: bytes, key: str, value: Any) -> bytes:
    """``kv`` after ``set_any(kv.value, value)``, as the OTLP classes would serialize it."""
    if kv in _STRINGS or _plain_string(kv) is not None:  # only the key and one string: nothing else to keep
        return _encode(key, value)
    message = KeyValue.FromString(kv)
    set_any(message.value, value)
    return message.SerializeToString()


View = tuple[Any, list[bytes], list[str]]


def wire_view(ctx: Ctx, _known: Callable[[bytes], str | None] = _KEYS.get) -> View:
    """The item's attributes: the repeated ``bytes`` field, its elements and their keys, built once per item."""
    view = ctx.view
    if view is not None:
        return view
    field = ctx.item.attributes
    kvs = field[:]
    keys: list[Any] = list(map(_known, kvs))
    if not all(keys):  # some key not learnt yet (or an empty key): typically one whose value is new each time
        for i, key in enumerate(keys):
            if key is None:
                keys[i] = _learn(kvs[i])
    built = ctx.view = (field, kvs, keys)
    return built


def _set(view: View, key: str, value: Any) -> None:
    field, kvs, keys = view
    if key in keys:
        i = keys.index(key)
        field[i] = kvs[i] = _with_value(kvs[i], key, value)
        return
    kv = _encode(key, value)
    field.append(kv)
    kvs.append(kv)
    keys.append(key)


def attributes_accessor(text: str, keys: tuple[Any, ...]) -> Accessor:
    """The item's ``attributes`` (whole, or one key) on the view. Raises ``NotWire`` for nested keys."""
    if not keys:
        def get_all(ctx: Ctx) -> Any:
            _, kvs, names = wire_view(ctx)
            return {name: _value(kv) for name, kv in zip(names, kvs, strict=True)}
        # No setter (replacing every attribute) and no map: map editors are bound by ``wire_editor``.
        return Accessor(get_all, None, None, "item", text, item_attributes=True, whole=True)
    if len(keys) > 1 or not isinstance(keys[0], str):
        raise NotWire(f"{text}: nested keys")
    first: str = keys[0]

    def get(ctx: Ctx) -> Any:
        _, kvs, names = ctx.view or wire_view(ctx)
        if first in names:
            return _value(kvs[names.index(first)])
        return None

    def put(ctx: Ctx, value: Any) -> None:
        if value is not None:
            _set(ctx.view or wire_view(ctx), first, value)
    # Marked with their key, so that ``wire_set`` can run them inline.
    setattr(get, _KEY_MARK, first)
    setattr(put, _KEY_MARK, first)
    return Accessor(get, put, None, "item", text, item_attributes=True)


_KEY_MARK = "_otelgw_wire_key"


def wire_set(target: Accessor, value: Callable[[Ctx], Any]) -> Callable[[Ctx], None]:
    """``set(attributes["k"], value)`` on the view, in one call per item (the copy of another attribute too)."""
    key: str = getattr(target.set, _KEY_MARK)
    source: str | None = getattr(value, _KEY_MARK, None)
    if source is None:
        def run(ctx: Ctx) -> None:
            new = value(ctx)
            if new is not None:
                _set(ctx.view or wire_view(ctx), key, new)
        return run

    #: Source KeyValue → the KeyValue ``key`` = its value (what ``_encode`` makes of ``_value``): one lookup, its
    #: hash already computed by ``wire_view``, where most copies would decode and encode the same few values.
    made_of: dict[bytes, bytes] = {}

    def slow(view: View, kv: bytes) -> None:
        """The copy of ``kv``'s value when ``key`` is there already or ``made_of`` does not know ``kv``."""
        field, kvs, names = view
        new = _value(kv)
        if new is None:
            return
        if key in names:
            _set(view, key, new)
            return
        made = _encode(key, new)
        if len(kv) <= _CACHED_SIZE:
            _remember(made_of, kv, made)
        field.append(made)
        kvs.append(made)
        names.append(key)
    return inline_closure(Inline((
        "field, kvs, keys = view = ctx.view or {wire_view}(ctx)",
        "if {source} in keys:",
        "    kv = kvs[keys.index({source})]",
        "    made = None if {key} in keys else {made_of}.get(kv)",
        "    if made is None:",
        "        {slow}(view, kv)",
        "    else:",
        "        field.append(made)",
        "        kvs.append(made)",
        "        keys.append({key})",
    ), {"wire_view": wire_view, "source": source, "key": key, "made_of": made_of, "slow": slow}))


# --- map editors on the whole ``attributes`` ------------------------------------------------------------------------

def _delete_key(key: str) -> Callable[[Ctx], None]:
    # Run in the loop itself (``loops.Inline``): the most used editor, and as cheap as a call.
    return inline_closure(Inline((
        "field, kvs, keys = ctx.view or {wire_view}(ctx)",
        "if {key} in keys:",
        "    i = keys.index({key})",
        "    del field[i]",
        "    del kvs[i]",
        "    del keys[i]",
    ), {"wire_view": wire_view, "key": key}))


def _delete_where(drop: Callable[[str], bool]) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        field, kvs, keys = wire_view(ctx)
        for i in range(len(keys) - 1, -1, -1):
            if drop(keys[i]):
                del field[i]
                del kvs[i]
                del keys[i]
    return run


def _truncate_all(limit: int) -> Callable[[Ctx], None]:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    # A string value sits inside two length-delimited fields (the KeyValue's value, the AnyValue's string): at least
    # four bytes of tags and lengths, so a KeyValue of at most limit + 4 bytes holds no string longer than limit
    # bytes, let alone characters.
    bound = limit + 4
    #: KeyValues seen to be at most ``bound`` bytes (kept as ``_KEYS`` is; none when ``bound`` is above
    #: ``_CACHED_SIZE``): where every attribute of a span recurs, one set test (their hashes computed by
    #: ``wire_view`` already) instead of a length per attribute.
    short: set[bytes] = set()
    remember = bound <= _CACHED_SIZE

    def rest(field: Any, kvs: list[bytes], keys: list[str]) -> None:
        """``truncate_all`` on a span with a KeyValue not known to be short."""
        global _misses
        if max(map(len, kvs)) <= bound:  # not empty: the empty list is a subset of any set
            _misses += 1
            if remember and not _misses & 7:
                if len(short) >= _KEYS_LIMIT:
                    short.clear()
                short.update(kvs)
            return
        for i, kv in enumerate(kvs):
            if len(kv) <= bound:
                continue
            text = _plain_string(kv)
            if text is None:
                message = KeyValue.FromString(kv)
                text = message.value.string_value  # "" unless the value is a string, as in the OTLP path
                if len(text) > limit:
                    message.value.string_value = text[:limit]
                    field[i] = kvs[i] = message.SerializeToString()
            elif len(text) > limit:
                field[i] = kvs[i] = _encode(keys[i], text[:limit])
    # The test of every span runs in the loop itself (``loops.Inline``).
    return inline_closure(Inline((
        "field, kvs, keys = ctx.view or {wire_view}(ctx)",
        "if not {short}.issuperset(kvs):",
        "    {rest}(field, kvs, keys)",
    ), {"wire_view": wire_view, "short": short, "rest": rest}))


def _string_of(kv: bytes) -> str | None:
    """The value of ``kv`` when it is a string, else None."""
    text = _STRINGS.get(kv)
    if text is None:
        text = _plain_string(kv)
        if text is None:
            value = KeyValue.FromString(kv).value
            return value.string_value if value.WhichOneof("value") == "string_value" else None
    return text


def _rekeyed(kv: bytes, key: str, new: str) -> bytes:
    """``kv`` with its key set to ``new``, as the OTLP classes would serialize it."""
    prefix = _prefix(key)
    if _canonical_key(kv) is not None and kv.startswith(prefix):  # the key field first and once
        return _prefix(new) + kv[len(prefix):]
    message = KeyValue.FromString(kv)
    message.key = new
    return message.SerializeToString()


def _replace_all_patterns(mode: str, pattern: Any, repl: Callable[[Any], str]) -> Callable[[Ctx], None]:
    search, sub = pattern.search, pattern.sub

    def run(ctx: Ctx) -> None:
        field, kvs, keys = ctx.view or wire_view(ctx)
        for i, kv in enumerate(kvs):
            if mode == "value":
                text = _string_of(kv)  # the OTLP path reads string_value: "" for other types, never matched
                if text and search(text):
                    field[i] = kvs[i] = _with_value(kv, keys[i], sub(repl, text))
            elif search(keys[i]):
                new = sub(repl, keys[i])
                field[i] = kvs[i] = _rekeyed(kv, keys[i], new)
                keys[i] = new
    return run


def _replace_all_matches(glob: str, replacement: str) -> Callable[[Ctx], None]:
    matcher = functions.glob_regex(glob).match

    def run(ctx: Ctx) -> None:
        field, kvs, keys = ctx.view or wire_view(ctx)
        for i, kv in enumerate(kvs):
            text = _string_of(kv)
            if text is not None and matcher(text):
                field[i] = kvs[i] = _with_value(kv, keys[i], replacement)
    return run


def wire_editor(name: str, values: list[Any]) -> Callable[[Ctx], None]:
    """The view's version of map editor ``name`` on the whole ``attributes`` (``values``: its compiled arguments,
    the first being the target). Raises ``NotWire`` for the editors it does not have."""
    if name == "delete_key":
        return _delete_key(values[1])
    if name == "delete_matching_keys":
        search = values[1].search
        return _delete_where(lambda k: search(k) is not None)
    if name == "keep_matching_keys":
        search = values[1].search
        return _delete_where(lambda k: search(k) is None)
    if name == "keep_keys":
        keep = frozenset(values[1])
        return _delete_where(lambda k: k not in keep)
    if name == "truncate_all":
        return _truncate_all(values[1])
    if name == "replace_all_patterns":
        return _replace_all_patterns(values[1], values[2], functions.replacer(values[3], values[4], values[5]))
    if name == "replace_all_matches":
        return _replace_all_matches(values[1], values[2])
    raise NotWire(f"{name} on attributes")


def real_resource(edit: Any) -> Resource:
    """The OTLP ``Resource`` of a view's resource (read-only: statements that run on the view write only spans)."""
    return Resource.FromString(edit.SerializeToString())


def real_scope(edit: Any) -> InstrumentationScope:
    return InstrumentationScope.FromString(edit.SerializeToString())
