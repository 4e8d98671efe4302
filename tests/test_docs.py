"""The docs the code cites exist: every ``docs/protocols.md §N`` names a section there, every relative link in the
README and docs/ reaches a file (and a heading, when it names one), and no comment cites a doc outside the repo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for top in ("gateway", "plugins", "bench", "tests") for p in (ROOT / top).rglob("*")
           if p.suffix in {".py", ".md"} and "protos" not in p.parts] + sorted((ROOT / "protos").rglob("*.proto"))
_CITATION = re.compile(r"protocols\.md §(\d+(?:\.\d+)?)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def test_every_cited_section_of_protocols_md_exists() -> None:
    numbers = {m.group(1) for line in (ROOT / "docs/protocols.md").read_text().splitlines()
               if (m := re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? ", line))}
    cited = {(str(p.relative_to(ROOT)), n) for p in SOURCES for n in _CITATION.findall(p.read_text())}
    assert cited, "no code cites docs/protocols.md"
    assert [c for c in cited if c[1] not in numbers] == []


def test_no_source_cites_a_doc_outside_the_repository() -> None:
    outside = re.compile(r"(?<![\w/])(conventions\.md|targets\.md|shared/)|(?<!docs/)(?<![\w/])protocols\.md")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in SOURCES if p.name != "test_docs.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if outside.search(line)]
    assert offenders == []


@pytest.mark.parametrize("doc", ["README.md", "docs/architecture.md", "docs/protocols.md", "docs/writing-plugins.md"])
def test_relative_links_resolve(doc: str) -> None:
    source = ROOT / doc
    broken = []
    for target in _LINK.findall(source.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (source.parent / path).resolve() if path else source
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in _headings(file)):
            broken.append(target)
    assert broken == []
