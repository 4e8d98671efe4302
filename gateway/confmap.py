"""Raw configuration: read YAML files, merge them (later wins) and expand ``${env:VAR}`` references.

The result is plain mappings; turning them into typed component configs is ``gateway.config``'s job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError

__all__ = ["expand_env", "load_files", "merge"]

# ${env:NAME}, ${env:NAME:-default} and the older ${NAME}; "$$" is a literal "$".
_ENV_REF = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def merge(base: Any, override: Any) -> Any:
    """Deep-merge mappings as the Collector does: keys merge recursively, any other value is replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


def _expand_string(text: str, environ: Mapping[str, str]) -> Any:
    whole = _ENV_REF.fullmatch(text)
    if whole and whole.group(0) != "$$":
        value = environ.get(whole.group(1), whole.group(2) if whole.group(2) is not None else "")
        # A value that is the whole scalar is typed like YAML, so `${env:PORT}` can become an int.
        try:
            return yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            return value

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


def load_files(paths: Iterable[str | os.PathLike[str]], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read, merge (later files win) and env-expand configuration files."""
    merged: Any = {}
    errors: list[str] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
            data = yaml.safe_load(text)
        except OSError as exc:
            errors.append(f"cannot read config file {str(path)!r}: {exc.strerror or exc}")
            continue
        except yaml.YAMLError as exc:
            errors.append(f"config file {str(path)!r} is not valid YAML: {exc}")
            continue
        if data is None:
            continue
        if not isinstance(data, Mapping):
            errors.append(f"config file {str(path)!r}: the top level must be a mapping, got {type(data).__name__}")
            continue
        merged = merge(merged, data)
    if errors:
        raise ConfigError(errors)
    return expand_env(merged, environ)
