"""Relabeling as Prometheus does it: ``relabel_configs`` on targets, ``metric_relabel_configs`` on samples.

Semantics carried over from Prometheus: the regex is fully anchored; ``source_labels`` are joined with
``separator``; ``replacement`` and ``target_label`` expand ``$1``, ``${1}`` and ``$name`` (Go's ``Expand``: a name
is the longest run of letters, digits and underscores, and an unknown group expands to nothing); a replace whose
result is empty deletes the target label; ``hashmod`` sets the target label to the MD5 of the joined value
(its last 8 bytes, big-endian) modulo ``modulus``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from gateway import ConfigError

__all__ = ["ACTIONS", "RelabelConfig", "expand", "relabel"]

ACTIONS = ("replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep", "hashmod")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_GROUP_REF = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+)|(\$))")


@dataclass(frozen=True)
class RelabelConfig:
    #: Labels whose values are joined with separator and matched against regex.
    source_labels: list[str] | None = None
    #: Joins the source labels' values. Default ``;``.
    separator: str = ";"
    #: RE2-style regular expression, anchored at both ends. Default ``(.*)``.
    regex: str = "(.*)"
    #: replace and hashmod: the label written (``$1`` and friends expand in replace).
    target_label: str = ""
    #: replace and labelmap: the value (or label name) written, with ``$1``, ``${name}`` expanded. Default ``$1``.
    replacement: str = "$1"
    #: hashmod: the modulus.
    modulus: int = 0
    #: replace, keep, drop, labelmap, labeldrop, labelkeep or hashmod. Default replace.
    action: str = "replace"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(f"^(?:{self.regex})$", re.DOTALL)

    @cached_property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.source_labels or ())

    def validate(self) -> None:
        errors = []
        if self.action not in ACTIONS:
            errors.append(f"action: must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        try:
            re.compile(self.regex)  # alone first, so the error's position is in the user's regex
            self.pattern  # noqa: B018 - compiles once, here, so a bad regex is a config error
        except re.error as exc:
            errors.append(f"regex: invalid regular expression {self.regex!r}: {exc}")
        if self.action in ("replace", "hashmod") and not self.target_label:
            errors.append(f"target_label: required for action {self.action}")
        if self.action == "hashmod" and self.modulus <= 0:
            errors.append("modulus: must be > 0 for action hashmod")
        if self.action in ("labeldrop", "labelkeep") and (self.source_labels or self.target_label):
            errors.append(f"source_labels and target_label: not allowed for action {self.action}")
        if errors:
            raise ConfigError(errors)


def expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand`` over Python's match: ``$1``, ``${1}``, ``$name``, ``$$``."""
    if "$" not in template:
        return template
    groups = match.re.groupindex

    def group(ref: re.Match[str]) -> str:
        if ref.group(3):
            return "$"
        name = ref.group(1) or ref.group(2)
        if name.isdigit():
            index = int(name)
            return (match.group(index) or "") if index <= match.re.groups else ""
        return (match.group(name) or "") if name in groups else ""

    return _GROUP_REF.sub(group, template)


def relabel(labels: dict[str, str], configs: Sequence[RelabelConfig]) -> dict[str, str] | None:
    """Apply ``configs`` in order to ``labels`` (changed in place); None when the set is dropped."""
    for config in configs:
        action = config.action
        if action in ("labeldrop", "labelkeep"):
            keep = action == "labelkeep"
            for name in [n for n in labels if (config.pattern.match(n) is not None) != keep]:
                del labels[name]
            continue
        if action == "labelmap":
            for name, value in list(labels.items()):
                found = config.pattern.match(name)
                if found is not None:
                    labels[expand(config.replacement, found)] = value
            continue
        value = config.separator.join(labels.get(name, "") for name in config.sources)
        if action == "keep":
            if config.pattern.match(value) is None:
                return None
        elif action == "drop":
            if config.pattern.match(value) is not None:
                return None
        elif action == "hashmod":
            digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
            labels[config.target_label] = str(int.from_bytes(digest[8:], "big") % config.modulus)
        else:  # replace
            found = config.pattern.match(value)
            if found is None:
                continue
            target = expand(config.target_label, found)
            if not _LABEL_NAME.fullmatch(target):
                continue
            result = expand(config.replacement, found)
            if result:
                labels[target] = result
            else:
                labels.pop(target, None)
    return labels
