"""Processor ``alerts``: alert rules and SLO burn rates evaluated inside metrics pipelines, routed to
Alertmanager, Slack, PagerDuty, webhooks, e-mail and the log."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
