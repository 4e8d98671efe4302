"""Realistic traffic for the KPI and alert packs, sent with the OpenTelemetry SDK over OTLP/gRPC.

Three scenarios, each a small simulation advanced once per second (``tick``):

- ``callcenter``: contacts offered to queues (``contact.queue`` and ``contact.talk`` spans, queue enter/leave
  events) answered by a pool of agents whose state changes are events too;
- ``llm-agent``: an AI customer-service agent (``invoke_agent`` turns calling a model and the knowledge base, with
  the GenAI semantic conventions' attributes, tokens, cost, hand-offs);
- ``crm``: conversations opened, answered and resolved, automation workflow runs, and the CRM's HTTP APIs
  (``customers-api`` and ``inbox-api`` server spans, which the API alert pack watches).

An incident (``incident=True``) is what an operator dreads: every agent goes away while calls keep coming, the
model provider fails a third of the calls and answers slowly, a workflow and an API start failing. Each of the
shipped alert packs has a rule that trips on it. Span durations are business durations (a 40 s wait in a queue):
a span starts that long before it ends, now. Some attributes carry personal data (customer e-mail addresses,
phone numbers) for the ``redaction`` processor to catch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

__all__ = ["Traffic"]

_NS = 1_000_000_000
_QUEUES = ("billing", "sales", "support")
_MODELS = (("gpt-4o", "openai", 0.0025), ("claude-3-5-sonnet", "anthropic", 0.003))
_WORKFLOWS = ("assign_ticket", "send_survey", "sync_contacts")
_TEAMS = ("billing", "tech")


class _Service:
    """One service's tracer and event logger, exporting to the gateway."""

    def __init__(self, name: str, endpoint: str, logs: bool) -> None:
        resource = Resource.create({"service.name": name, "service.instance.id": f"{name}-1",
                                    "deployment.environment.name": "demo"})
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=500))
        self.tracer = self.tracer_provider.get_tracer(f"otelgw.demo.{name}")
        self.logger_provider: LoggerProvider | None = None
        if logs:
            self.logger_provider = LoggerProvider(resource=resource)
            self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(
                OTLPLogExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=500))
            self.logger = self.logger_provider.get_logger(f"otelgw.demo.{name}")

    def span(self, name: str, seconds: float, attributes: dict[str, Any], *, kind: SpanKind = SpanKind.INTERNAL,
             error: bool = False, parent: trace.Span | None = None, end_ns: int | None = None) -> trace.Span:
        """A span of ``seconds`` that ends at ``end_ns`` (now by default)."""
        end = end_ns or time.time_ns()
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, context=context, kind=kind, attributes=attributes,
                                      start_time=end - round(seconds * _NS))
        if error:
            span.set_status(StatusCode.ERROR, "demo incident")
        span.end(end_time=end)
        return span

    def event(self, name: str, attributes: dict[str, Any]) -> None:
        self.logger.emit(event_name=name, attributes=attributes, severity_number=SeverityNumber.INFO,
                         severity_text="INFO", body=name)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()  # flushes what is batched
        if self.logger_provider is not None:
            self.logger_provider.shutdown()


@dataclass
class _CallCentre:
    service: _Service
    rng: random.Random
    agents: int = 12
    available: int = 0
    away: int = 0
    waiting: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_QUEUES, 0))

    def tick(self, rate: float, incident: bool) -> None:
        ev, rng = self.service.event, self.rng
        if self.available == 0 and self.away == 0:  # the shift starts: everyone logs in
            for _ in range(self.agents):
                ev("agent.state.change", {"agent.state": "available", "agent.previous_state": "away",
                                          "agent.previous_state.duration": 3600.0})
            self.available = self.agents
        if incident and self.available:  # an outage of the agents' desktop: everyone is logged out
            for _ in range(self.available):
                ev("agent.state.change", {"agent.state": "away", "agent.previous_state": "available",
                                          "agent.previous_state.duration": rng.uniform(5, 60)})
            self.away, self.available = self.available, 0
        if not incident and self.away:
            for _ in range(self.away):
                ev("agent.state.change", {"agent.state": "available", "agent.previous_state": "away",
                                          "agent.previous_state.duration": rng.uniform(60, 600)})
            self.available, self.away = self.away, 0
            for queue, count in self.waiting.items():  # the backlog is answered, or its callers give up
                for _ in range(count):
                    self._offered(queue, rng.uniform(120, 600), "abandoned" if rng.random() < 0.6 else "answered")
                self.waiting[queue] = 0
        for _ in range(_count(rng, 3 * rate)):
            queue = rng.choice(_QUEUES)
            ev("contact.queue.enter", {"contact.queue": queue, "contact.channel": "voice"})
            if incident:
                self.waiting[queue] += 1  # nobody to answer: the queue grows
                continue
            wait = rng.expovariate(1 / 12)
            outcome = "abandoned" if wait > 45 and rng.random() < 0.5 else "answered"
            self._offered(queue, wait, outcome)
            if outcome == "answered":
                self._talk(queue)

    def _offered(self, queue: str, wait: float, outcome: str) -> None:
        self.service.span("contact.queue", wait, {"contact.queue": queue, "contact.channel": "voice",
                                                  "contact.outcome": outcome})
        self.service.event("contact.queue.leave", {"contact.queue": queue, "contact.outcome": outcome})

    def _talk(self, queue: str) -> None:
        rng, ev = self.rng, self.service.event
        talk = rng.uniform(60, 600)
        self.service.span("contact.talk", talk, {
            "contact.queue": queue, "contact.first_contact": rng.random() < 0.7,
            "contact.resolved": rng.random() < 0.75,
            "customer.phone": f"+1 415 555 {rng.randrange(10000):04d}"})  # personal data: redaction hashes it
        for state, previous, seconds in (("busy", "available", rng.uniform(5, 60)), ("wrap_up", "busy", talk),
                                         ("available", "wrap_up", rng.uniform(20, 90))):
            ev("agent.state.change", {"agent.state": state, "agent.previous_state": previous,
                                      "agent.previous_state.duration": seconds})


