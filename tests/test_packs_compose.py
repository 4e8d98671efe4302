"""Config files compose: every documented combination of the shipped configs merges into pipelines that keep
every processor (redaction first wherever OTLP comes in), `otelgw print-config` shows the result without a
secret, and configs/prometheus/rules.yml is exactly what the alert packs export."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gateway._host.cli import main
from gateway._host.confmap import load_files
from gateway._host.packs import ordered_union
from gateway._host.registry import load_registry
from gateway._host.service import load_config
from gateway.errors import ConfigError
from plugins.processors.alerts.cli_rules import export

ROOT = Path(__file__).resolve().parent.parent
KPI = [f"configs/kpi/{name}.yaml" for name in ("gateway", "callcenter", "llm_agent", "crm")]
ALERTS = [f"configs/alerts/{name}.yaml" for name in ("api", "callcenter", "llm_agent", "crm")]
REDACTION, SAMPLING = "configs/redaction.yaml", "configs/tail_sampling.yaml"
KEY = "0123456789abcdef" * 4

#: The combinations the READMEs document, with the processors each pipeline must end up with.
COMBINATIONS: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "kpi packs": (KPI, {"traces": [], "logs": [], "metrics/spanmetrics": [], "metrics/kpi_crm": []}),
    "kpi and alert packs": (KPI + ALERTS, {
        "traces": [], "metrics/spanmetrics": ["alerts/api"], "metrics/kpi_callcenter": ["alerts/callcenter"],
        "metrics/kpi_llm_agent": ["alerts/llm_agent"], "metrics/kpi_crm": ["alerts/crm"]}),
    "redaction and tail sampling": ([REDACTION, SAMPLING], {
        "traces": ["redaction", "batch"], "traces/sampled": ["tail_sampling", "batch"],
        "metrics": ["redaction", "batch"], "logs": ["redaction", "batch"]}),
    "tail sampling then redaction": ([SAMPLING, REDACTION], {
        "traces": ["redaction", "batch"], "traces/sampled": ["tail_sampling", "batch"]}),
    "everything": (KPI + ALERTS + [REDACTION, SAMPLING], {
        "traces": ["redaction", "batch"], "logs": ["redaction", "batch"], "metrics": ["redaction", "batch"],
        "traces/sampled": ["tail_sampling", "batch"], "metrics/spanmetrics": ["alerts/api"],
        "metrics/kpi_callcenter": ["alerts/callcenter"], "metrics/kpi_llm_agent": ["alerts/llm_agent"],
        "metrics/kpi_crm": ["alerts/crm"]}),
    "redaction first, then everything": ([REDACTION, *KPI, *ALERTS, SAMPLING], {
        "traces": ["redaction", "batch"], "logs": ["redaction", "batch"],
        "traces/sampled": ["tail_sampling", "batch"], "metrics/kpi_crm": ["alerts/crm"]}),
}


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_documented_combination_keeps_every_processor(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDACTION_KEY", KEY)
    files, expected = COMBINATIONS[name]
    config = load_config([str(ROOT / f) for f in files], load_registry())
    pipelines = {str(pid): pipeline for pid, pipeline in config.pipelines.items()}
    for pid, processors in expected.items():
        assert [str(p) for p in pipelines[pid].processors] == processors, pid
    # Every processor and connector configured is used by some pipeline: nothing merged ends up nowhere.
    used = {str(c) for p in pipelines.values() for c in [*p.processors, *p.exporters, *p.receivers]}
    raw = load_files([str(ROOT / f) for f in files])
    for section in ("processors", "connectors"):
        assert set(raw.get(section) or {}) <= used, section
    if REDACTION in files:
        # Redaction comes first wherever OTLP comes in, so every connector and exporter reads redacted data.
        for pid, pipeline in pipelines.items():
            if "otlp" in {str(r) for r in pipeline.receivers}:
                assert [str(p) for p in pipeline.processors][:1] == ["redaction"], pid
    if SAMPLING in files and "configs/kpi/gateway.yaml" in files:
        # KPIs count every span: their connectors hang on `traces`, before sampling.
        assert {"spanmetrics", "kpi/callcenter", "forward/sampling"} <= {str(e) for e in pipelines["traces"].exporters}


def test_lists_that_name_components_add_up(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("service: {extensions: [health_check], pipelines: {traces: {receivers: [otlp], "
                                     "processors: [memory_limiter, redaction, batch], exporters: [debug]}}}\n"
                                     "processors: {tail_sampling: {policies: [{name: a}]}}\n")
    (tmp_path / "b.yaml").write_text("service: {extensions: [health_check, file_storage], pipelines: {traces: {"
                                     "receivers: [otlp, otlp/2], processors: [tail_sampling, batch], "
                                     "exporters: [otlp]}}}\n"
                                     "processors: {tail_sampling: {policies: [{name: b}]}}\n")
    merged = load_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    traces = merged["service"]["pipelines"]["traces"]
    assert merged["service"]["extensions"] == ["health_check", "file_storage"]
    assert traces["receivers"] == ["otlp", "otlp/2"] and traces["exporters"] == ["debug", "otlp"]
    assert traces["processors"] == ["memory_limiter", "redaction", "tail_sampling", "batch"]
    assert merged["processors"]["tail_sampling"]["policies"] == [{"name": "b"}]  # other lists are replaced


def test_processors_in_opposite_orders_are_an_error_with_the_key_path(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("service: {pipelines: {logs: {processors: [redaction, batch]}}}\n")
    (tmp_path / "b.yaml").write_text("service: {pipelines: {logs: {processors: [batch, redaction]}}}\n")
    with pytest.raises(ConfigError) as error:
        load_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert error.value.messages[0].startswith("service::pipelines::logs::processors: the merged files order")


@pytest.mark.parametrize(("first", "second", "merged"), [
    (["a", "b"], ["c", "b"], ["a", "c", "b"]),
    (["a", "x", "b"], ["a", "y", "b"], ["a", "x", "y", "b"]),
    ([], ["x"], ["x"]),
    (["x"], [], ["x"]),
    (["a", "b"], ["a", "b"], ["a", "b"]),
    (["b"], ["a", "b", "c"], ["a", "b", "c"]),
])
def test_ordered_union(first: list[str], second: list[str], merged: list[str]) -> None:
    assert ordered_union(first, second) == (merged, None)
    assert ordered_union(["a", "b", "c"], ["c", "a"])[1] == ("a", "c")


def test_print_config_shows_the_merged_pipelines_without_secrets(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDACTION_KEY", KEY)
    files = [str(ROOT / f) for f in COMBINATIONS["everything"][0]]
    assert main(["print-config", *[a for f in files for a in ("--config", f)]]) == 0
    out = capsys.readouterr().out
    assert KEY not in out and "hmac_key: <redacted>" in out
    assert "api_key: mask" in out  # a detector's action is no secret
    import yaml

    shown = yaml.safe_load(out)["service"]["pipelines"]
    assert shown["traces"]["processors"] == ["redaction", "batch"]
    assert "forward/sampling" in shown["traces"]["exporters"]


def test_print_config_of_an_invalid_config_prints_it_and_the_errors(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("REDACTION_KEY", raising=False)
    assert main(["print-config", "--config", str(ROOT / REDACTION)]) == 2
    captured = capsys.readouterr()
    assert "redaction" in captured.out and "hmac_key: required" in captured.err


def test_shipped_prometheus_rules_are_generated_from_the_alert_packs() -> None:
    generated = export([str(ROOT / f) for f in KPI + ALERTS], [str(ROOT / "configs/prometheus/extra.yml")])
    shipped = (ROOT / "configs/prometheus/rules.yml").read_text()
    assert generated == shipped, "configs/prometheus/rules.yml drifted from configs/alerts/: run `make rules`"


def test_every_pack_alert_is_exported_once_with_its_severity() -> None:
    import yaml

    rules = yaml.safe_load((ROOT / "configs/prometheus/rules.yml").read_text())
    exported = sorted((r["alert"], r["labels"]["severity"]) for g in rules["groups"] for r in g["rules"]
                      if "alert" in r and not r["alert"].startswith(("Otelgw", "SLOBurnRate")))
    packs = []
    for pack in ALERTS:
        for processor in yaml.safe_load((ROOT / pack).read_text())["processors"].values():
            packs += [(r["alert"], r.get("severity", "warning")) for r in processor["rules"]]
    assert exported == sorted(packs)


def test_an_alert_defined_twice_is_refused(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yml"
    extra.write_text("groups: [{name: x, rules: [{alert: CallCenterQueueBacklog, expr: up == 0}]}]\n")
    with pytest.raises(ConfigError) as error:
        export([str(ROOT / f) for f in KPI + ALERTS], [str(extra)])
    assert "CallCenterQueueBacklog" in error.value.messages[0]


def test_an_alert_on_a_metric_no_connector_derives_is_refused(tmp_path: Path) -> None:
    pack = tmp_path / "pack.yaml"
    pack.write_text("processors: {alerts/x: {rules: [{alert: X, metric: no.such.metric, op: gt, threshold: 1}]}}\n")
    with pytest.raises(ConfigError) as error:
        export([str(ROOT / "configs/kpi/gateway.yaml"), str(pack)], [])
    assert error.value.messages == ["processors::alerts/x::rules::0::metric: 'no.such.metric' is derived by no kpi "
                                    "or span_metrics connector of this configuration, so its Prometheus name is "
                                    "not known"]


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus; "
                                             "tests/install-test-servers.sh installs it)")
def test_promtool_accepts_the_exported_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(export([str(ROOT / f) for f in KPI + ALERTS], [str(ROOT / "configs/prometheus/extra.yml")]))
    result = subprocess.run([str(PROMTOOL), "check", "rules", str(path)], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


RATIO_PACK = """
connectors:
  kpi/support:
    kpis:
      - name: support.handoff
        type: ratio
        unit: "1"
        numerator: {attributes: {reason: {exists: true}}}
        labels: [{name: agent}, {name: reason, numerator_only: true}]
