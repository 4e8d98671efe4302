"""configs/k8s/30-node.yaml, the node tier: what it mounts from the host (read-only but its state), how far it
departs from Pod Security "restricted" (exactly hostPath and root, nothing else), and its pipeline run for real
on this machine with the host paths pointed at a test directory: container logs, host metrics and a scraped
pod arrive at an OTLP sink with their Kubernetes identity."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from gateway._host.config import build_config
from gateway._host.registry import load_registry
from gateway._host.service import Service
from gateway.component import ComponentID, Kind, Signal
from gateway.testing.otlp_sink import OtlpSink

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "configs/k8s/30-node.yaml"


def _manifests() -> Any:
    spec = importlib.util.spec_from_file_location("k8s_manifests_for_node", ROOT / "tests/test_k8s_manifests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["k8s_manifests_for_node"] = module
    spec.loader.exec_module(module)
    return module


manifests = _manifests()


def docs() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(NODE.read_text()) if d}


def node_config_text() -> str:
    return str(docs()[("ConfigMap", "otelgw-node")]["data"]["node.yaml"])


def test_the_node_tier_departs_from_restricted_only_by_host_paths_and_root() -> None:
    found = docs()
    namespace = found[("Namespace", "observability-node")]["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["pod-security.kubernetes.io/warn"] == "baseline"
    pod = found[("DaemonSet", "otelgw-node")]["spec"]["template"]["spec"]
    violations = manifests._violations(pod, "node")
    assert sorted(violations) == sorted([
        "node: volume varlogpods is {'hostPath'}", "node: volume hostfs is {'hostPath'}",
        "node: volume hostproc is {'hostPath'}", "node: volume hostsys is {'hostPath'}",
        "node: volume state is {'hostPath'}", "node: runAsUser 0", "node/otelgw: runAsNonRoot must be true",
        "node/otelgw: runAsUser 0"])
    container = pod["containers"][0]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert all("hostPort" not in p for p in container["ports"])


def test_every_host_mount_is_read_only_but_the_state_directory() -> None:
    pod = docs()[("DaemonSet", "otelgw-node")]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    host = {path: volumes[m["name"]]["hostPath"]["path"] for path, m in mounts.items()
            if "hostPath" in volumes[m["name"]]}
    assert host == {"/var/log/pods": "/var/log/pods", "/hostfs": "/", "/hostfs/proc": "/proc",
                    "/hostfs/sys": "/sys", "/var/lib/otelgw-node": "/var/lib/otelgw-node"}
    writable = {path for path, m in mounts.items() if not m.get("readOnly")}
    assert writable == {"/var/lib/otelgw-node", "/tmp"}
    raw = yaml.safe_load(node_config_text())
    assert raw["receivers"]["hostmetrics"]["root_path"] == "/hostfs"
    assert all(f.startswith("/var/log/pods/") for f in raw["receivers"]["filelog"]["include"])
    for name in ("file_storage/filelog", "file_storage/queue"):  # offsets and queue outlive the pod
        assert raw["extensions"][name]["directory"].startswith("/var/lib/otelgw-node/")
    assert raw["receivers"]["filelog"]["storage"] == "file_storage/filelog"
    assert raw["exporters"]["otlp"]["sending_queue"]["storage"] == "file_storage/queue"
    sd = raw["receivers"]["prometheus"]["config"]["scrape_configs"][0]["file_sd_configs"][0]["files"]
    assert all(f.startswith("/etc/otelgw/targets/") for f in sd) and "/etc/otelgw/targets" in mounts
    # it sends to the agent on its node, with a token from its own Secret
    env = {e["name"]: e["valueFrom"] for e in pod["containers"][0]["env"]}
    assert env["AGENT_TOKEN"] == {"secretKeyRef": {"name": "otelgw-node-token", "key": "token"}}
    assert env["K8S_NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert raw["exporters"]["otlp"]["endpoint"] == "otelgw-agent.observability.svc.cluster.local:4317"


@pytest.fixture
def app() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The prometheus_client app of the prometheus receiver's tests, as a pod to scrape."""
    script = ROOT / "tests/plugins/receivers/prometheus/app.py"
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        yield f"127.0.0.1:{int(process.stdout.readline())}", process
    finally:
        process.terminate()
        process.wait(10)


CRI_LINES = [
    "2026-12-06T04:00:00.000000001Z stdout F {\"msg\": \"order placed\", \"level\": \"info\"}",
    "2026-12-06T04:00:00.000000002Z stderr P first half,",
    "2026-12-06T04:00:00.000000003Z stderr F second half",
]


