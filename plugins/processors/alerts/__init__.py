"""Processor ``alerts``: alert rules and SLO burn rates evaluated inside metrics pipelines, routed to
Alertmanager, Slack, PagerDuty, webhooks, e-mail and the log."""

from __future__ import annotations

from gateway import hookimpl

from .cli import COMMAND as ALERTS_COMMAND
from .cli_rules import COMMAND as RULES_COMMAND
from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]


@hookimpl
def otelgw_cli_commands():  # type: ignore[no-untyped-def]
    """``otelgw alerts ...`` (the running gateway's alerts) and ``otelgw rules export`` (the packs as Prometheus
    rules)."""
    return [ALERTS_COMMAND, RULES_COMMAND]
