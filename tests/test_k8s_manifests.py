"""configs/k8s: every manifest parses, and the wiring holds: ports, probes, config mounts, downward-API env,
memory limits matched to memory_limiter, and the agents' load_balancing targets are the gateway replicas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.component import ComponentID, Kind
from gateway.config import build_config
from gateway.confmap import load_files
from gateway.registry import load_registry

K8S = Path(__file__).parents[1] / "configs" / "k8s"


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def mib(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def load_gateway_config(workload: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    container = workload["spec"]["template"]["spec"]["containers"][0]
    config_path = container["args"][container["args"].index("--config") + 1]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == config_path)
    volume = next(v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    config_map = find("ConfigMap", volume["configMap"]["name"])
    text = config_map["data"][mount["subPath"]]
    for env in container["env"]:
        monkeypatch.setenv(env["name"], env.get("value", "from-downward-api"))
    token_file = tmp_path / "tokens"
    token_file.write_text("t\n")
    text = text.replace("/etc/otelgw/tokens/tokens", str(token_file)).replace("/var/lib/otelgw", str(tmp_path))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return build_config(load_files([str(path)]), load_registry())


def test_every_manifest_parses_and_is_namespaced() -> None:
    docs = documents()
    assert {d["kind"] for d in docs} >= {"Namespace", "DaemonSet", "StatefulSet", "Service", "ConfigMap",
                                         "ServiceAccount"}
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "observability"


@pytest.mark.parametrize(("kind", "name"), [("DaemonSet", "otelgw-agent"), ("StatefulSet", "otelgw-gateway")])
def test_workload_wiring(kind: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workload = find(kind, name)
    pod = workload["spec"]["template"]["spec"]
    assert workload["spec"]["selector"]["matchLabels"].items() <= workload["spec"]["template"]["metadata"][
        "labels"].items()
    find("ServiceAccount", pod["serviceAccountName"])
    container = pod["containers"][0]
    config = load_gateway_config(workload, tmp_path, monkeypatch)  # the mounted pipeline is a valid config
    ports = {p["name"]: p for p in container["ports"]}
    health = config.get(Kind.EXTENSION, ComponentID("health_check")).config
    assert ports["health"]["containerPort"] == int(health.endpoint.rsplit(":", 1)[1])
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "health"}
    assert ports["metrics"]["containerPort"] == int(config.telemetry.metrics.address.rsplit(":", 1)[1])
    otlp = config.get(Kind.RECEIVER, ComponentID("otlp")).config.protocols
    assert ports["otlp-grpc"]["containerPort"] == int(otlp.grpc.endpoint.rsplit(":", 1)[1]) == 4317
    limiter = config.get(Kind.PROCESSOR, ComponentID("memory_limiter")).config
    limit = mib(container["resources"]["limits"]["memory"])
    assert container["resources"]["requests"]["memory"] == container["resources"]["limits"]["memory"]
    assert limiter.limit_mib <= 0.85 * limit  # refuses well before the OOM killer
    for pipeline in config.pipelines.values():
        assert pipeline.processors[0] == ComponentID("memory_limiter")  # first, as it must be
    assert pod["terminationGracePeriodSeconds"] > float(container["args"][container["args"].index(
        "--grace-period") + 1])


def test_agent_is_on_every_node_with_host_ports_and_node_identity() -> None:
    agent = find("DaemonSet", "otelgw-agent")
    container = agent["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p for p in container["ports"]}
    assert (ports["otlp-grpc"]["hostPort"], ports["otlp-http"]["hostPort"]) == (4317, 4318)
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert env == {"K8S_NODE_NAME": "spec.nodeName", "K8S_POD_IP": "status.podIP"}
    text = find("ConfigMap", "otelgw-agent")["data"]["agent.yaml"]
    assert "${env:K8S_NODE_NAME}" in text and "${env:K8S_POD_IP}" in text


def test_agents_load_balance_to_every_gateway_replica(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = find("StatefulSet", "otelgw-gateway")
    service = find("Service", gateway["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS name per replica
    assert service["spec"]["selector"].items() <= gateway["spec"]["template"]["metadata"]["labels"].items()
    config = load_gateway_config(find("DaemonSet", "otelgw-agent"), tmp_path, monkeypatch)
    balancer = config.get(Kind.EXPORTER, ComponentID("load_balancing")).config
    namespace = gateway["metadata"]["namespace"]
    # The dns resolver on the headless Service: its name resolves to the ready replicas' IPs, so scaling the
    # StatefulSet needs no agent change.
    assert balancer.resolver.static is None
    assert balancer.resolver.dns.hostname == f"{service['metadata']['name']}.{namespace}.svc.cluster.local"
    assert balancer.resolver.dns.port == service["spec"]["ports"][0]["port"] == 4317
    assert service["spec"].get("publishNotReadyAddresses", False) is False  # only ready replicas get traffic
    queue_mount = next(m for m in gateway["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
                       if m["name"] == "queue")
    assert queue_mount["mountPath"] == "/var/lib/otelgw/queue"
    assert gateway["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "queue"
