"""No secret value is ever printed: every field of ``gateway._host.redact.SECRET_KEYS`` through every output path.

Each secret field gets its own long random value, from the environment as operators write it. The paths, all with
real ``otelgw`` processes: ``otelgw validate`` on a config where the field is mistyped, a YAML syntax error on
the line holding it, the run log at debug level (start-up, requests with right, wrong and malformed credentials,
exporters failing against a closed port), and a rejected reload answered over the admin endpoint and on SIGHUP.
Every byte written is then searched for every secret.
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

from gwproc import GatewayProcess, free_port, http_post

from gateway._host.redact import SECRET_KEYS

#: (environment variable, the key path it is written under). Every SECRET_KEYS entry a shipped component
#: has appears here; test_every_secret_key_is_covered keeps the two lists together.
FIELDS = {
    "T_ADMIN": "service::admin::token",
    "T_BEARER": "extensions::bearertokenauth::token",
    "T_BEARER_LIST": "extensions::bearertokenauth::tokens",
    "T_HTPASSWD": "extensions::basicauth::htpasswd::inline",
    "T_HMAC": "processors::redaction::hmac_key",
    "T_AUTH_HEADER": "exporters::otlphttp::headers::Authorization",
    "T_API_KEY": "exporters::otlp::headers::x-api-key",
}
COVERED_KEYS = {"token", "tokens", "inline", "hmac_key"}


def secret_env() -> dict[str, str]:
    env = {name: f"{name.lower()}-{secrets.token_hex(16)}" for name in FIELDS}
    env["T_HMAC"] += "-" + secrets.token_hex(16)  # hmac-sha256 wants 32 bytes or more
    env["T_HTPASSWD"] = f"alice:{env['T_HTPASSWD']}"
    env["T_AUTH_HEADER"] = f"Bearer {env['T_AUTH_HEADER']}"
    return env


def needles(env: dict[str, str]) -> list[str]:
    """The secret parts to look for: the whole values and the passwords/tokens inside them."""
    found = []
    for value in env.values():
        found.append(value)
        found.append(value.rpartition(":")[2].rpartition(" ")[2])
    return found


def config_text(ports: dict[str, int], broken: str = "") -> str:
    return f"""
extensions:
  health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
  bearertokenauth:
    token: ${{env:T_BEARER}}
    tokens:
      - ${{env:T_BEARER_LIST}}
  basicauth:
    htpasswd:
      inline: ${{env:T_HTPASSWD}}
receivers:
  otlp/bearer:
    protocols:
      http: {{endpoint: "127.0.0.1:{ports['bearer']}", auth: {{authenticator: bearertokenauth}}}}
      grpc: {{endpoint: "127.0.0.1:{ports['bearer_grpc']}", auth: {{authenticator: bearertokenauth}}}}
  otlp/basic:
    protocols:
      http: {{endpoint: "127.0.0.1:{ports['basic']}", auth: {{authenticator: basicauth}}}}
processors:
  redaction:
    allow_all_keys: true
    blocked_values: ["[0-9]{{6}}"]
    hash_function: hmac-sha256
    hmac_key: ${{env:T_HMAC}}
exporters:
  otlphttp:
    endpoint: "http://127.0.0.1:{ports['closed']}"
    retry_on_failure: {{enabled: false}}
    headers:
      Authorization: ${{env:T_AUTH_HEADER}}
  otlp:
    endpoint: "127.0.0.1:{ports['closed']}"
    tls: {{insecure: true}}
    retry_on_failure: {{enabled: false}}
    headers:
      x-api-key: ${{env:T_API_KEY}}
{broken}
service:
  extensions: [health_check, bearertokenauth, basicauth]
  admin: {{endpoint: "127.0.0.1:{ports['admin']}", token: "${{env:T_ADMIN}}"}}
  telemetry:
    logs: {{level: debug}}
    metrics: {{address: "127.0.0.1:{ports['metrics']}"}}
  pipelines:
    traces: {{receivers: [otlp/bearer, otlp/basic], processors: [redaction], exporters: [otlphttp, otlp]}}
