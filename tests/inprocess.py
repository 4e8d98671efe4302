"""A gateway run in the test's own event loop from a YAML text, stopped when the block ends (also on failure)."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

from gateway._host.service import Service


@contextlib.asynccontextmanager
async def running(path: Path, yaml: str) -> AsyncIterator[Service]:
    """Write the dedented ``yaml`` to ``path``, start a gateway from it, and shut it down afterwards."""
    path.write_text(textwrap.dedent(yaml))
    service = Service.from_files([str(path)])
    await service.start()
    try:
        yield service
    finally:
        await service.shutdown()
