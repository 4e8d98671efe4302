"""The whole customer-service setup, merged as the README documents it, run as its users would run it.

A contact centre, an AI support agent, a CRM inbox and a customer API send through the real OpenTelemetry SDK
(spans and event logs over OTLP/gRPC) into one gateway built from configs/kpi/*.yaml, configs/alerts/*.yaml,
configs/redaction.yaml and configs/tail_sampling.yaml (plus endpoints on free ports, short flush and evaluation
intervals, the LLM alert pack's for: durations shortened, a Loki exporter and Alertmanager). Then:

- every KPI in a real Prometheus equals the value computed by hand here from the workload, token usage included;
- every dashboard panel of the KPI dashboards finds series, and so does every recording rule of
  configs/prometheus/rules.yml (Prometheus scrapes the gateway's own metrics too);
- the alerts the workload must raise (LLM error rate, at both severities, for one model only) are in a real
  Alertmanager, and no other alert is;
- no e-mail address, phone number or customer sentence is in the kept traces, the Loki lines and metadata, the
  Prometheus series, the Alertmanager payloads or the gateway's own output.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway._host.demo.speed import scaled_copy
from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.testing.otlp_sink import OtlpSink
from tests.plugins.exporters.loki.conftest import LokiServer
from tests.test_alertmanager_real import BINARY as ALERTMANAGER
from tests.test_alertmanager_real import alertmanager  # noqa: F401 - the fixture
from tests.test_prometheus_real import PROMETHEUS, PrometheusServer, check_dashboards

ROOT = Path(__file__).resolve().parent.parent
FILES = [f"configs/kpi/{n}.yaml" for n in ("gateway", "callcenter", "llm_agent", "crm")] + \
        [f"configs/alerts/{n}.yaml" for n in ("api", "callcenter", "llm_agent", "crm")] + \
        ["configs/redaction.yaml", "configs/tail_sampling.yaml"]
KEY = "an end-to-end key of at least 32 bytes, for pseudonyms"
S = 1_000_000_000

EMAIL, PHONE = "jane.doe@example.com", "+1 415 555 0132"
SENTENCE = "my parcel never arrived and I am furious"
PII = [EMAIL, "jane.doe", PHONE, "415 555 0132", SENTENCE, "parcel never arrived"]
RULES = ROOT / "configs/prometheus/rules.yml"
RECORDING_RULES = [rule["record"] for group in yaml.safe_load(RULES.read_text())["groups"]
                   for rule in group["rules"] if "record" in rule]

pytestmark = pytest.mark.skipif(
    ALERTMANAGER is None or not Path(PROMETHEUS).is_file(),
    reason="needs Debian's prometheus and prometheus-alertmanager (tests/install-test-servers.sh installs them)")


def override(tmp_path: Path, backend: str, loki: str, alertmanager_url: str) -> Path:
    fast = "{metrics_flush_interval: 100ms}"
    alerts = f'{{evaluation_interval: 1s, notifiers: {{alertmanager: {{endpoint: "{alertmanager_url}"}}}}}}'
    path = tmp_path / "test.yaml"
    path.write_text(f"""
extensions:
  health_check: {{endpoint: "127.0.0.1:0"}}
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}, http: {{endpoint: "127.0.0.1:0"}}}}}}
connectors:
  spanmetrics: {fast}
  kpi/callcenter: {fast}
  kpi/llm_agent: {fast}
  kpi/crm: {fast}
processors:
  tail_sampling: {{decision_wait: 1s, decision_wait_after_root_received: 500ms}}
  batch: {{timeout: 50ms}}
  alerts/api: {alerts}
  alerts/callcenter: {alerts}
  alerts/llm_agent: {alerts}
  alerts/crm: {alerts}
exporters:
  prometheus: {{endpoint: "127.0.0.1:0"}}
  otlp: {{endpoint: "{backend}", tls: {{insecure: true}}}}
  debug: {{verbosity: detailed}}
  loki: {{endpoint: "{loki}"}}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:0"}}}}   # scraped too, for the rules on the gateway's own metrics
  pipelines:
    logs: {{exporters: [loki]}}
