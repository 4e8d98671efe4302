from __future__ import annotations

import os
import zlib
from collections import Counter

from plugins.exporters.load_balancing.ring import MAX_POSITIONS, HashRing


def test_positions_are_the_collectors() -> None:
    ring = HashRing(["b:4317", "a:4317"])
    assert ring.endpoints == ["a:4317", "b:4317"]
    expected = {zlib.crc32(b"a:4317" + bytes((i,))) % MAX_POSITIONS for i in range(100)}
    assert expected <= set(ring._positions)
    trace_id = bytes(range(16))
    target = zlib.crc32(trace_id) % MAX_POSITIONS
    following = min((p for p in ring._positions if p >= target), default=ring._positions[0])
    assert ring.endpoint_for(trace_id) == ring._owners[ring._positions.index(following)]


def test_traces_spread_over_every_endpoint() -> None:
    ring = HashRing([f"sampler-{i}:4317" for i in range(3)])
    counts = Counter(ring.endpoint_for(os.urandom(16)) for _ in range(30_000))
    assert set(counts) == set(ring.endpoints)
    assert all(6_000 < n < 14_000 for n in counts.values())


def test_removing_an_endpoint_moves_only_its_traces() -> None:
    full = HashRing(["a:1", "b:1", "c:1"])
    reduced = HashRing(["a:1", "b:1"])
    ids = [os.urandom(16) for _ in range(5_000)]
    for trace_id in ids:
        before = full.endpoint_for(trace_id)
        if before != "c:1":
            assert reduced.endpoint_for(trace_id) == before
