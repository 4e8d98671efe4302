"""Raw configuration: read config sources, merge them (later wins) and expand ``${...}`` references.

A source (``--config``) is a file path or a URI as the Collector takes them: ``file:path``, ``env:VAR`` (the
variable holds YAML) or ``yaml:a::b: value`` (inline YAML whose ``::`` keys are paths; ``--set a::b=value``
becomes one). Inside values, ``${env:VAR}``, ``${env:VAR:-default}``, bare ``${VAR}``, ``${file:path}`` and
``${yaml:text}`` are replaced, and ``$$`` is a literal ``$``. A mapping that repeats a key is an error with its
line, as in the Collector (PyYAML would keep the last one silently).

The result is plain mappings; turning them into typed component configs is ``gateway._host.config``'s job.

YAML is read with limits, because aliases make a tiny file describe a huge tree ("billion laughs": each level
an anchor that repeats the one before nine times). PyYAML builds such a file as a small graph of shared nodes,
but everything after it (merging, ``${env:}`` expansion, decoding) walks it as a tree. So the composed node
graph is measured before anything is built from it: its size as a tree (:data:`MAX_NODES`), its depth
(:data:`MAX_DEPTH`, also what keeps deep nesting from exhausting the stack) and cycles (``&a [*a]``). Measuring
visits each distinct node once, so a refused bomb costs about as much as reading its text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_NODES", "EnvString", "Expansion", "expand_env", "load_files", "load_sources", "merge",
           "safe_load", "set_option_source", "source_file", "yaml_error"]

#: Most nodes a YAML document may have once its aliases are expanded. The largest shipped config has about 400.
MAX_NODES = 100_000
#: Deepest nesting of mappings and sequences a YAML document may have. Real configs are about 10 deep.
MAX_DEPTH = 100


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader whose composer stops at :data:`MAX_DEPTH` before Python's recursion limit does."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nesting is deeper than {MAX_DEPTH} levels",
                                    self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Before merge keys (<<) are flattened: a key given twice by hand is an error, one that overrides a
        # merged-in key is not.
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise ConstructorError(None, None, f"key {key!r} is repeated in this mapping (first on line "
                                       f"{seen[key].line + 1}); the Collector refuses duplicated keys",
                                       key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]


def _expanded_size(root: Node) -> int:
    """Nodes in the tree ``root`` stands for, aliases expanded; raises ComposerError past the limits or on a
    cycle. Iterative and memoised per node, so each distinct node is visited once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            children = _children(node)
            size = 1 + sum(sizes[id(child)] for child in children)
            if size > MAX_NODES:
                raise ComposerError(None, None, f"the document expands to more than {MAX_NODES} nodes through "
                                    f"its aliases (a YAML bomb?)", node.start_mark)
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ComposerError(None, None, "an alias refers to a node that contains it (a cycle)",
                                node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ComposerError(None, None, "an alias refers to a node that contains it (a cycle)",
                                    child.start_mark)
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` within :data:`MAX_NODES` and :data:`MAX_DEPTH`; raises ``yaml.YAMLError``."""
    loader = _LimitedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()

def merge(base: Any, override: Any, path: tuple[str, ...] = (), errors: list[str] | None = None) -> Any:
    """Deep-merge mappings: keys merge recursively, and a later value replaces an earlier one, except the lists
    that name a pipeline's components (:func:`gateway._host.packs.merge_component_list`): config fragments (KPI packs,
    alert packs, redaction) then add their components to a pipeline instead of replacing the ones before them.
    Conflicts found on the way are appended to ``errors`` (with their key path) when it is given."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value, (*path, str(key)), errors) if key in base else value
        return out
    if isinstance(base, list) and isinstance(override, list):
        from gateway._host.packs import merge_component_list

        merged = merge_component_list(path, base, override, errors if errors is not None else [])
        if merged is not None:
            return merged
    return override


class EnvString(str):
    """The value of an environment reference that makes up a whole scalar, as the Collector keeps it: the string
    itself, plus ``typed``, the value read as YAML. The config decoder uses the string for a ``str`` field (so a
    token ``s3cr3t #x`` or ``0x1F2E`` arrives as written) and ``typed`` for any other type (``${env:PORT}`` into
    an int field)."""

    typed: Any

    def __new__(cls, value: str) -> EnvString:
        self = super().__new__(cls, value)
        try:
            typed = safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            typed = value
        self.typed = typed
        return self


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
#: Config sources otelgw reads, in ``${scheme:...}`` references and in ``--config`` URIs.
SCHEMES = ("env", "file", "yaml")


@dataclass
class Expansion:
    """What expanding references found besides the values: the key paths that an unset variable without a default
    left empty (so a later error on such a key can name the variable), warnings, and errors."""

    unset: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _references(text: str) -> list[tuple[int, int, str | None]]:
    """``(start, end, inner)`` of every ``$$`` (inner None) and ``${...}`` (braces balanced) in ``text``."""
    found: list[tuple[int, int, str | None]] = []
    i = text.find("$")
    while i != -1:
        if text.startswith("$$", i):
            found.append((i, i + 2, None))
            i = text.find("$", i + 2)
            continue
        if text.startswith("${", i):
            depth, j = 0, i + 1
            while j < len(text):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    found.append((i, j + 1, text[i + 2:j]))
                    break
                j += 1
            else:
                break
            i = text.find("$", j + 1)
            continue
        i = text.find("$", i + 1)
    return found


def _resolve(inner: str, environ: Mapping[str, str], path: str, expansion: Expansion) -> str | None:
    """The text a reference stands for; None when ``inner`` is not a reference (``${{ $value }}`` in a
    template stays as written)."""
    scheme, sep, rest = inner.partition(":")
    if not sep or not _SCHEME.fullmatch(scheme):
        if not _NAME.fullmatch(inner):
            return None
        scheme, rest = "env", inner
    if scheme == "env":
        name, has_default, default = rest.partition(":-")
        if not _NAME.fullmatch(name):
            expansion.errors.append(f"{path}: ${{env:{name}}}: {name!r} is not an environment variable name")
            return ""
        if name in environ:
            return environ[name]
        if has_default:
            return default
        # The Collector reads an unset variable as empty; so does otelgw, and says so.
        expansion.unset[path] = name
        expansion.warnings.append(f"{path}: environment variable {name} is not set, so the value is empty "
                                  f"(write ${{env:{name}:-default}} to give a default)")
        return ""
    if scheme == "file":
        try:
            # One trailing newline is the end of the file, not part of a token or password.
            return Path(rest).read_text(encoding="utf-8").removesuffix("\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            expansion.errors.append(f"{path}: ${{file:{rest}}}: cannot read the file: {reason}")
            return ""
    if scheme == "yaml":
        return rest
    expansion.errors.append(f"{path}: ${{{scheme}:...}}: unknown config source {scheme!r}; otelgw reads "
                            f"{', '.join(SCHEMES)}")
    return ""


def _expand_string(text: str, environ: Mapping[str, str], path: str, expansion: Expansion) -> Any:
    refs = _references(text)
    if len(refs) == 1 and refs[0][2] is not None and refs[0][:2] == (0, len(text)):
        value = _resolve(refs[0][2], environ, path, expansion)
        if value is None:
            return text
        whole = EnvString(value)
        if isinstance(whole.typed, Mapping | list):  # ${file:receivers.yaml} standing for a whole section
            return expand_env(whole.typed, environ, expansion, path)
        return whole
    out, pos = [], 0
    for start, end, inner in refs:
        value = "$" if inner is None else _resolve(inner, environ, path, expansion)
        out.append(text[pos:start])
        out.append(text[start:end] if value is None else value)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def expand_env(node: Any, environ: Mapping[str, str] | None = None, expansion: Expansion | None = None,
               path: str = "") -> Any:
    """Expand ``${...}`` references in every string scalar of ``node`` (keys stay as written). Unset variables,
    warnings and errors go to ``expansion`` when it is given."""
    env = os.environ if environ is None else environ
    found = expansion if expansion is not None else Expansion()
    if isinstance(node, Mapping):
        return {key: expand_env(value, env, found, f"{path}::{key}" if path else str(key))
                for key, value in node.items()}
    if isinstance(node, list):
        return [expand_env(value, env, found, f"{path}::{i}" if path else str(i)) for i, value in enumerate(node)]
    if isinstance(node, str):
        return _expand_string(node, env, path, found)
    return node


def yaml_error(exc: yaml.YAMLError) -> str:
    """A YAML syntax error without the offending line: that line may hold a token. Position and problem only."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return type(exc).__name__
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = f"{exc.context}, " if exc.context else ""
    return f"{where}{context}{exc.problem or 'syntax error'}"


def set_option_source(option: str) -> str:
    """``--set a::b=value`` as the Collector reads it: the ``yaml:a::b: value`` source."""
    key, sep, value = option.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {option!r}: expected KEY=VALUE, the key a path separated by '::' "
                          f"(processors::batch::timeout=2s)")
    return f"yaml:{key.strip()}: {value}"


def source_file(source: str | os.PathLike[str]) -> Path | None:
    """The file a ``--config`` source reads, if it is a file (a path or ``file:path``)."""
    text = str(source)
    scheme, sep, rest = text.partition(":")
    if sep and scheme in ("env", "yaml"):
        return None
    return Path(rest if sep and scheme == "file" else text)


def _split_paths(node: Any) -> Any:
    """``{"a::b": 1}`` → ``{"a": {"b": 1}}``: inline YAML sources name nested keys by their ``::`` path."""
    if not isinstance(node, Mapping):
        return node
    out: dict[Any, Any] = {}
    for key, value in node.items():
        parts = str(key).split("::") if isinstance(key, str) else [key]
        nested: Any = _split_paths(value)
        for part in reversed(parts[1:]):
            nested = {part: nested}
        out = merge(out, {parts[0]: nested})
    return out


def _read_source(source: str | os.PathLike[str], environ: Mapping[str, str], errors: list[str]) -> Any:
    """One ``--config`` source parsed, or None after appending its error. Inline sources are not echoed in
    errors (``--set`` may carry a token)."""
    text = str(source)
    scheme, sep, rest = text.partition(":")
    inline = bool(sep) and scheme in ("env", "yaml")
    label = f"config file {str(source_file(source))!r}" if not inline else f"config source {scheme}:"
    if sep and scheme in ("http", "https", "s3") and not Path(text).exists():
        errors.append(f"config source {scheme}: otelgw reads config from files and from the file:, env: and yaml: "
                      f"URIs; fetch it first ({scheme}: is the Collector's remote provider)")
        return None
    if scheme == "env" and sep:
        label = f"config source env:{rest}"
        if rest not in environ:
            errors.append(f"{label}: the environment variable is not set")
            return None
        body = environ[rest]
    elif scheme == "yaml" and sep:
        body = rest
    else:
        try:
            body = Path(str(source_file(source))).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"cannot read {label}: {getattr(exc, 'strerror', None) or exc}")
            return None
    try:
        data = safe_load(body)
    except yaml.YAMLError as exc:
        errors.append(f"{label} is not valid YAML: {yaml_error(exc)}")
        return None
    if data is not None and not isinstance(data, Mapping):
        errors.append(f"{label}: the top level must be a mapping, got {type(data).__name__}")
        return None
    return _split_paths(data) if inline else data


def load_sources(sources: Iterable[str | os.PathLike[str]], environ: Mapping[str, str] | None = None,
                 ) -> tuple[dict[str, Any], Expansion]:
    """Read and merge config sources (later wins), then expand references; raises ``ConfigError`` listing every
    unreadable source, merge conflict and failed reference. Returns the config and what expansion found."""
    env = os.environ if environ is None else environ
    merged: Any = {}
    errors: list[str] = []
    for source in sources:
        data = _read_source(source, env, errors)
        if data is not None:
            merged = merge(merged, data, errors=errors)
    if errors:
        raise ConfigError(errors)
    expansion = Expansion()
    expanded = expand_env(merged, env, expansion)
    if expansion.errors:
        raise ConfigError(expansion.errors)
    return expanded, expansion


def load_files(paths: Iterable[str | os.PathLike[str]], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read, merge (later files win) and expand configuration sources (paths or URIs)."""
    return load_sources(paths, environ)[0]
