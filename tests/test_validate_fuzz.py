"""``validate`` never ends in a traceback: the shipped configs and the components' testdata, mutated as people
break configs (a value of another type, a deleted key, a section nested one level too deep or too shallow, a
scalar where a mapping belongs), each load either succeeds or raises a ``ConfigError`` whose every message has a
key path. Seeded, so a failure names a mutation that reproduces; a few hundred loads, a few seconds."""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway._host.service import load_config
from gateway.errors import ConfigError

ROOT = Path(__file__).parents[1]
SOURCES = sorted([*ROOT.glob("configs/*.yaml"), *ROOT.glob("configs/kpi/gateway.yaml"),
                  *ROOT.glob("tests/plugins/*/*/testdata/config.yaml")])
#: Values swapped in: every YAML type, plus the shapes that trip decoders (empty, nested, huge, negative).
REPLACEMENTS: list[Any] = [None, 0, -3, 1.5, True, "", "x", "5s", [], [1, "a"], {}, {"a": {"b": 1}}, [[{}]],
                           10**30, "${env:OTELGW_FUZZ_UNSET}"]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def _mutate(config: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str]:
    mutated = copy.deepcopy(config)
    path = rng.choice([p for p in _paths(mutated) if p])
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    value = parent[last]
    operation = rng.choice(["swap", "delete", "wrap_list", "wrap_map", "unwrap", "scalar_section"])
    if operation == "delete":
        del parent[last]
    elif operation == "wrap_list":
        parent[last] = [value]
    elif operation == "wrap_map":
        parent[last] = {"extra": value}
    elif operation == "unwrap" and isinstance(value, dict) and value:
        parent[last] = next(iter(value.values()))
    elif operation == "scalar_section":
        parent[last] = rng.choice(["on", 1, None])
    else:
        operation = "swap"
        parent[last] = copy.deepcopy(rng.choice(REPLACEMENTS))
    return mutated, f"{operation} at {'::'.join(map(str, path))}"


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_mutated_configs_give_clean_errors(source, registry, tmp_path, monkeypatch):
    monkeypatch.delenv("OTELGW_FUZZ_UNSET", raising=False)
    monkeypatch.chdir(source.parent)  # relative paths in testdata resolve as they do for their own tests
    config = yaml.safe_load(source.read_text())
    # a fixed seed per file, so a failure reproduces; OTELGW_FUZZ_SEED and OTELGW_FUZZ_ROUNDS explore further
    rng = random.Random(f"{source.name}-{os.environ.get('OTELGW_FUZZ_SEED', '20')}")
    outcomes = {"valid": 0, "invalid": 0}
    for round_ in range(int(os.environ.get("OTELGW_FUZZ_ROUNDS", "40"))):
        mutated, what = _mutate(config, rng)
        target = tmp_path / f"mutated-{round_}.yaml"
        target.write_text(yaml.safe_dump(mutated, sort_keys=False))
        try:
            load_config([str(target)], registry)
            outcomes["valid"] += 1
        except ConfigError as exc:
            outcomes["invalid"] += 1
            assert exc.messages, what
            for message in exc.messages:
                assert message.strip() and "Traceback" not in message, (what, message)
        except Exception as exc:  # the failure this test exists for
            pytest.fail(f"{source.name}: {what}: {type(exc).__name__}: {exc}")
    assert outcomes["invalid"] > 0  # the mutations do break configs