def _local(text: str, tmp_path: Path, sink: OtlpSink, health: int) -> Path:
    """The node config with host paths in tmp_path, this machine as the host, and the sink as the agent."""
    raw = yaml.safe_load(text.replace("/var/log/pods", str(tmp_path / "pods"))
                         .replace("/var/lib/otelgw-node", str(tmp_path / "state"))
                         .replace("/etc/otelgw/targets", str(tmp_path / "targets")))
    raw["extensions"]["health_check"]["endpoint"] = f"127.0.0.1:{health}"
    raw["service"]["telemetry"] = {"metrics": {"address": ""}}
    raw["service"].pop("admin", None)
    raw["receivers"]["filelog"]["start_at"] = "beginning"
    raw["receivers"]["filelog"]["poll_interval"] = "100ms"
    raw["receivers"]["hostmetrics"].update({"root_path": "/", "collection_interval": "1s", "initial_delay": "0s"})
    raw["receivers"]["prometheus"]["config"]["scrape_configs"][0].update(
        {"scrape_interval": "500ms", "scrape_timeout": "500ms"})
    raw["receivers"]["prometheus"]["config"]["scrape_configs"][0]["file_sd_configs"][0]["refresh_interval"] = "1s"
    raw["processors"]["batch"]["timeout"] = "100ms"
    # The pipeline runs inside the test process, whose RSS after the rest of the suite says nothing about this
    # pipeline: the limiter keeps its shipped proportions, above what the process already holds.
    held_mib = psutil.Process().memory_info().rss // 2**20
    raw["processors"]["memory_limiter"].update({"limit_mib": held_mib + 1024, "spike_limit_mib": 256})
    raw["exporters"]["otlp"]["endpoint"] = sink.grpc_endpoint
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _resource_of(batches: list[Any], envelope: str, with_items: bool = False) -> list[dict[str, Any]]:
    return [{kv.key: kv.value.string_value or kv.value.int_value for kv in r.resource.attributes}
            for b in batches for r in getattr(b, envelope)
            if not with_items or any(s.log_records for s in r.scope_logs)]


async def test_the_node_pipeline_collects_logs_host_metrics_and_pods(tmp_path: Path, app: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    address, _ = app
    monkeypatch.setenv("K8S_NODE_NAME", "node-1")
    monkeypatch.setenv("AGENT_TOKEN", "t0ken")
    pod_dir = tmp_path / "pods" / "shop_checkout-7d9f8c6b5-x2x9q_0b6c8f1e-1111-2222-3333-444455556666" / "checkout"
    pod_dir.mkdir(parents=True)
    (pod_dir / "0.log").write_text("\n".join(CRI_LINES) + "\n")
    (tmp_path / "targets").mkdir()
    groups = yaml.safe_load(docs()[("ConfigMap", "otelgw-node-targets")]["data"]["targets.yaml"])
    groups[0]["targets"] = [address]  # the shipped example group, pointing at a real app
    other_node = {**groups[0], "labels": {**groups[0]["labels"], "__meta_kubernetes_pod_node_name": "node-2"}}
    (tmp_path / "targets" / "pods.yaml").write_text(yaml.safe_dump([groups[0], other_node]))
    sink = OtlpSink()
    await sink.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        health = s.getsockname()[1]
    config = _local(node_config_text(), tmp_path, sink, health)
    build_config(yaml.safe_load(config.read_text()), load_registry())
    service = Service.from_files([str(config)])
    try:
        await service.start()
        deadline = time.monotonic() + 90  # a hang guard: on a busy machine the first scrape and flush take a while
        while True:
            logs = [r for b in sink.batches(Signal.LOGS) for rl in b.resource_logs for sl in rl.scope_logs
                    for r in sl.log_records]
            metrics = {m.name for b in sink.batches(Signal.METRICS) for rm in b.resource_metrics
                       for sm in rm.scope_metrics for m in sm.metrics}
            if len(logs) >= 2 and {"system.cpu.time", "app_requests_total"} <= metrics:
                break
            assert time.monotonic() < deadline, (len(logs), sorted(metrics)[:20])
            await asyncio.sleep(0.2)
        assert [r.body.string_value for r in logs] == ['{"msg": "order placed", "level": "info"}',
                                                       "first half,second half"]
        resources = {tuple(sorted(r.items())) for r in _resource_of(sink.batches(Signal.LOGS), "resource_logs",
                                                                    with_items=True)}
        assert len(resources) == 1, resources
        log_attrs = dict(resources.pop())
        assert (log_attrs["k8s.namespace.name"], log_attrs["k8s.pod.name"], log_attrs["k8s.container.name"]) == (
            "shop", "checkout-7d9f8c6b5-x2x9q", "checkout")
        assert log_attrs["k8s.node.name"] == log_attrs["host.name"] == "node-1"
        pods = [r for r in _resource_of(sink.batches(Signal.METRICS), "resource_metrics")
                if r.get("service.name") == "kubernetes-pods"]
        assert pods and {r["service.instance.id"] for r in pods} == {address}  # node-2's pod is not scraped
        scraped = [m for b in sink.batches(Signal.METRICS) for rm in b.resource_metrics for sm in rm.scope_metrics
                   for m in sm.metrics if m.name == "app_requests_total"]
        point_labels = {kv.key: kv.value.string_value for kv in scraped[0].sum.data_points[0].attributes}
        assert point_labels["k8s_pod_name"] == "checkout-7d9f8c6b5-x2x9q" and point_labels["app"] == "checkout"
        assert sink.received(Signal.METRICS)[0].headers["authorization"] == "Bearer t0ken"
    finally:
        await service.shutdown()
        await sink.stop()
    assert (tmp_path / "state" / "filelog").is_dir() and any((tmp_path / "state" / "filelog").iterdir())


def test_the_node_config_loads_as_shipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_NODE_NAME", "node-1")
    monkeypatch.setenv("AGENT_TOKEN", "t")
    raw = yaml.safe_load(node_config_text().replace("/var/lib/otelgw-node", "/tmp"))
    config = build_config(raw, load_registry())
    assert config.get(Kind.RECEIVER, ComponentID("hostmetrics")).config.root_path == "/hostfs"
