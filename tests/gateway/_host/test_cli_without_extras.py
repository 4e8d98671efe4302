"""``pip install otelgw`` without extras: every command works, and ``otelgw demo`` says which extra it needs.

The test and demo extras (the OpenTelemetry SDK, pytest, hypothesis ...) are installed here, so a child Python
hides them with an import hook, as a machine without them would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXTRAS_ONLY = ("opentelemetry.sdk", "opentelemetry.exporter", "pytest", "hypothesis", "grpc_testing", "aiosmtpd",
               "kubernetes_validate")
HIDE = f"""
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in {EXTRAS_ONLY!r}):
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None
sys.meta_path.insert(0, Hide())
from gateway._host.cli import main
sys.exit(main(sys.argv[1:]))
"""


def otelgw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HIDE, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_every_command_loads_without_the_extras() -> None:
    done = otelgw("--help")
    assert done.returncode == 0, done.stderr
    assert "demo" in done.stdout
    done = otelgw("validate", "--config", "configs/default.yaml")
    assert done.returncode == 0, done.stderr
    done = otelgw("components")
    assert done.returncode == 0, done.stderr
    assert "tail_sampling" in done.stdout


def test_the_demo_names_the_extra_it_needs() -> None:
    done = otelgw("demo", "--duration", "1")
    assert done.returncode == 1
    assert "pip install 'otelgw[demo]'" in done.stderr
    assert "Traceback" not in done.stderr
