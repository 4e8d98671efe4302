"""A known workload for the KPI packs (configs/kpi/*.yaml) and span_metrics, with the values it must produce.

``pack_workload(now_ns)`` returns the trace and log requests of a small, deterministic day in a call centre, an
AI support agent and a CRM, and ``Expectation``s: Prometheus sample name, labels and exact value. Unit tests check
them on the translated output; tests/test_prometheus_real.py checks them through a real Prometheus's query API;
bench/kpi.py replays the requests for throughput.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

from gateway import key_value

__all__ = ["Expectation", "Workload", "pack_workload"]

S = 1_000_000_000  # ns per second
OK, ERROR = 1, 2
SERVER, CLIENT, INTERNAL = 2, 3, 1


@dataclass(frozen=True)
class Expectation:
    name: str
    labels: dict[str, str]
    value: float

    @property
    def promql(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}"


@dataclass
class Workload:
    traces: list[ExportTraceServiceRequest] = field(default_factory=list)
    logs: list[ExportLogsServiceRequest] = field(default_factory=list)
    expected: list[Expectation] = field(default_factory=list)

    def expect(self, name: str, value: float, **labels: str) -> None:
        self.expected.append(Expectation(name, dict(labels), value))


def _attrs(values: dict[str, Any]) -> Iterable[KeyValue]:
    return [key_value(k, v) for k, v in values.items() if v is not None]


class _Spans:
    def __init__(self, service: str, instance: str, scope: str, now_ns: int) -> None:
        self.request = ExportTraceServiceRequest()
        rs = self.request.resource_spans.add()
        rs.resource.attributes.extend(_attrs({"service.name": service, "service.instance.id": instance,
                                              "deployment.environment.name": "test"}))
        self.scope: ScopeSpans = rs.scope_spans.add()
        self.scope.scope.name = scope
        self.now_ns = now_ns

    def add(self, name: str, seconds: float, attributes: dict[str, Any], kind: int = INTERNAL,
            status: int = 0) -> None:
        span = self.scope.spans.add()
        span.trace_id, span.span_id = os.urandom(16), os.urandom(8)
        span.name, span.kind = name, kind  # type: ignore[assignment]
        span.end_time_unix_nano = self.now_ns
        span.start_time_unix_nano = self.now_ns - round(seconds * S)
        span.attributes.extend(_attrs(attributes))
        span.status.code = status  # type: ignore[assignment]


class _Logs:
    def __init__(self, service: str, instance: str, now_ns: int) -> None:
        self.request = ExportLogsServiceRequest()
        rl = self.request.resource_logs.add()
        rl.resource.attributes.extend(_attrs({"service.name": service, "service.instance.id": instance}))
        self.scope = rl.scope_logs.add()
        self.scope.scope.name = "events"
        self.now_ns = now_ns

    def add(self, event: str, attributes: dict[str, Any]) -> None:
        record = self.scope.log_records.add()
        record.time_unix_nano = self.now_ns
        record.event_name = event
        record.severity_number = 9  # type: ignore[assignment]
        record.severity_text = "INFO"
        record.attributes.extend(_attrs(attributes))


def _callcenter(w: Workload, now_ns: int) -> None:
    spans = _Spans("contact-center", "cc-1", "contact-center.routing", now_ns)
    billing = [(5, "answered"), (12, "answered"), (18, "answered"), (25, "answered"), (40, "abandoned"),
               (3, "answered"), (8, "answered"), (15, "abandoned"), (22, "answered"), (70, "transferred")]
    sales = [(2, "answered"), (30, "answered"), (9, "abandoned"), (14, "answered")]
    for i, (wait, outcome) in enumerate(billing):
        channel = "chat" if i in (3, 7) else "voice"
        spans.add("contact.queue", wait, {"contact.queue": "billing", "contact.channel": channel,
                                          "contact.outcome": outcome})
    for wait, outcome in sales:
        spans.add("contact.queue", wait, {"contact.queue": "sales", "contact.channel": "voice",
                                          "contact.outcome": outcome})
    talks = [(180, True, True), (240, True, False), (90, False, True), (400, True, True), (60, True, True),
             (150, False, False)]
    for seconds, first, resolved in talks:
        spans.add("contact.talk", seconds, {"contact.queue": "billing", "contact.first_contact": first,
                                            "contact.resolved": resolved})
    w.traces.append(spans.request)
    logs = _Logs("contact-center", "cc-1", now_ns)
    for _ in range(5):
        logs.add("contact.queue.enter", {"contact.queue": "billing"})
    for _ in range(3):
        logs.add("contact.queue.leave", {"contact.queue": "billing"})
    for event in ("contact.queue.enter", "contact.queue.leave") * 2:
        logs.add(event, {"contact.queue": "sales"})
    for state, seconds in (("busy", 600), ("wrap_up", 120), ("available", 480), ("away", 300)):
        logs.add("agent.state.change", {"agent.previous_state": state, "agent.previous_state.duration": seconds})
    w.logs.append(logs.request)

    w.expect("callcenter_contacts_offered_total", 8, queue="billing", channel="voice")
    w.expect("callcenter_contacts_offered_total", 2, queue="billing", channel="chat")
    w.expect("callcenter_contacts_offered_total", 4, queue="sales", channel="voice")
    w.expect("callcenter_service_level_ratio", 0.5, queue="billing")
    w.expect("callcenter_service_level_ratio", 0.5, queue="sales")
    w.expect("callcenter_abandoned_ratio", 0.2, queue="billing")
    w.expect("callcenter_abandoned_ratio", 0.25, queue="sales")
    w.expect("callcenter_queue_depth", 2, queue="billing")
    w.expect("callcenter_queue_depth", 0, queue="sales")
    w.expect("callcenter_agent_utilization_ratio", 0.6)
    for le, count in (("5", 2), ("10", 3), ("20", 6), ("30", 8), ("60", 9), ("120", 10), ("+Inf", 10)):
        w.expect("callcenter_wait_time_seconds_bucket", count, queue="billing", le=le)
    w.expect("callcenter_wait_time_seconds_sum", 218, queue="billing")
    w.expect("callcenter_wait_time_seconds_count", 10, queue="billing")
    for le, count in (("30", 0), ("60", 1), ("120", 2), ("300", 5), ("600", 6)):
        w.expect("callcenter_talk_time_seconds_bucket", count, queue="billing", le=le)
    w.expect("callcenter_talk_time_seconds_sum", 1120, queue="billing")
    w.expect("callcenter_first_contact_resolution_ratio", 0.75, queue="billing")
    # span_metrics over the same spans (default buckets, in milliseconds)
    common = {"service_name": "contact-center", "span_kind": "SPAN_KIND_INTERNAL",
              "status_code": "STATUS_CODE_UNSET"}
    w.expect("traces_span_metrics_calls_total", 14, span_name="contact.queue", **common)
    w.expect("traces_span_metrics_calls_total", 6, span_name="contact.talk", **common)
    for le, count in (("2000", 1), ("5000", 3), ("10000", 5), ("15000", 8), ("+Inf", 14)):
        w.expect("traces_span_metrics_duration_milliseconds_bucket", count, span_name="contact.queue", le=le,
                 **common)
    w.expect("traces_span_metrics_duration_milliseconds_count", 14, span_name="contact.queue", **common)
    w.expect("traces_span_metrics_duration_milliseconds_sum", 273_000, span_name="contact.queue", **common)


def _llm(w: Workload, now_ns: int) -> None:
    spans = _Spans("support-agent", "agent-1", "opentelemetry.instrumentation.openai", now_ns)
    calls = [("gpt-4o", "openai", 0.5, 100, 50, 0.25, OK), ("gpt-4o", "openai", 1.2, 200, 60, 0.5, OK),
             ("gpt-4o", "openai", 3.0, 300, 70, 0.125, ERROR),
             ("claude-3-5-sonnet", "anthropic", 0.9, 400, 80, 1.0, OK),
             ("claude-3-5-sonnet", "anthropic", 2.0, 500, 90, 0.75, OK)]
    for model, provider, seconds, tokens_in, tokens_out, cost, status in calls:
        spans.add(f"chat {model}", seconds, {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.provider.name": provider,
            "gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out,
            "gen_ai.usage.cost": cost}, kind=CLIENT, status=status)
    reasons = [None, "billing_dispute", None, None, "angry_customer", None, "billing_dispute", None]
    confidence = [0.5, 0.75, 0.25, 1.0, 0.5, 0.75, 0.25, 1.0]
    for i in range(8):
        spans.add("invoke_agent support-bot", i + 1, {
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot",
            "support.handoff.reason": reasons[i], "support.answer.confidence": confidence[i]})
    for results in (3, 0, 1, 0, 2):
        spans.add("execute_tool knowledge_base_search", 0.05, {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "knowledge_base_search",
            "support.kb.results": results})
    w.traces.append(spans.request)

    gpt = {"gen_ai_request_model": "gpt-4o"}
    claude = {"gen_ai_request_model": "claude-3-5-sonnet"}
    for le, count in (("0.32", 0), ("0.64", 1), ("1.28", 2), ("2.56", 2), ("5.12", 3)):
        w.expect("gen_ai_client_operation_duration_seconds_bucket", count, le=le, **gpt)
    w.expect("gen_ai_client_operation_duration_seconds_count", 3, **gpt)
    w.expect("gen_ai_client_operation_duration_seconds_count", 2, **claude)
    w.expect("gen_ai_client_token_usage_sum", 600, gen_ai_token_type="input", **gpt)
    w.expect("gen_ai_client_token_usage_sum", 180, gen_ai_token_type="output", **gpt)
    w.expect("gen_ai_client_token_usage_sum", 900, gen_ai_token_type="input", **claude)
    w.expect("gen_ai_client_token_usage_sum", 170, gen_ai_token_type="output", **claude)
    w.expect("gen_ai_client_token_usage_count", 3, gen_ai_token_type="input", **gpt)
    w.expect("llm_cost_usd_total", 0.875, **gpt)
    w.expect("llm_cost_usd_total", 1.75, **claude)
    w.expect("llm_requests_total", 2, status="ok", **gpt)
    w.expect("llm_requests_total", 1, status="error", **gpt)
    w.expect("llm_requests_total", 2, status="ok", **claude)
    for le, count in (("0.5", 0), ("1", 1), ("2", 2), ("4", 4), ("8", 8)):
        w.expect("llm_agent_response_time_seconds_bucket", count, gen_ai_agent_name="support-bot", le=le)
    w.expect("llm_agent_handoff_ratio", 0.25, gen_ai_agent_name="support-bot", reason="billing_dispute")
    w.expect("llm_agent_handoff_ratio", 0.125, gen_ai_agent_name="support-bot", reason="angry_customer")
    w.expect("llm_knowledge_base_hit_ratio", 0.6, gen_ai_tool_name="knowledge_base_search")
    w.expect("llm_answer_confidence_sum", 5.0, gen_ai_agent_name="support-bot")
    w.expect("llm_answer_confidence_count", 8, gen_ai_agent_name="support-bot")
    w.expect("llm_answer_confidence_bucket", 2, gen_ai_agent_name="support-bot", le="0.3")


def _crm(w: Workload, now_ns: int) -> None:
    logs = _Logs("crm", "crm-1", now_ns)
    for channel, team, n in (("email", "billing", 3), ("chat", "billing", 2), ("chat", "tech", 1)):
        for _ in range(n):
            logs.add("conversation.created", {"crm.channel": channel, "crm.team": team})
    for seconds in (120, 600, 4000):
        logs.add("conversation.first_response", {"crm.channel": "email", "crm.team": "billing",
                                                 "crm.first_response_time": seconds})
    for seconds in (3000, 20000):
        logs.add("conversation.resolved", {"crm.channel": "email", "crm.team": "billing",
                                           "crm.resolution_time": seconds})
    logs.add("conversation.reopened", {"crm.channel": "email", "crm.team": "billing"})
    w.logs.append(logs.request)
    spans = _Spans("crm", "crm-1", "crm.automation", now_ns)
    for workflow, status, n in (("assign_ticket", OK, 4), ("assign_ticket", ERROR, 1), ("send_survey", OK, 2)):
        for _ in range(n):
            spans.add("workflow.run", 1.5, {"crm.workflow.name": workflow}, status=status)
    w.traces.append(spans.request)

    w.expect("crm_conversations_total", 3, channel="email", team="billing")
    w.expect("crm_conversations_total", 2, channel="chat", team="billing")
    w.expect("crm_conversations_total", 1, channel="chat", team="tech")
    for le, count in (("60", 0), ("300", 1), ("900", 2), ("3600", 2), ("14400", 3)):
        w.expect("crm_first_response_time_seconds_bucket", count, channel="email", team="billing", le=le)
    w.expect("crm_first_response_time_seconds_sum", 4720, channel="email", team="billing")
    w.expect("crm_resolution_time_seconds_count", 2, channel="email", team="billing")
    w.expect("crm_resolution_time_seconds_sum", 23000, channel="email", team="billing")
    w.expect("crm_queue_backlog", 4, team="billing")
    w.expect("crm_queue_backlog", 1, team="tech")
    w.expect("crm_workflow_runs_total", 4, workflow="assign_ticket", status="ok")
    w.expect("crm_workflow_runs_total", 1, workflow="assign_ticket", status="error")
    w.expect("crm_workflow_runs_total", 2, workflow="send_survey", status="ok")
    w.expect("crm_workflow_failures_total", 1, workflow="assign_ticket")


def pack_workload(now_ns: int) -> Workload:
    """Spans and logs for the three packs, all ending at ``now_ns``, and the samples they must produce."""
    workload = Workload()
    _callcenter(workload, now_ns)
    _llm(workload, now_ns)
    _crm(workload, now_ns)
    return workload