""")
    return path


class Workload:
    """Sends through the SDK and keeps, by hand, the value every KPI must have."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.tracers: dict[str, TracerProvider] = {}
        self.loggers: dict[str, LoggerProvider] = {}
        self.now = time.time_ns() - 600 * S

    def tracer(self, service: str) -> Any:
        if service not in self.tracers:
            provider = TracerProvider(resource=Resource({"service.name": service}))
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint, insecure=True)))
            self.tracers[service] = provider
        return self.tracers[service].get_tracer("e2e")

    def logger(self, service: str) -> Any:
        if service not in self.loggers:
            provider = LoggerProvider(resource=Resource({"service.name": service}))
            provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=self.endpoint,
                                                                                      insecure=True)))
            self.loggers[service] = provider
        return self.loggers[service].get_logger("e2e")

    def span(self, service: str, name: str, seconds: float, attributes: dict[str, Any],
             kind: SpanKind = SpanKind.INTERNAL, error: bool = False) -> None:
        self.now += S
        span = self.tracer(service).start_span(name, kind=kind, attributes=attributes, start_time=self.now)
        span.set_status(Status(StatusCode.ERROR if error else StatusCode.OK))
        span.end(end_time=self.now + int(seconds * S))

    def event(self, service: str, name: str, attributes: dict[str, Any], body: str = "") -> None:
        self.logger(service).emit(event_name=name, attributes=attributes, body=body or None)

    def close(self) -> None:
        for provider in [*self.tracers.values(), *self.loggers.values()]:
            provider.shutdown()  # type: ignore[attr-defined]


