"""Raw configuration: read YAML files, merge them (later wins) and expand ``${env:VAR}`` references.

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
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, SequenceNode

from gateway.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_NODES", "EnvString", "expand_env", "load_files", "merge", "safe_load", "yaml_error"]

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

# ${env:NAME}, ${env:NAME:-default} and the older ${NAME}; "$$" is a literal "$".
_ENV_REF = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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


def _expand_string(text: str, environ: Mapping[str, str]) -> Any:
    whole = _ENV_REF.fullmatch(text)
    if whole and whole.group(0) != "$$":
        return EnvString(environ.get(whole.group(1), whole.group(2) if whole.group(2) is not None else ""))

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        default = match.group(2) if match.group(2) is not None else ""
        return environ.get(match.group(1), default)

    return _ENV_REF.sub(replace, text)


def expand_env(node: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Expand environment references in every string scalar of ``node`` (keys stay as written)."""
    env = os.environ if environ is None else environ
    if isinstance(node, Mapping):
        return {key: expand_env(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [expand_env(value, env) for value in node]
    if isinstance(node, str):
        return _expand_string(node, env)
    return node


def yaml_error(exc: yaml.YAMLError) -> str:
    """A YAML syntax error without the offending line: that line may hold a token. Position and problem only."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return type(exc).__name__
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = f"{exc.context}, " if exc.context else ""
    return f"{where}{context}{exc.problem or 'syntax error'}"


def load_files(paths: Iterable[str | os.PathLike[str]], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read, merge (later files win) and env-expand configuration files."""
    merged: Any = {}
    errors: list[str] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
            data = safe_load(text)
        except OSError as exc:
            errors.append(f"cannot read config file {str(path)!r}: {exc.strerror or exc}")
            continue
        except yaml.YAMLError as exc:
            errors.append(f"config file {str(path)!r} is not valid YAML: {yaml_error(exc)}")
            continue
        if data is None:
            continue
        if not isinstance(data, Mapping):
            errors.append(f"config file {str(path)!r}: the top level must be a mapping, got {type(data).__name__}")
            continue
        merged = merge(merged, data, errors=errors)
    if errors:
        raise ConfigError(errors)
    return expand_env(merged, environ)
