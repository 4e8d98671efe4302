"""``otelgw top`` in a terminal that goes away (an ssh session dropped, a demo killed) ends, instead of spinning
on the end of its input."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from gwproc import free_port


def test_top_ends_when_its_terminal_closes() -> None:
    leader, follower = pty.openpty()
    top = subprocess.Popen([sys.executable, "-m", "gateway", "top", "--admin", f"http://127.0.0.1:{free_port()}",
                            "--token", "unused"], stdin=follower, stdout=follower, stderr=follower,
                           start_new_session=True, env={**os.environ, "TERM": "xterm"})
    os.close(follower)
    try:
        screen = b""
        deadline = time.monotonic() + 60
        while b"otelgw top" not in screen:  # its panel: it is in cbreak mode, reading keys
            assert top.poll() is None and time.monotonic() < deadline, screen.decode(errors="replace")
            with contextlib.suppress(OSError):
                screen += os.read(leader, 65536)
        os.close(leader)
        leader = -1
        top.wait(30)  # generous: what is tested is that it ends at all (it spun at full CPU before)
    finally:
        if top.poll() is None:
            os.killpg(top.pid, signal.SIGKILL)
            top.wait()
        if leader >= 0:
            os.close(leader)