def send(endpoint: str) -> dict[str, float]:
    """The workload of the three domains; returns PromQL → the exact value computed by hand."""
    w = Workload(endpoint)
    expected: dict[str, float] = {}
    try:
        # ---- contact centre
        waits = {"billing": [(10, "answered"), (30, "answered"), (50, "abandoned"), (5, "answered")],
                 "sales": [(8, "answered"), (15, "answered")]}
        for queue, contacts in waits.items():
            channel = "voice" if queue == "billing" else "chat"
            for seconds, outcome in contacts:
                w.span("contact-centre", "contact.queue", seconds, {
                    "contact.queue": queue, "contact.channel": channel, "contact.outcome": outcome,
                    "customer.email": EMAIL, "customer.phone": PHONE})
            offered = len(contacts)
            within = sum(1 for s, o in contacts if o == "answered" and s <= 20)
            abandoned = sum(1 for _, o in contacts if o == "abandoned")
            expected[f'callcenter_contacts_offered_total{{queue="{queue}",channel="{channel}"}}'] = offered
            expected[f'callcenter_service_level_ratio{{queue="{queue}"}}'] = within / offered
            expected[f'callcenter_abandoned_ratio{{queue="{queue}"}}'] = abandoned / offered
            # the ratio's parts, as the exported rules and the dashboards read them over replicas
            expected[f'sum by (queue) (callcenter_service_level_numerator{{queue="{queue}"}})'
                     f' / sum by (queue) (callcenter_service_level_denominator{{queue="{queue}"}})'] = within / offered
            expected[f'callcenter_wait_time_seconds_count{{queue="{queue}"}}'] = offered
            expected[f'callcenter_wait_time_seconds_sum{{queue="{queue}"}}'] = sum(s for s, _ in contacts)
        talks = [(120, True, True), (300, True, False), (200, False, True)]
        for seconds, first, resolved in talks:
            w.span("contact-centre", "contact.talk", seconds, {
                "contact.queue": "billing", "contact.first_contact": first, "contact.resolved": resolved})
        expected['callcenter_talk_time_seconds_sum{queue="billing"}'] = sum(t[0] for t in talks)
        firsts = [t for t in talks if t[1]]
        expected['callcenter_first_contact_resolution_ratio{queue="billing"}'] = \
            sum(1 for t in firsts if t[2]) / len(firsts)
        for _ in range(5):
            w.event("contact-centre", "contact.queue.enter", {"contact.queue": "billing"})
        for _ in range(2):
            w.event("contact-centre", "contact.queue.leave", {"contact.queue": "billing"})
        expected['callcenter_queue_depth{queue="billing"}'] = 5 - 2
        changes = [("away", "available", 0), ("away", "available", 0), ("away", "available", 0),
                   ("available", "busy", 60), ("busy", "wrap_up", 240), ("wrap_up", "available", 100)]
        for previous, state, seconds in changes:
            w.event("contact-centre", "agent.state.change", {
                "agent.previous_state": previous, "agent.state": state, "agent.previous_state.duration": seconds})
        expected["callcenter_agents_available"] = sum((s == "available") - (p == "available") for p, s, _ in changes)
        busy = sum(d for p, _, d in changes if p in ("busy", "wrap_up"))
        staffed = sum(d for p, _, d in changes if p in ("busy", "wrap_up", "available"))
        expected["callcenter_agent_utilization_ratio"] = busy / staffed

        # ---- AI support agent
        chat = [{"role": "user", "parts": [{"type": "text", "content": f"{SENTENCE}, write to {EMAIL}"}]}]
        # gpt-4o fails 1 call in 5, in both halves: an error rate needs a rise between two samples (as in
        # Prometheus, a series' first sample is its baseline), so the second half comes after a few flushes.
        calls = ([("gpt-4o", "openai", i == 4) for i in range(5)] + [("claude", "anthropic", False)] * 5
                 + [("gpt-4o", "openai", i == 4) for i in range(5)])
        tokens: dict[tuple[str, str], list[int]] = {}
        for i, (model, provider, error) in enumerate(calls):
            if i == 10:
                time.sleep(1.5)
            w.span("support-agent", f"chat {model}", 0.5, {
                "gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.provider.name": provider,
                "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": 20 + i % 3,
                "gen_ai.usage.cost": 0.01, "gen_ai.input.messages": json.dumps(chat),
                "gen_ai.output.messages": f"Sorry that {SENTENCE[3:]}", "gen_ai.prompt": SENTENCE},
                kind=SpanKind.CLIENT, error=error)
            tokens.setdefault((model, provider), []).append(i)
        for (model, provider), indexes in tokens.items():
            labels = f'gen_ai_request_model="{model}",gen_ai_provider_name="{provider}"'
            expected[f'gen_ai_client_token_usage_sum{{gen_ai_token_type="input",{labels}}}'] = \
                sum(100 + i for i in indexes)
            expected[f'gen_ai_client_token_usage_sum{{gen_ai_token_type="output",{labels}}}'] = \
                sum(20 + i % 3 for i in indexes)
            expected[f'gen_ai_client_token_usage_count{{gen_ai_token_type="input",{labels}}}'] = len(indexes)
        expected['llm_requests_total{gen_ai_request_model="gpt-4o",status="error"}'] = 2
        expected['llm_requests_total{gen_ai_request_model="gpt-4o",status="ok"}'] = 8
        expected['llm_requests_total{gen_ai_request_model="claude",status="ok"}'] = 5
        turns = [None, None, "angry_customer", None]
        for reason in turns:
            attributes: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper",
                                          "support.answer.confidence": 0.8}
            if reason:
                attributes["support.handoff.reason"] = reason
            w.span("support-agent", "invoke_agent helper", 1.5, attributes)
        expected['llm_agent_handoff_ratio{gen_ai_agent_name="helper",reason="angry_customer"}'] = 1 / len(turns)
        expected['llm_agent_handoff_denominator{gen_ai_agent_name="helper"}'] = len(turns)  # no reason label
        expected['llm_agent_response_time_seconds_count{gen_ai_agent_name="helper"}'] = len(turns)
        results = [3, 0, 5, 1]
        for found in results:
            w.span("support-agent", "execute_tool knowledge_base_search", 0.1, {
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "knowledge_base_search",
                "support.kb.results": found})
        expected['llm_knowledge_base_hit_ratio{gen_ai_tool_name="knowledge_base_search"}'] = \
            sum(1 for r in results if r > 0) / len(results)
        expected['llm_answer_confidence_count{gen_ai_agent_name="helper"}'] = len(turns)

        # ---- CRM inbox
        for _ in range(3):
            w.event("crm-inbox", "conversation.created", {"crm.channel": "email", "crm.team": "billing",
                                                         "customer.email": EMAIL},
                    body=f"From {EMAIL}: {SENTENCE}. Call me on {PHONE}")
        w.event("crm-inbox", "conversation.first_response", {"crm.channel": "email", "crm.team": "billing",
                                                             "crm.first_response_time": 600})
        w.event("crm-inbox", "conversation.resolved", {"crm.channel": "email", "crm.team": "billing",
                                                       "crm.resolution_time": 3600})
        expected['crm_conversations_total{channel="email",team="billing"}'] = 3
        expected['crm_queue_backlog{team="billing"}'] = 3 - 1
        expected['crm_first_response_time_seconds_sum{channel="email",team="billing"}'] = 600
        expected['crm_resolution_time_seconds_sum{channel="email",team="billing"}'] = 3600
        runs = [False, False, True, False]
        for failed in runs:
            w.span("crm-inbox", "workflow.run", 0.2, {"crm.workflow.name": "triage"}, error=failed)
        expected['crm_workflow_runs_total{workflow="triage",status="error"}'] = sum(runs)
        expected['crm_workflow_runs_total{workflow="triage",status="ok"}'] = len(runs) - sum(runs)
        expected['crm_workflow_failures_total{workflow="triage"}'] = sum(runs)

        # ---- the customer API: an address in the span name (a route template nobody set)
        for _ in range(3):
            w.span("customers-api", f"GET /api/customers/{EMAIL}", 0.05, {"http.request.method": "GET"},
                   kind=SpanKind.SERVER)
        expected['traces_span_metrics_calls_total{service_name="customers-api",span_kind="SPAN_KIND_SERVER"}'] = 3
    finally:
        w.close()
    return expected


