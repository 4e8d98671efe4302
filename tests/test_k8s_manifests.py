"""configs/k8s: every manifest parses and passes kubernetes-validate in strict mode; one apply works (a
Kustomization, and numbered files for -f, the namespace first); every pod passes Pod Security "restricted" (checked
rule by rule below); and the wiring holds: ports, probes, config mounted as a watched directory, writable volumes,
downward-API env, memory limits matched to memory_limiter, PDB and NetworkPolicies on the right pods, and the
agents' load_balancing targets are the gateway replicas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.config import build_config
from gateway._host.confmap import load_files
from gateway._host.registry import load_registry
from gateway.component import ComponentID, Kind

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
    config_path = Path(container["args"][container["args"].index("--config") + 1])
    # mounted as a directory (a subPath mount would never see a ConfigMap update)
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    assert "subPath" not in mount
    volume = next(v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    config_map = find("ConfigMap", volume["configMap"]["name"])
    text = config_map["data"][config_path.name]
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
            # the node tier (30-node.yaml) has a namespace of its own: it mounts the host (tests/test_k8s_node.py)
            assert doc["metadata"]["namespace"] in ("observability", "observability-node")


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


def test_agent_is_on_every_node_behind_a_node_local_service_with_node_identity() -> None:
    agent = find("DaemonSet", "otelgw-agent")
    container = agent["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p for p in container["ports"]}
    assert not any("hostPort" in p for p in ports.values())  # forbidden by Pod Security baseline and restricted
    service = find("Service", "otelgw-agent")
    assert service["spec"]["internalTrafficPolicy"] == "Local"  # an app reaches the agent on its own node
    assert service["spec"]["selector"].items() <= agent["spec"]["template"]["metadata"]["labels"].items()
    assert {(p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {(4317, "otlp-grpc"),
                                                                                 (4318, "otlp-http")}
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert env == {"K8S_NODE_NAME": "spec.nodeName", "K8S_POD_IP": "status.podIP"}
    text = find("ConfigMap", "otelgw-agent")["data"]["agent.yaml"]  # mounted at /etc/otelgw/config/agent.yaml
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


WORKLOADS = [("DaemonSet", "otelgw-agent"), ("StatefulSet", "otelgw-gateway")]


def test_every_manifest_passes_kubernetes_validate_strict() -> None:
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_one_apply_creates_the_namespace_first() -> None:
    files = sorted(p.name for p in K8S.glob("*.yaml"))
    # kubectl apply -f configs/k8s/ reads files in name order
    first = [d for d in yaml.safe_load_all((K8S / files[0]).read_text()) if d]
    assert [d["kind"] for d in first] == ["Namespace"]
    # kubectl apply -k configs/k8s/: every manifest, the namespace first; the file has no .yaml extension so -f
    # does not try to apply it as an object
    kustomization = yaml.safe_load((K8S / "Kustomization").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["resources"] == files
    assert not list(K8S.glob("kustomization.y*ml"))


def _violations(pod: dict[str, Any], where: str) -> list[str]:
    """Pod Security Standards, "baseline" and "restricted" (Kubernetes 1.25+), checked on one pod spec."""
    found = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found.append(f"{where}: {key}")
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= allowed_volumes:
            found.append(f"{where}: volume {volume['name']} is {kinds - allowed_volumes}")
    pod_context = pod.get("securityContext", {})
    if pod_context.get("runAsUser") == 0:
        found.append(f"{where}: runAsUser 0")
    for sysctl in pod_context.get("sysctls", []):
        found.append(f"{where}: sysctl {sysctl['name']}")
    containers = pod.get("containers", []) + pod.get("initContainers", []) + pod.get("ephemeralContainers", [])
    for container in containers:
        at = f"{where}/{container['name']}"
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{at}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{at}: allowPrivilegeEscalation must be false")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            found.append(f"{at}: runAsNonRoot must be true")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"{at}: runAsUser 0")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{at}: seccompProfile must be RuntimeDefault or Localhost, got {seccomp}")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{at}: capabilities must drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{at}: adds capabilities {capabilities['add']}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{at}: procMount")
        if any("hostPort" in port for port in container.get("ports", [])):
            found.append(f"{at}: hostPort")
        selinux = context.get("seLinuxOptions", {})
        if selinux.get("type") not in (None, "", "container_t", "container_init_t", "container_kvm_t"):
            found.append(f"{at}: seLinuxOptions type")
        if context.get("appArmorProfile", {}).get("type") == "Unconfined":
            found.append(f"{at}: AppArmor unconfined")
    return found


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_pods_pass_the_restricted_profile_their_namespace_enforces(kind: str, name: str) -> None:
    workload = find(kind, name)
    namespace = find("Namespace", workload["metadata"]["namespace"])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert _violations(workload["spec"]["template"]["spec"], f"{kind}/{name}") == []


def test_the_restricted_check_catches_what_the_profile_forbids() -> None:
    bad = {"hostNetwork": True, "volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}],
           "containers": [{"name": "c", "ports": [{"containerPort": 1, "hostPort": 1}],
                           "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}
    found = " ".join(_violations(bad, "pod"))
    for rule in ("hostNetwork", "hostPath", "allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile",
                 "drop ALL", "SYS_ADMIN", "hostPort"):
        assert rule in found, rule


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_read_only_root_with_writable_volumes_pinned_image_and_a_watched_config(
        kind: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workload = find(kind, name)
    pod = workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 10001  # the image's user
    _image, _, tag = container["image"].partition(":")
    assert tag and tag != "latest", container["image"]
    assert container["imagePullPolicy"] in ("IfNotPresent", "Always")
    assert "--watch-config" in container["args"]  # a ConfigMap change is reloaded
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        assert mount["name"] in volumes or mount["name"] in claims
        if not mount.get("readOnly"):
            volume = volumes.get(mount["name"], {})
            assert "emptyDir" in volume or mount["name"] in claims, mount
    # every path the gateway writes is on a writable volume: the state dir (admin token) and queue directories
    assert "/var/lib/otelgw" in writable
    config = load_gateway_config(workload, tmp_path, monkeypatch)
    raw_config = config.raw
    for cid, extension in (raw_config.get("extensions") or {}).items():
        if str(cid).startswith("file_storage"):
            directory = Path(str(extension["directory"]).replace(str(tmp_path), "/var/lib/otelgw"))
            assert any(directory == Path(w) or Path(w) in directory.parents for w in writable), directory


def test_the_gateway_tier_has_a_disruption_budget_and_both_tiers_a_network_policy() -> None:
    gateway = find("StatefulSet", "otelgw-gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    budget = find("PodDisruptionBudget", "otelgw-gateway")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] < gateway["spec"]["replicas"]
    for kind, name in WORKLOADS:
        workload = find(kind, name)
        policy = find("NetworkPolicy", name)
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= \
            workload["spec"]["template"]["metadata"]["labels"].items()
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        opened = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        declared = {p["containerPort"] for p in workload["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert opened == declared, (name, opened, declared)
    # the gateway takes OTLP from the agents only
    otlp_rule = next(r for r in find("NetworkPolicy", "otelgw-gateway")["spec"]["ingress"]
                     if {"port": 4317, "protocol": "TCP"} in r["ports"])
    assert otlp_rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "otelgw-agent"}}}]
