"""Fixtures for the redaction tests: the PII corpus and a factory of processors driven in isolation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.testing import Sink, settings_for
from plugins.processors.redaction import hyperscan_scanner, rules
from plugins.processors.redaction.factory import factory
from plugins.processors.redaction.hyperscan_scanner import HyperscanScanner
from plugins.processors.redaction.prefilter import Scanner

TESTDATA = Path(__file__).parent / "testdata"
KEY = "k" * 32  # a 32-byte HMAC key, as hmac-sha256 requires


def corpus_entries(section: dict[str, list[Any]]) -> list[tuple[str, str, str]]:
    """(detector, text as sent, secret that must vanish) for every corpus entry."""
    out = []
    for detector, entries in section.items():
        for entry in entries:
            text, secret = (entry["text"], entry["secret"]) if isinstance(entry, dict) else (str(entry), str(entry))
            out.append((detector, text, secret))
    return out


ENGINES = {"re": Scanner, "hyperscan": HyperscanScanner}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each prefilter engine in turn: its scanner class, and processors built meanwhile use it."""
    if request.param == "hyperscan" and not hyperscan_scanner.AVAILABLE:
        pytest.skip("hyperscan is not installed: it has no wheel for this platform")
    monkeypatch.setattr(rules, "ENGINE", request.param)
    return ENGINES[request.param]


@pytest.fixture(scope="session")
def corpus() -> dict[str, Any]:
    data = yaml.safe_load((TESTDATA / "pii_corpus.yaml").read_text(encoding="utf-8"))
    return {"pii": corpus_entries(data["pii"]), "clean": [str(v) for v in data["clean"]]}


@pytest.fixture
def make_processor(engine: Any):
    """make_processor(config_dict, signal=Signal.TRACES) -> (processor, sink, telemetry), on each engine."""

    def make(config: dict[str, Any], signal: Signal = Signal.TRACES) -> Any:
        cfg = decode(factory.create_default_config(), config)
        assert validate_tree(cfg) == []
        telemetry = Telemetry()
        sink = Sink()
        settings = settings_for(Kind.PROCESSOR, "redaction", signal, telemetry)
        processor = factory.create_fn(signal)(settings, cfg, sink)  # type: ignore[misc]
        return processor, sink, telemetry

    return make