async def poll(what: str, check: Any, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result[0]:
            return result[1]
        assert time.monotonic() < deadline, f"{what}: {result[1]}"
        await asyncio.sleep(0.25)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


async def test_customer_service_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alertmanager: str,  # noqa: F811
                                      capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("REDACTION_KEY", KEY)
    caplog.set_level("DEBUG", logger="otelgw")
    backend, loki = OtlpSink(), LokiServer()
    await backend.start()
    await loki.start()
    prometheus: PrometheusServer | None = None
    # The LLM error-rate alerts wait for: 5m and 15m; the copy of their pack waits 1 s and 3 s (as otelgw demo
    # --speed does it). The other packs keep their for: durations, so none of their alerts can fire here.
    llm_alerts = scaled_copy(ROOT / "configs/alerts/llm_agent.yaml", tmp_path, 300, frozenset({"for"}))
    files = [str(llm_alerts if f == "configs/alerts/llm_agent.yaml" else ROOT / f) for f in FILES]
    service = Service.from_files([*files, str(override(tmp_path, backend.grpc_endpoint, loki.endpoint, alertmanager))])
    await service.start()
    try:
        endpoint = service.graph.find(Kind.RECEIVER, "otlp").grpc_address
        expected = await asyncio.to_thread(send, endpoint)
        exporter = service.graph.find(Kind.EXPORTER, "prometheus")
        # The KPIs and the gateway's own metrics, with configs/prometheus/rules.yml loaded.
        prometheus = PrometheusServer(tmp_path, scrape_target=[exporter.address, f"127.0.0.1:{service.metrics_port}"],
                                      rule_files=[RULES])
        await prometheus.start()
        async with aiohttp.ClientSession() as session:
            async def kpis() -> tuple[bool, list[str]]:
                wrong = []
                for promql, value in expected.items():
                    values = [float(r["value"][1]) for r in await prometheus.query(session, promql)]
                    if len(values) != 1 or not math.isclose(values[0], value, rel_tol=1e-9, abs_tol=1e-9):
                        wrong.append(f"{promql} = {values}, expected {value}")
                return not wrong, wrong
            await poll("KPIs", kpis)
            await check_dashboards(prometheus, session)

            async def recorded() -> tuple[bool, list[str]]:
                empty = [name for name in RECORDING_RULES if not await prometheus.query(session, name)]
                return not empty, empty
            await poll("every recording rule of rules.yml has data", recorded)
            series = await session.get(f"{prometheus.url}/api/v1/series", params={"match[]": '{__name__=~".+"}'})
            prometheus_text = await series.text()

        # Alerts: the LLM error rate of gpt-4o (20%) at both severities, and nothing else.
        async def alerts() -> tuple[bool, Any]:
            found = get(f"{alertmanager}/api/v2/alerts")
            names = sorted((a["labels"]["alertname"], a["labels"]["severity"]) for a in found)
            return names == [("LlmErrorRateHigh", "high"), ("LlmErrorRateHigh", "warning")], found
        found = await poll("alerts", alerts)
        assert all("gpt-4o" in json.dumps(a["labels"]) for a in found)
        await asyncio.sleep(2)  # a few more evaluations: still nothing unexpected
        found = get(f"{alertmanager}/api/v2/alerts")
        assert sorted(a["labels"]["alertname"] for a in found) == ["LlmErrorRateHigh", "LlmErrorRateHigh"]

        # Kept traces reach the backend (slow contacts and errors are always kept).
        async def kept() -> tuple[bool, int]:
            spans = [s for r in backend.received(Signal.TRACES) for rs in r.batch.resource_spans
                     for ss in rs.scope_spans for s in ss.spans]
            return any(s.name == "contact.queue" for s in spans) and any(s.status.code == 2 for s in spans), \
                len(spans)
        await poll("kept traces", kept, timeout=20)

        async def pushed() -> tuple[bool, int]:
            entries = sum(len(s.entries) for p in loki.pushes for s in p.streams)
            return entries == 18, entries  # every event record: 13 of the contact centre, 5 of the CRM
        await poll("loki", pushed, timeout=20)
    finally:
        assert await service.shutdown() == []
        if prometheus is not None:
            prometheus.stop()
        await backend.stop()
        await loki.stop()

    traces = b"".join(r.batch.SerializeToString() for r in backend.received(Signal.TRACES)).decode("utf-8", "replace")
    lines = [(s.labels, e) for p in loki.pushes for s in p.streams for e in s.entries]
    loki_text = json.dumps(lines)
    events = {e[2].get("event_name") for _, e in lines}
    assert {"contact.queue.enter", "agent.state.change", "conversation.created"} <= events
    alertmanager_text = json.dumps(get(f"{alertmanager}/api/v2/alerts"))
    gateway_output = capfd.readouterr().err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str)
                                                       for r in caplog.records)
    assert "gen_ai.usage.input_tokens" in gateway_output  # the debug exporter printed the spans, in detail
    for place, text in [("trace backend", traces), ("loki", loki_text), ("prometheus", prometheus_text),
                        ("alertmanager", alertmanager_text), ("gateway output", gateway_output)]:
        leaked = [value for value in PII if value in text]
        assert not leaked, f"{place} holds {leaked}"
    # The API's span name reached Prometheus with its address hashed, not dropped.
    names = {series.get("span_name") for series in json.loads(prometheus_text)["data"]}
    (api,) = [name for name in names if name and name.startswith("GET /api/customers/")]
    assert len(api) == len("GET /api/customers/") + 16  # a 16-character pseudonym
