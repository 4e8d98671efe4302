from __future__ import annotations

import subprocess
import sys

import pytest

from gateway._host.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60)


def test_validate_accepts_the_shipped_default_config():
    result = run_cli("validate", "--config", "configs/default.yaml")
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


def test_validate_prints_every_error_with_its_path(write_yaml):
    path = write_yaml("""
        receivers:
          otlp:
            protocols: {grpc: {endpointt: "x"}}
        exporters:
          debug: {verbosity: loud}
        service:
          pipelines:
            traces: {receivers: [otlp], processors: [batch], exporters: [debug]}
    """)
    result = run_cli("validate", "--config", path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "invalid configuration: 3 error(s)"
    assert any(line.strip().startswith("receivers::otlp::protocols::grpc::endpointt: unknown key") for line in lines)
    assert "  exporters::debug::verbosity: must be basic, normal or detailed, got 'loud'" in lines
    assert any("references processor 'batch', which is not configured" in line for line in lines)


def test_several_config_files_merge_later_wins(write_yaml):
    base = write_yaml("""
        receivers: {otlp: }
        exporters: {debug: {verbosity: loud}}
        service: {pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}
    """)
    fix = write_yaml("exporters: {debug: {verbosity: detailed}}")
    assert run_cli("validate", "--config", base).returncode == 2
    assert run_cli("validate", "--config", base, "--config", fix).returncode == 0


def test_env_references_are_expanded(write_yaml, monkeypatch, capsys):
    path = write_yaml("""
        receivers: {otlp: }
        exporters: {debug: {verbosity: "${env:OTELGW_TEST_VERBOSITY:-basic}"}}
        service: {pipelines: {logs: {receivers: [otlp], exporters: [debug]}}}
    """)
    monkeypatch.setenv("OTELGW_TEST_VERBOSITY", "chatty")
    assert main(["validate", "--config", path]) == 2
    assert "got 'chatty'" in capsys.readouterr().err
    monkeypatch.delenv("OTELGW_TEST_VERBOSITY")
    assert main(["validate", "--config", path]) == 0


def test_missing_file_is_a_clear_error(tmp_path):
    result = run_cli("validate", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read config file" in result.stderr


def test_components_lists_every_builtin_type():
    result = run_cli("components")
    assert result.returncode == 0, result.stderr
    rows = {tuple(line.split()[:2]) for line in result.stdout.splitlines()[1:]}
    expected = {("receiver", "otlp"), ("processor", "batch"), ("exporter", "otlp_grpc"), ("exporter", "otlp_http"),
                ("exporter", "debug"), ("exporter", "file"), ("extension", "health_check")}
    assert expected <= rows
    otlp_row = next(line for line in result.stdout.splitlines() if line.split()[:2] == ["exporter", "otlp_grpc"])
    assert "otlp" in otlp_row.split()[4].split(",")


@pytest.mark.parametrize("argv", [[], ["run"], ["frobnicate"]])
def test_usage_errors_exit_non_zero(argv):
    assert run_cli(*argv).returncode != 0


def test_run_logs_what_components_say_while_they_are_created(write_yaml, monkeypatch, capsys):
    """Logging is configured before the graph is built, so a component's start-up warning comes out as JSON
    with the rest (here: redaction says every item will be checked in Python)."""
    import json
    import logging

    from gateway._host.service import Service

    otelgw = logging.getLogger("otelgw")  # configure_logging changes it: put it back afterwards
    monkeypatch.setattr(otelgw, "handlers", list(otelgw.handlers))
    monkeypatch.setattr(otelgw, "propagate", otelgw.propagate)
    monkeypatch.setattr(otelgw, "level", otelgw.level)

    async def run_no_further(self, grace_period=None):
        return 0

    monkeypatch.setattr(Service, "run", run_no_further)
    path = write_yaml("""
        receivers: {otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}}
        processors: {redaction: {allow_all_keys: true, redact_all_types: true, detectors: [email]}}
        exporters: {debug: }
        service:
          telemetry: {metrics: {address: ""}}
          pipelines: {traces: {receivers: [otlp], processors: [redaction], exporters: [debug]}}
    """)
    assert main(["run", "--config", path]) == 0
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert any(r["logger"] == "otelgw.processor.redaction" and "prefilter cannot help" in r["msg"] for r in records)


def test_a_reader_that_leaves_ends_the_command_quietly():
    """``otelgw ... | head``: when the pipe's reader is gone, no error and no traceback, exit 141 as for SIGPIPE."""
    process = subprocess.Popen([sys.executable, "-m", "gateway", "components", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before it writes anything: its first write finds no reader
    try:
        stderr = process.stderr.read().decode()
        assert process.wait(60) == 141, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert stderr == ""
