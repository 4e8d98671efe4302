"""SIGKILL at random points: during ingestion through tail_sampling storage and a persistent queue, and during a
persistent queue's replay. Every acknowledged span must arrive (duplicates are counted and printed).

`make test` runs one seed of each case; `make faults` runs ``OTELGW_FAULT_RUNS`` (20) seeds. The seed of a run
is its index (``OTELGW_FAULT_SEED_BASE`` shifts them), so a failing run is repeated with the same numbers.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from durability import kill_during_ingestion, kill_during_replay

SEEDS = range(int(os.environ.get("OTELGW_FAULT_RUNS", "1")))
BASE = int(os.environ.get("OTELGW_FAULT_SEED_BASE", "0"))


@pytest.mark.parametrize("seed", SEEDS)
async def test_sigkill_at_a_random_point_of_ingestion_through_tail_sampling_storage(tmp_path: Path,
                                                                                     seed: int) -> None:
    rng = random.Random(f"ingestion-{BASE + seed}")
    after, delay = rng.randint(1, 80), rng.uniform(0.0, 1.5)
    print(f"seed {BASE + seed}: kill after {after} acknowledged requests + {delay:.3f}s")
    lost, _duplicates = await kill_during_ingestion(tmp_path, after_requests=after, extra_delay=delay)
    assert lost == 0


@pytest.mark.parametrize("seed", SEEDS)
async def test_sigkill_at_a_random_point_of_a_persistent_queue_replay(tmp_path: Path, seed: int) -> None:
    rng = random.Random(f"replay-{BASE + seed}")
    after_spans = rng.randint(1, 4000)
    print(f"seed {BASE + seed}: kill during replay after {after_spans} spans arrived")
    lost, _duplicates = await kill_during_replay(tmp_path, after_spans=after_spans)
    assert lost == 0
