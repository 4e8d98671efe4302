from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from filelog_testlib import bodies, wait_for


async def test_reads_lines(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\n")
    await gateway.start(f"""
        include: ["{tmp_path}/*.log"]
        start_at: beginning
        poll_interval: 20ms
    """)
    await wait_for(lambda: len(bodies(sink)) == 2)
    with log.open("a") as f:
        f.write("three\n")
    await wait_for(lambda: len(bodies(sink)) == 3)
    assert bodies(sink) == ["one", "two", "three"]
