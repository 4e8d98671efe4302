"""The Collector's dialect, tried as a Collector user tries it: ``otelgw`` run as a real process with configs in
the Collector's documented shapes (config sources and URIs, ``--set``, ``print-config``, ``--version``,
``components --json``, ``--feature-gates``, ``service::telemetry`` readers, resource and logs, tolerations, and a
``validate`` that is a dry run of the config while ``run`` checks the files)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.component import Signal
from gateway.testing.otlp_sink import OtlpSink


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def otelgw(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


MINIMAL = textwrap.dedent("""
    receivers:
      otlp:
        protocols:
          grpc: {endpoint: "127.0.0.1:0"}
    exporters:
      debug: {verbosity: basic}
    service:
      pipelines:
        traces: {receivers: [otlp], exporters: [debug]}
""")


def test_version():
    result = otelgw("--version")
    assert result.returncode == 0 and result.stdout.startswith("otelgw version 0."), result


def test_components_json_lists_every_kind_with_stability():
    result = otelgw("components", "--json")
    listing = json.loads(result.stdout)
    assert listing["buildinfo"]["command"] == "otelgw"
    otlp = next(c for c in listing["receivers"] if c["name"] == "otlp")
    assert otlp["signals"] == ["traces", "metrics", "logs"] and otlp["stability"]
    assert {"otlp_grpc", "debug"} <= {c["name"] for c in listing["exporters"]}
    assert "otlp" in next(c for c in listing["exporters"] if c["name"] == "otlp_grpc")["aliases"]


def test_print_config_merges_uris_and_set_and_redacts_secrets(tmp_path):
    base = write(tmp_path, MINIMAL)
    result = otelgw(
        "print-config", "--config", f"file:{base}", "--config", "env:OTELGW_TEST_EXTRA",
        "--config", "yaml:processors::batch::timeout: 2s",
        "--set", "exporters::debug::verbosity=detailed",
        "--set", "extensions::bearertokenauth::token=hunter2-is-a-secret",
        env={"OTELGW_TEST_EXTRA": "processors: {batch: {send_batch_size: 42}}"})
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    printed = json.loads(json.dumps(__import__("yaml").safe_load(result.stdout)))
    assert printed["processors"] == {"batch": {"send_batch_size": 42, "timeout": "2s"}}
    assert printed["exporters"]["debug"]["verbosity"] == "detailed"
    assert printed["extensions"]["bearertokenauth"]["token"] == "<redacted>"


def test_collector_root_command_runs_and_validate_warns_on_unknown_feature_gates(tmp_path):
    config = write(tmp_path, MINIMAL)
    result = otelgw("validate", "--config", config, "--feature-gates=+confmap.enableMergeAppendOption,-no.such")
    assert result.returncode == 0, result.stderr
    assert "warning: --feature-gates: 'no.such' is unknown to otelgw and ignored" in result.stderr
    assert "enableMergeAppendOption" not in result.stderr
    # `otelcol --config x.yaml` runs; so does `otelgw --config x.yaml` (here stopped by a bad --set at once)
    bad = otelgw("--config", config, "--set", "exporters::debug::verbosity=loud")
    assert bad.returncode == 2 and "exporters::debug::verbosity: must be basic, normal or detailed" in bad.stderr


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # a duplicated key, as the Collector refuses it
        ("exporters:\n  debug: {}\n  debug: {}\n", "line 3, column 3: key 'debug' is repeated"),
        # an unset variable without a default is named where its empty value fails
        (MINIMAL.replace("verbosity: basic", 'verbosity: "${env:OTELGW_TEST_UNSET}"'),
         "exporters::debug::verbosity: must be basic, normal or detailed, got '' (the value came from "
         "${env:OTELGW_TEST_UNSET}, and OTELGW_TEST_UNSET is not set)"),
        # a scalar where a section belongs, a list where a component's settings belong
        (MINIMAL + "processors: 5\n", "processors: expected a mapping of component ids, got int"),
        (MINIMAL.replace("debug: {verbosity: basic}", "debug: [verbosity]"),
         "exporters::debug: expected a mapping of settings, got list"),
        (MINIMAL.replace("service:\n", "service:\n  telemetry: on\n"),
         "service::telemetry: expected a mapping, got bool True"),
        # a list where a policy type belongs
        (MINIMAL + "processors:\n  tail_sampling:\n    policies: [{name: a, type: [latency]}]\n",
         "processors::tail_sampling::policies::0::type: must be one of always_sample, and,"),
    ],
)
def test_validate_errors_are_clean(tmp_path, config, expected):
    result = otelgw("validate", "--config", write(tmp_path, config))
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


LOAD_BALANCING = textwrap.dedent("""
    receivers:
      otlp:
        protocols:
          grpc: {endpoint: "127.0.0.1:0"}
    exporters:
      loadbalancing:
        routing_key: KEY
        protocol: {otlp: {tls: {insecure: true}}}
        resolver: {static: {hostnames: [backend-1, backend-2]}}
    service:
      pipelines:
        SIGNAL/lb: {receivers: [otlp], exporters: [loadbalancing]}
