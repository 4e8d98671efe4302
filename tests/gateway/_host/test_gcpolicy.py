"""The garbage-collector policy of ``otelgw run``: after a slow full collection, what survived it is frozen, so
later full collections are short however much the gateway holds. In subprocesses: it changes the process."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import gc, json, sys, time
from gateway._host import gcpolicy
if sys.argv[1] == "policy":
    gcpolicy.install()
held = [[i] for i in range(3_000_000)]  # long-lived, tracked objects: the series state of a big registry
started = time.perf_counter(); gc.collect(); took = time.perf_counter() - started
print(json.dumps({"took": took, "frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()[0],
                  "reported": gcpolicy.frozen_objects()}))
"""


def run(mode: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120,
                            check=True)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_slow_full_collection_freezes_the_survivors_so_later_ones_are_short() -> None:
    default, policy = run("default"), run("policy")
    assert default["frozen"] == 0 and policy["frozen"] >= 2_000_000  # frozen during the build-up already
    assert policy["threshold"] == 20_000
    # The gauge's figure is the count taken at the last freeze (a few frozen objects may have been freed or
    # frozen since), and 0 without the policy.
    assert abs(policy["frozen"] - policy["reported"]) <= 100 and default["reported"] == 0
    assert policy["took"] < default["took"] / 5, (default, policy)
