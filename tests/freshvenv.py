"""A fresh virtual environment with otelgw installed from this repository, offline, for installing plugins as a
user does (``pip install ./my-plugin``) and running ``otelgw`` from it.

otelgw's own dependencies (grpcio, protobuf, ...) and the build backend are taken from the environment running the
tests, through a ``.pth`` file, as ``--system-site-packages`` would take them from the system: nothing is
downloaded, and the venv still gets its own ``site-packages``, its own ``bin/otelgw`` and its own entry points.

Imported by path (the suite runs with --import-mode=importlib): ``sys.path.insert(0, <tests dir>)``.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class FreshVenv:
    def __init__(self, path: Path) -> None:
        self.path = path
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        purelib = self.python_output("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
        # addsitedir, not a plain path line: the test environment's own .pth files (otelgw's editable install
        # among them) must be processed too.
        parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
        Path(purelib, "_test_environment.pth").write_text(
            "".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
        self.pip_install("--no-deps", "-e", str(ROOT))

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process run from this venv, as ``source bin/activate`` makes it."""
        return {**os.environ, "VIRTUAL_ENV": str(self.path), "PATH": f"{self.path / 'bin'}:{os.environ['PATH']}",
                "PYTHONUNBUFFERED": "1"}

    def python_output(self, code: str) -> str:
        return subprocess.run([str(self.bin("python")), "-c", code], check=True, capture_output=True,
                              text=True).stdout

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``args[0]`` from the venv's ``bin`` (``otelgw``, ``python``); output captured, never raises."""
        return subprocess.run([str(self.bin(args[0])), *args[1:]], cwd=cwd, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def shell(self, command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """A shell command line as typed after ``source bin/activate``; pip stays offline (no index; the build
        backend from the test env)."""
        return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**self.env, "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"})

    def pip_install(self, *args: str) -> None:
        """``pip install`` offline: no index, no build isolation (the build backend comes from the test env)."""
        result = self.run("python", "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation",
                          "--disable-pip-version-check", *args)
        if result.returncode != 0:
            raise AssertionError(f"pip install {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
