"""``otelgw new-plugin``: for each kind, the package it writes installs into a fresh virtual environment, registers
(``otelgw components`` lists it), passes its own generated tests, and its README's config validates.

One venv for the four kinds (installing otelgw into it is the slow part); each package is a separate install.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway._host import scaffold
from gateway._host.cli import main
from gateway.component import Kind

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from freshvenv import FreshVenv

KINDS = [k.value for k in scaffold.KINDS]
SIGNALS = {"processor": "traces,metrics,logs", "exporter": "traces,metrics,logs", "receiver": "logs",
           "connector": "traces->metrics"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FreshVenv, Path]]:
    """Every kind's package written by the command, then installed (editable, as its README says) in one venv."""
    root = tmp_path_factory.mktemp("new-plugin")
    venv = FreshVenv(root / "venv")
    for kind in KINDS:
        result = venv.run("otelgw", "new-plugin", f"my_{kind}", "--kind", kind, cwd=root)
        assert result.returncode == 0, result.stderr
        assert f"python -m pip install -e ./otelgw-my-{kind}" in result.stdout
    venv.pip_install(*[arg for kind in KINDS for arg in ("-e", str(root / f"otelgw-my-{kind}"))])
    yield venv, root


def test_every_kind_is_listed_by_otelgw_components(installed: tuple[FreshVenv, Path]) -> None:
    venv, _ = installed
    result = venv.run("otelgw", "components")
    assert result.returncode == 0, result.stderr
    for kind in KINDS:
        row = rf"^{kind}\s+my_{kind}\s+development\s+{re.escape(SIGNALS[kind])}\s+-\s+my_{kind}$"
        assert re.search(row, result.stdout, re.M), result.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_the_generated_tests_pass(installed: tuple[FreshVenv, Path], kind: str) -> None:
    venv, root = installed
    result = venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / f"otelgw-my-{kind}"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b[12] passed\b", result.stdout), result.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_the_generated_readme_config_validates(installed: tuple[FreshVenv, Path], kind: str) -> None:
    venv, root = installed
    readme = (root / f"otelgw-my-{kind}" / "README.md").read_text()
    (config,) = re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
    path = root / f"{kind}.yaml"
    path.write_text(config)
    result = venv.run("otelgw", "validate", "--config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_generated_code_imports_only_the_public_api(tmp_path: Path) -> None:
    for kind in scaffold.KINDS:
        target = scaffold.write_plugin(f"x_{kind.value}", kind, tmp_path / kind.value)
        for source in target.rglob("*.py"):
            imports = re.findall(r"^\s*(?:from|import) (gateway[\w.]*)", source.read_text(), re.M)
            assert set(imports) <= {"gateway", "gateway.testing"}, source


@pytest.mark.parametrize("kind", scaffold.KINDS, ids=lambda kind: kind.value)
def test_the_generated_code_passes_its_own_ruff_rules(tmp_path: Path, kind: Kind) -> None:
    """The generated pyproject carries otelgw's lint rules, and the code passes them as generated: an author's
    first `ruff check` shows only what they wrote."""
    target = scaffold.write_plugin(f"my_long_plugin_name_{kind.value}", kind, tmp_path / kind.value)
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--no-cache", "--output-format", "concise", "."], cwd=target,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_name_that_cannot_be_a_type_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new-plugin", "My-Plugin", "--kind", "processor"]) == 2
    assert "invalid plugin name 'My-Plugin'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_kind_without_a_template_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["new-plugin", "ok", "--kind", "extension"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'extension'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="invalid kind"):
        scaffold.write_plugin("ext", Kind.EXTENSION, Path("unused"))


def test_a_directory_that_is_not_empty_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert main(["new-plugin", "mine", "--kind", "exporter", "--dir", str(target)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
