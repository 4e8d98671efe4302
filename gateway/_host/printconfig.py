"""``otelgw print-config``: the configuration the gateway would run, after merging and ``${env:}`` expansion.

Secrets never appear: values under secret keys (``gateway._host.redact.is_secret_key``) are replaced by
``<redacted>``, and so is any other string that contains one of those values (a secret copied to another key).
The merged configuration is printed even when it is invalid (that is when one needs to see it); the errors
follow on stderr and the exit code is 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from gateway._host import redact
from gateway._host.confmap import load_files
from gateway._host.registry import load_registry
from gateway._host.service import load_config
from gateway.errors import ConfigError

__all__ = ["merged_config", "print_config"]


def _plain(node: Any, path: tuple[str, ...], secrets: frozenset[str]) -> Any:
    """Plain YAML types (``EnvString`` is a str subclass the safe dumper refuses), secrets masked."""
    if isinstance(node, Mapping):
        return {str(key): _plain(value, (*path, str(key)), secrets) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value, path, secrets) for value in node]
    if redact.is_secret_key(path) and node not in (None, ""):
        return redact.MASK
    if isinstance(node, str):
        text = str(node)
        for secret in secrets:  # a secret copied under another key
            text = text.replace(secret, redact.MASK)
        return text
    return node


def merged_config(paths: Sequence[str]) -> dict[str, Any]:
    """The merged, env-expanded configuration with its secrets masked; raises ``ConfigError`` on unreadable
    files or merge conflicts."""
    raw = load_files(paths)
    redact.register_config(raw)
    secrets = frozenset(s for s in redact.secret_values(raw) if len(s) >= redact.MIN_LENGTH)
    return _plain(raw, (), secrets)  # type: ignore[no-any-return]


def print_config(paths: Sequence[str], print_errors: Callable[[Sequence[str]], None]) -> int:
    merged = merged_config(paths)
    sys.stdout.write(yaml.safe_dump(merged, sort_keys=False, default_flow_style=False, width=120))
    try:
        load_config(paths, load_registry())
    except ConfigError as exc:
        print_errors([redact.redact(m) for m in exc.messages])
        return 2
    return 0