"""


def assert_clean(text: str, env: dict[str, str], where: str) -> None:
    leaked = [needle for needle in needles(env) if needle in text]
    assert not leaked, f"{where} printed {leaked}:\n{text[-3000:]}"


def test_every_secret_key_is_covered() -> None:
    # a new entry in SECRET_KEYS that a component uses must get a field above
    assert COVERED_KEYS <= SECRET_KEYS


def otelgw(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60,
                          env=env)


MISTYPED = {  # each secret field written wrong, so that validate reports the field (with its value, if it could)
    "T_ADMIN": ('token: "${env:T_ADMIN}"}', 'token: {oops: "${env:T_ADMIN}"}}'),
    "T_BEARER": ("    token: ${env:T_BEARER}", "    token: [\"${env:T_BEARER}\", {x: 1}]"),
    "T_BEARER_LIST": ("      - ${env:T_BEARER_LIST}", "      - {oops: \"${env:T_BEARER_LIST}\"}"),
    "T_HTPASSWD": ("      inline: ${env:T_HTPASSWD}", "      inline: \"nocolon-${env:T_HTPASSWD}\"\n      x: 1"),
    "T_HMAC": ("    hmac_key: ${env:T_HMAC}", "    hmac_key: [\"${env:T_HMAC}\"]"),
    "T_AUTH_HEADER": ("      Authorization: ${env:T_AUTH_HEADER}",
                      "      Authorization: {a: \"${env:T_AUTH_HEADER}\"}"),
    "T_API_KEY": ("      x-api-key: ${env:T_API_KEY}", "      \"x-api-key\\n\": \"${env:T_API_KEY}\""),
}


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_validate_never_prints_a_mistyped_secret(field: str, tmp_path: Path, monkeypatch) -> None:
    env = secret_env()
    ports = {name: free_port() for name in ("health", "bearer", "bearer_grpc", "basic", "closed", "admin",
                                            "metrics")}
    old, new = MISTYPED[field]
    text = config_text(ports)
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    result = otelgw("validate", "--config", str(path), env={**_base_env(), **env})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "invalid configuration" in result.stderr
    assert_clean(result.stdout + result.stderr, env, f"validate with {FIELDS[field]} mistyped")


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_a_yaml_syntax_error_on_a_secret_line_prints_no_secret(field: str, tmp_path: Path) -> None:
    env = secret_env()
    ports = {name: free_port() for name in ("health", "bearer", "bearer_grpc", "basic", "closed", "admin",
                                            "metrics")}
    literal = config_text(ports)
    for name, value in env.items():  # written into the file itself this time, as some operators do
        literal = literal.replace(f"${{env:{name}}}", value.replace('"', ""))
    line = next(i for i, text in enumerate(literal.splitlines()) if env[field].rpartition(" ")[2] in text)
    lines = literal.splitlines()
    lines[line] += ' "unclosed: [ }'  # a syntax error on the very line that holds the secret
    path = tmp_path / "broken.yaml"
    path.write_text("\n".join(lines))
    result = otelgw("validate", "--config", str(path), env=_base_env())
    assert result.returncode == 2 and "not valid YAML" in result.stderr, result.stderr
    assert_clean(result.stdout + result.stderr, env, "a YAML syntax error")


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("T_")} | {"PYTHONUNBUFFERED": "1"}


def test_a_running_gateway_never_logs_or_answers_a_secret(tmp_path: Path, monkeypatch) -> None:
    env = secret_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ports = {name: free_port() for name in ("health", "bearer", "bearer_grpc", "basic", "closed", "admin",
                                            "metrics")}
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text(ports))
    gateway = GatewayProcess(path, ports, tmp_path / "gateway.log").start()
    try:
        gateway.wait_ready(timeout=60)  # all plugins load first; slow on a busy machine
        bearer = env["T_BEARER"]
        basic = base64.b64encode(env["T_HTPASSWD"].encode()).decode()
        traces = "/v1/traces"
        body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708", "name": "s",
            "attributes": [{"key": "pin", "value": {"stringValue": "123456"}}]}]}]}]}).encode()
        json_type = {"Content-Type": "application/json"}
        for port, authorization, expected in (
                (ports["bearer"], f"Bearer {bearer}", (200, 503)),
                (ports["bearer"], f"Bearer {bearer}x", (401,)),
                (ports["bearer"], f"Bearer {bearer}\u00e9", (401,)),
                (ports["basic"], f"Basic {basic}", (200, 503)),
                (ports["basic"], f"Basic {basic[:-2]}\u2603", (401,))):
            status, _ = http_post(f"http://127.0.0.1:{port}{traces}", body,
                                  {**json_type, "Authorization": authorization.encode().decode("latin-1")})
            assert status in expected, (authorization, status, gateway.log())
        # A malformed request whose header line holds a credential: aiohttp logs the line at debug level.
        with socket.create_connection(("127.0.0.1", ports["bearer"])) as raw:
            raw.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + bearer.encode()
                        + b"\x00\x01\r\nContent-Length: 1\r\n\r\nx")
            raw.settimeout(5)
            with contextlib.suppress(OSError):
                raw.recv(1000)
        # a rejected reload, over the admin endpoint and by SIGHUP
        path.write_text(config_text(ports).replace("    hmac_key: ${env:T_HMAC}", "    hmac_key: [\"${env:T_HMAC}\"]"))
        status, answer = http_post(f"http://127.0.0.1:{ports['admin']}/-/reload", b"{}",
                                   {"Authorization": f"Bearer {env['T_ADMIN']}", **json_type})
        assert status == 400 and b"hmac_key" in answer, (answer, gateway.log())
        assert_clean(answer.decode(), env, "the reload answer")
        gateway.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while gateway.log().count("reload rejected") < 2:
            assert time.monotonic() < deadline, gateway.log()
            time.sleep(0.05)
        assert "hmac_key" in gateway.log()  # the errors are logged in full, only the value is not
    finally:
        code = gateway.stop()
    log = gateway.log_path.read_text(errors="replace")
    assert code == 0, log
    assert '"level": "debug"' in log, log  # the debug path really ran
    # malformed credentials are refused quietly: no error line, no traceback from a receiver
    assert not [line for line in log.splitlines() if '"level": "error"' in line and "otelgw.receiver" in line], log
    assert_clean(log, env, "the gateway's log")


def test_env_values_arrive_as_the_strings_written(tmp_path: Path, monkeypatch) -> None:
    """A token from the environment is the string as written: not re-read as YAML (a comment cut off, a hex
    number turned into 7982), as the Collector does for string fields."""
    monkeypatch.setenv("T_HEX", "0x1F2E")
    monkeypatch.setenv("T_HASH", "s3cr3t #x")
    ports = {"health": free_port(), "http": free_port()}
    path = tmp_path / "gateway.yaml"
    path.write_text(f"""
