"""``otelgw ottl`` run as a user runs it: a subprocess on an OTLP/JSON sample file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLE = {"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "checkout"}}]}, "scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "GET /", "kind": 2,
         "attributes": [{"key": "http.route", "value": {"stringValue": "/"}}]},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175", "name": "GET /healthz",
         "kind": 2, "attributes": [{"key": "payload", "value": {"stringValue": "not json"}}]}]}]}]}


def otelgw(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "ottl", *args], capture_output=True, text=True,
                          input=stdin, timeout=60)


def sample(tmp_path: Path) -> str:
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(SAMPLE))
    return str(path)


def test_statement_prints_changed_items_before_and_after(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = otelgw("--context", "span", 'set(attributes["x"], "y") where name == "GET /"', "--input",
                    sample(tmp_path), "--output", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "span 'GET /' trace_id=5b8efff798038103d269b633813fc60c span_id=eee19b7ec3c1b174"
    before, after = json.loads(lines[1][2:]), json.loads(lines[2][2:])
    assert lines[1].startswith("- ") and lines[2].startswith("+ ")
    assert after["attributes"] == before["attributes"] + [{"key": "x", "value": {"stringValue": "y"}}]
    assert lines[3] == "1 of 2 item(s) changed"
    written = json.loads(out.read_text())
    assert written["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][-1]["key"] == "x"


def test_context_inferred_and_stdin() -> None:
    result = otelgw('set(span.attributes["svc"], resource.attributes["service.name"])', stdin=json.dumps(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "2 of 2 item(s) changed"


def test_conditions_show_what_a_filter_would_drop(tmp_path: Path) -> None:
    result = otelgw("--condition", 'span.name == "GET /healthz"', "--input", sample(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("dropped span 'GET /healthz'")
    assert result.stdout.splitlines()[-1] == \
        '1 of 2 item(s) would be dropped (1 by span.name == "GET /healthz")'


def test_a_statement_that_does_not_parse_exits_2_with_a_caret(tmp_path: Path) -> None:
    result = otelgw("--context", "span", 'set(attributes["x"] "y")', "--input", sample(tmp_path))
    assert result.returncode == 2
    assert "unexpected '\"y\"' at column 21" in result.stderr
    assert "        set(attributes[\"x\"] \"y\")\n" + " " * 28 + "^" in result.stderr


def test_run_time_errors_name_statement_and_item_and_exit_1(tmp_path: Path) -> None:
    result = otelgw("--context", "span", 'set(attributes["p"], ParseJSON(attributes["payload"]))', "--input",
                    sample(tmp_path))
    assert result.returncode == 1
    assert "span 'GET /healthz' trace_id=5b8efff798038103d269b633813fc60c span_id=eee19b7ec3c1b175" in result.stderr
    assert "ParseJSON" in result.stderr


def test_input_that_is_not_otlp_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"spans": []}')
    result = otelgw("--context", "span", 'set(name, "x")', "--input", str(path))
    assert result.returncode == 2 and "not an OTLP/JSON request" in result.stderr
