"""The consistent-hash ring of the Collector's ``loadbalancing`` exporter, so both route a trace id alike.

Each endpoint takes 100 positions on a ring of 36000 (CRC32-IEEE of the endpoint name followed by one byte, 0 to
99, modulo 36000; a position already taken by an earlier endpoint is skipped); endpoints are placed in sorted
order. A trace goes to the endpoint at the first position at or after CRC32-IEEE(trace id) modulo 36000, wrapping
around. Removing an endpoint moves only the traces it owned.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Iterable

__all__ = ["MAX_POSITIONS", "POINTS_PER_ENDPOINT", "HashRing"]

MAX_POSITIONS = 36000
POINTS_PER_ENDPOINT = 100


class HashRing:
    def __init__(self, endpoints: Iterable[str]) -> None:
        self.endpoints = sorted(set(endpoints))
        if not self.endpoints:
            raise ValueError("a hash ring needs at least one endpoint")
        taken: dict[int, str] = {}
        for endpoint in self.endpoints:
            name = endpoint.encode()
            for point in range(POINTS_PER_ENDPOINT):
                taken.setdefault(zlib.crc32(name + bytes((point,))) % MAX_POSITIONS, endpoint)
        self._positions = sorted(taken)
        self._owners = [taken[p] for p in self._positions]

    def endpoint_for(self, trace_id: bytes) -> str:
        index = bisect.bisect_left(self._positions, zlib.crc32(trace_id) % MAX_POSITIONS)
        return self._owners[index if index < len(self._owners) else 0]