extensions:
  health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
  bearertokenauth:
    token: ${{env:T_HEX}}
    tokens: ["${{env:T_HASH}}"]
receivers:
  otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}", auth: {{authenticator: bearertokenauth}}}}}}}}
exporters:
  debug: {{verbosity: basic}}
service:
  extensions: [health_check, bearertokenauth]
  telemetry: {{metrics: {{address: ""}}}}
  pipelines: {{traces: {{receivers: [otlp], exporters: [debug]}}}}
""")
    gateway = GatewayProcess(path, ports, tmp_path / "gateway.log").start()
    try:
        gateway.wait_ready()
        url = f"http://127.0.0.1:{ports['http']}/v1/traces"
        results = {token: http_post(url, b"{}", {"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {token}"})[0]
                   for token in ("0x1F2E", "7982", "s3cr3t #x", "s3cr3t")}
        assert results == {"0x1F2E": 200, "7982": 401, "s3cr3t #x": 200, "s3cr3t": 401}
    finally:
        gateway.stop()


def test_print_config_never_prints_a_secret(tmp_path: Path) -> None:
    env = secret_env()
    ports = {name: free_port() for name in ("health", "bearer", "bearer_grpc", "basic", "closed", "admin",
                                            "metrics")}
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(config_text(ports))
    bad.write_text(config_text(ports).replace(*MISTYPED["T_HMAC"]))
    for path, code in ((good, 0), (bad, 2)):
        result = otelgw("print-config", "--config", str(path), env={**_base_env(), **env})
        assert result.returncode == code, result.stderr
        assert "hmac_key" in result.stdout and "<redacted>" in result.stdout
        assert_clean(result.stdout + result.stderr, env, f"print-config of {path.name}")