""")


@pytest.mark.parametrize(
    ("signal", "key", "keys"),
    [("traces", "metric", "traceID, service, resource, attributes"),
     ("traces", "streamID", "traceID, service, resource, attributes"),
     ("metrics", "traceID", "service, resource, metric, streamID, attributes"),
     ("logs", "metric", "service, traceID, resource, attributes")],
)
def test_validate_refuses_a_routing_key_the_pipelines_signal_cannot_use(tmp_path, signal, key, keys):
    config = write(tmp_path, LOAD_BALANCING.replace("KEY", key).replace("SIGNAL", signal))
    result = otelgw("validate", "--config", config)
    assert result.returncode == 2, result
    assert (f"exporters::loadbalancing::routing_key: {key} cannot route {signal}; the keys for {signal} are: "
            f"{keys} (in pipeline service::pipelines::{signal}/lb)") in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("signal", "key"), [("traces", "traceID"), ("metrics", "metric"), ("metrics", "streamID"),
                                             ("logs", "traceID"), ("logs", "service")])
def test_validate_accepts_a_routing_key_that_works_for_the_signal(tmp_path, signal, key):
    config = write(tmp_path, LOAD_BALANCING.replace("KEY", key).replace("SIGNAL", signal))
    result = otelgw("validate", "--config", config)
    assert result.returncode == 0, result.stderr


def test_tolerations_warn_and_load(tmp_path):
    config = write(tmp_path, """
        receivers:
          otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}
        processors:
          batch: {timeout: 200000000}
        exporters:
          logging: {loglevel: debug}
        connectors:
          forward: {}
        service:
          pipelines:
            traces: {receivers: [otlp], processors: [batch], exporters: [logging]}
    """)
    result = otelgw("validate", "--config", config)
    assert result.returncode == 0, result.stderr
    assert ("warning: exporters::logging: the logging exporter was removed from the Collector; otelgw runs it as "
            "the debug exporter") in result.stderr
    assert "warning: connectors::forward: not used in any pipeline" in result.stderr
    assert ("warning: processors::batch::timeout: the bare number 200000000 is read as the Collector reads it, "
            "in nanoseconds") in result.stderr


def test_validate_does_not_open_files_and_run_names_the_missing_one(tmp_path):
    config = write(tmp_path, """
        extensions:
          bearertokenauth: {filename: /run/secrets/token}
        receivers:
          otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0", auth: {authenticator: bearertokenauth}}}}
        exporters:
          otlp: {endpoint: "collector:4317", tls: {ca_file: /etc/otelgw/ca.pem}}
        service:
          extensions: [bearertokenauth]
          pipelines:
            traces: {receivers: [otlp], exporters: [otlp]}
    """)
    assert otelgw("validate", "--config", config).returncode == 0
    result = otelgw("run", "--config", config)
    assert result.returncode == 2, result.stderr
    assert "extensions::bearertokenauth::filename: file '/run/secrets/token' does not exist" in result.stderr
    assert "exporters::otlp::tls::ca_file: file '/etc/otelgw/ca.pem' does not exist" in result.stderr


async def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_service_telemetry_readers_resource_and_logs(tmp_path, protocol):
    sink = OtlpSink()
    await sink.start()
    pull_port, grpc_port = free_port(), free_port()
    endpoint = sink.http_endpoint if protocol != "grpc" else f"http://{sink.grpc_endpoint}"
    log_file = tmp_path / "otelgw.log"
    config = write(tmp_path, f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{grpc_port}"}}}}}}
        exporters:
          debug: {{}}
        service:
          telemetry:
            resource: {{service.name: edge-gateway, deployment.environment: test}}
            metrics:
              level: detailed
              readers:
                - pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {pull_port}}}}}}}
                - periodic:
                    interval: 200
                    exporter: {{otlp: {{protocol: {protocol}, endpoint: "{endpoint}", insecure: true,
                                       headers: [{{name: x-tenant, value: gw}}]}}}}
            logs:
              level: info
              encoding: json
              output_paths: ["{log_file}"]
              sampling: {{enabled: true, tick: 10s, initial: 10, thereafter: 100}}
              initial_fields: {{cluster: eu-1}}
            traces:
              level: none
          pipelines:
            traces: {{receivers: [otlp], exporters: [debug]}}
    """)
    process = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", config],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        scraped: list[str] = []

        def served() -> bool:
            text = _scrape(pull_port)
            if text:
                scraped.append(text)
            return bool(text) or process.poll() is not None

        await _wait_for(served, "the pull reader")
        assert process.poll() is None, process.communicate()
        assert 'target_info{' in scraped[-1] and 'service_name="edge-gateway"' in scraped[-1]
        await _wait_for(lambda: sink.received(Signal.METRICS), "the periodic reader's push")
        pushed = sink.received(Signal.METRICS)[0]
        assert pushed.headers.get("x-tenant") == "gw"
        resource = {kv.key: kv.value.string_value for kv in pushed.batch.resource_metrics[0].resource.attributes}
        assert resource["service.name"] == "edge-gateway" and resource["deployment.environment"] == "test"
        names = {m.name for m in pushed.batch.resource_metrics[0].scope_metrics[0].metrics}
        assert "otelcol_receiver_accepted_spans" in names
        await _wait_for(lambda: log_file.exists() and "gateway started" in log_file.read_text(), "the log file")
        started = next(json.loads(line) for line in log_file.read_text().splitlines() if "gateway started" in line)
        assert started["cluster"] == "eu-1"
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        await sink.stop()
    assert process.returncode == 0, stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device whose writes fail")
async def test_a_log_line_that_cannot_be_written_is_reported_on_error_output_paths(tmp_path):
    errors = tmp_path / "log-errors.txt"
    config = write(tmp_path, f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
        exporters:
          debug: {{}}
        service:
          telemetry:
            metrics: {{level: none}}
            logs: {{output_paths: [/dev/full], error_output_paths: ["{errors}"]}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [debug]}}
    """)
    process = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", config],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await _wait_for(lambda: (errors.exists() and "could not be written" in errors.read_text())
                        or process.poll() is not None, "the report of the failed log line")
        assert process.poll() is None, process.communicate()
        assert "otelgw: a log line could not be written: OSError: [Errno 28] No space left on device" in \
            errors.read_text()
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    assert "Traceback" not in stderr
