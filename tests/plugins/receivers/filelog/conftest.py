"""Fixtures of the filelog tests: a real OTLP sink and an in-process gateway exporting to it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent))
from filelog_testlib import Gateway


@pytest.fixture
async def gateway(tmp_path: Path, sink: OtlpSink) -> AsyncIterator[Gateway]:
    gw = Gateway(tmp_path, sink)
    yield gw
    await gw.stop()