processors:
  alerts/support:
    rules:
      - {alert: HandoffByReason, metric: support.handoff, aggregation: last, window: 5m, op: gt, threshold: 0.2,
         group_by: [agent, reason]}
      - {alert: HandoffPerSeries, metric: support.handoff, aggregation: last, window: 5m, op: gt, threshold: 0.2,
         match: {reason: price}}
      - {alert: Handoff, metric: support.handoff, aggregation: last, window: 5m, op: gt, threshold: 0.2,
         group_by: [agent]}
"""

#: Two replicas' parts: bot's turns 10 + 30, hand-offs for price 1 + 9, for anger 2 + 0; each replica alone
#: would say 10% and 30% for price.
RATIO_SERIES = """
- {series: 'support_handoff_numerator{agent="bot", reason="price", instance="a"}', values: '1x5'}
- {series: 'support_handoff_numerator{agent="bot", reason="price", instance="b"}', values: '9x5'}
- {series: 'support_handoff_numerator{agent="bot", reason="anger", instance="a"}', values: '2x5'}
- {series: 'support_handoff_denominator{agent="bot", instance="a"}', values: '10x5'}
- {series: 'support_handoff_denominator{agent="bot", instance="b"}', values: '30x5'}
"""


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus; "
                                             "tests/install-test-servers.sh installs it)")
def test_a_ratio_rule_divides_the_replicas_summed_parts_in_prometheus(tmp_path: Path) -> None:
    """A ratio KPI's rule reads its numerator and denominator summed over the replicas; grouped by a label only
    the numerator has, each group is divided by its own denominator (promtool evaluates the exported rules)."""
    import yaml

    pack = tmp_path / "pack.yaml"
    pack.write_text(RATIO_PACK)
    rules = yaml.safe_load(export([str(pack)], []))["groups"][0]["rules"]
    exprs = {r["alert"]: r["expr"].rsplit("\n", 1)[0] for r in rules}  # the value, without its threshold
    assert "on (agent) group_left" in exprs["HandoffByReason"]
    assert 'support_handoff_denominator[5m]' in exprs["HandoffPerSeries"]  # reason is not matched there
    tests = {"rule_files": [], "evaluation_interval": "1m", "tests": [{"interval": "1m", "input_series": yaml.safe_load(
        RATIO_SERIES), "promql_expr_test": [
        {"expr": exprs["HandoffByReason"], "eval_time": "2m", "exp_samples": [
            {"labels": '{agent="bot", reason="price"}', "value": 0.25},
            {"labels": '{agent="bot", reason="anger"}', "value": 0.05}]},
        {"expr": exprs["HandoffPerSeries"], "eval_time": "2m", "exp_samples": [
            {"labels": '{agent="bot", reason="price"}', "value": 0.25}]},
        {"expr": exprs["Handoff"], "eval_time": "2m", "exp_samples": [
            {"labels": '{agent="bot"}', "value": 0.3}]}]}]}
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run([str(PROMTOOL), "test", "rules", str(path)], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus; "
                                             "tests/install-test-servers.sh installs it)")
def test_the_shipped_exporter_failing_alert_fires_for_an_exporter_of_any_signal(tmp_path: Path) -> None:
    """OtelgwExporterFailing's recording rule has data for an exporter that fails only spans, or only log records
    (adding the three signals' rates would keep only exporters that have all three): promtool runs the shipped
    rules.yml on such series, and the alert fires for each exporter, and not for one that recovered."""
    import yaml

    tests = {"rule_files": [str(ROOT / "configs/prometheus/rules.yml")], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": 'otelcol_exporter_send_failed_spans_total{exporter="otlp"}', "values": "0+10x20"},
            {"series": 'otelcol_exporter_send_failed_log_records_total{exporter="loki"}', "values": "0+5x20"},
            {"series": 'otelcol_exporter_send_failed_metric_points_total{exporter="prometheusremotewrite"}',
             "values": "0+1x3 3x17"}],
        "alert_rule_test": [{"alertname": "OtelgwExporterFailing", "eval_time": "15m", "exp_alerts": [
            {"exp_labels": {"severity": "critical", "exporter": name},
             "exp_annotations": {"summary": f"Exporter {name} is dropping data"}} for name in ("loki", "otlp")]}]}]}
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run([str(PROMTOOL), "test", "rules", str(path)], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