@dataclass
class _LlmAgent:
    service: _Service
    rng: random.Random

    def tick(self, rate: float, incident: bool) -> None:
        rng, svc = self.rng, self.service
        for _ in range(_count(rng, 2 * rate)):
            model, provider, price = rng.choice(_MODELS)
            failing = incident and model == "gpt-4o"  # the provider's outage
            call = rng.uniform(6, 14) if failing else rng.lognormvariate(0, 0.5)
            turn = call + rng.uniform(0.2, 1.0)
            end = time.time_ns()
            handoff = rng.choice(("billing_dispute", "angry_customer")) if rng.random() < 0.15 else None
            attributes: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-bot",
                                          "support.answer.confidence": round(rng.uniform(0.4, 1.0), 2)}
            if handoff:
                attributes["support.handoff.reason"] = handoff
            parent = svc.tracer.start_span("invoke_agent support-bot", attributes=attributes,
                                           start_time=end - round(turn * _NS))
            results = 0 if rng.random() < 0.2 else rng.randrange(1, 5)
            svc.span("execute_tool knowledge_base_search", rng.uniform(0.02, 0.2), {
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "knowledge_base_search",
                "support.kb.results": results}, parent=parent, end_ns=end - round(call * _NS))
            tokens_in, tokens_out = rng.randrange(200, 2000), rng.randrange(50, 400)
            email = f"customer{rng.randrange(1000)}@example.com"
            svc.span(f"chat {model}", call, {
                "gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.provider.name": provider,
                "gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out,
                "gen_ai.usage.cost": round((tokens_in + 4 * tokens_out) * price / 1000, 6),
                "gen_ai.prompt": f"Customer {email} asks where the refund is"},  # redaction hides the text
                kind=SpanKind.CLIENT, error=failing and rng.random() < 0.35, parent=parent, end_ns=end)
            parent.end(end_time=end)


@dataclass
class _Crm:
    service: _Service
    customers: _Service
    inbox: _Service
    rng: random.Random
    open: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TEAMS, 0))

    def tick(self, rate: float, incident: bool) -> None:
        rng, ev = self.rng, self.service.event
        for _ in range(_count(rng, 2 * rate)):
            team, channel = rng.choice(_TEAMS), rng.choice(("email", "chat", "whatsapp"))
            ev("conversation.created", {"crm.team": team, "crm.channel": channel,
                                        "crm.customer.email": f"customer{rng.randrange(1000)}@example.com"})
            self.open[team] += 1
            ev("conversation.first_response", {"crm.team": team, "crm.channel": channel,
                                               "crm.first_response_time": rng.expovariate(1 / 900)})
        for team, count in self.open.items():
            if count and rng.random() < 0.8:
                ev("conversation.resolved", {"crm.team": team, "crm.channel": "email",
                                             "crm.resolution_time": rng.expovariate(1 / 14400)})
                self.open[team] -= 1
        for _ in range(_count(rng, 2 * rate)):
            workflow = rng.choice(_WORKFLOWS)
            failing = workflow == "assign_ticket" and (rng.random() < (0.4 if incident else 0.01))
            self.service.span("workflow.run", rng.uniform(0.2, 3), {"crm.workflow.name": workflow}, error=failing)
        for _ in range(_count(rng, 10 * rate)):
            api, route = (self.customers, "/customers/{id}") if rng.random() < 0.6 else (self.inbox, "/messages")
            failing = rng.random() < (0.25 if incident and api is self.customers else 0.005)
            self._request(api, route, failing)

    def _request(self, api: _Service, route: str, failing: bool) -> None:
        seconds = self.rng.uniform(1.0, 3.0) if failing else self.rng.lognormvariate(-3, 0.6)
        api.span(f"GET {route}", seconds, {"http.request.method": "GET", "http.route": route,
                                           "http.response.status_code": 503 if failing else 200},
                 kind=SpanKind.SERVER, error=failing)


def _count(rng: random.Random, mean: float) -> int:
    """An integer with ``mean`` as its expected value (2.3 → 2 or 3), so low rates still send something."""
    whole = int(mean)
    return whole + (1 if rng.random() < mean - whole else 0)


class Traffic:
    """The chosen scenarios' simulations and their SDK exporters; ``tick`` once per second, ``shutdown`` at the
    end (it flushes what the SDK holds)."""

    def __init__(self, endpoint: str, scenarios: tuple[str, ...], rate: float = 1.0, seed: int | None = None) -> None:
        self.rate = rate
        rng = random.Random(seed)
        self._services: list[_Service] = []
        self._sims: list[Callable[[float, bool], None]] = []

        def service(name: str, logs: bool = False) -> _Service:
            made = _Service(name, endpoint, logs)
            self._services.append(made)
            return made

        if "callcenter" in scenarios:
            self._sims.append(_CallCentre(service("contact-center", logs=True), rng).tick)
        if "llm-agent" in scenarios:
            self._sims.append(_LlmAgent(service("support-agent"), rng).tick)
        if "crm" in scenarios:
            self._sims.append(_Crm(service("crm", logs=True), service("customers-api"), service("inbox-api"),
                                   rng).tick)

    def tick(self, incident: bool) -> None:
        for sim in self._sims:
            sim(self.rate, incident)

    def shutdown(self) -> None:
        for service in self._services:
            service.shutdown()
