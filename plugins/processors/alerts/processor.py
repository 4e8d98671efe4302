"""The ``alerts`` processor: records what its rules read from passing metrics, evaluates on its own timer, and
hands due notifications to the notifiers' own queues.

``consume_metrics`` only looks up each metric name in an index of the names the rules read, records matching
points, and passes the batch on unchanged; evaluation and sending happen elsewhere, so neither a slow rule set
nor a dead receiver can hold pipeline data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from gateway import ComponentSettings, Host, MetricsConsumer, Signal, count_items

from . import adminapi
from .config import Config
from .engine import AlertBook, CompiledRule, CompiledSlo
from .lifecycle import Alert, State
from .metrics import alert_metrics
from .notifiers import TYPES, NotifierBase
from .routing import Router
from .series import Store

__all__ = ["AlertsProcessor"]


class _NotifierStats:
    def __init__(self, processor: str, metrics: Any) -> None:
        self._processor, self._metrics = processor, metrics

    def sent(self, notifier: str, n: int) -> None:
        self._metrics.notifications.labels(self._processor, notifier, "sent").inc(n)

    def failed(self, notifier: str, n: int) -> None:
        self._metrics.notifications.labels(self._processor, notifier, "failed").inc(n)

    def dropped(self, notifier: str, n: int) -> None:
        self._metrics.notifications.labels(self._processor, notifier, "dropped").inc(n)


class AlertsProcessor:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.config = config
        self.next = next_consumer
        self.clock = clock
        self.name = str(settings.id)
        self.logger = settings.telemetry.logger
        root = settings.telemetry.root
        self._incoming = root.processor_incoming.labels(self.name, Signal.METRICS.value)
        self._outgoing = root.processor_outgoing.labels(self.name, Signal.METRICS.value)
        self.metrics = alert_metrics(settings.telemetry.registry)
        self.rules: list[CompiledRule | CompiledSlo] = [CompiledRule(r) for r in config.parsed_rules()]
        self.rules += [CompiledSlo(s) for s in config.slos]
        #: metric name → the stores that read it: the only per-metric work on the hot path is this lookup.
        self.index: dict[str, list[Store]] = {}
        for rule in self.rules:
            for store in rule.stores:
                self.index.setdefault(store.expr.metric, []).append(store)
        stats = _NotifierStats(self.name, self.metrics)
        self.notifiers: dict[str, NotifierBase] = {}
        for nid, notifier_config in config.parsed_notifiers().items():
            cls = TYPES[nid.partition("/")[0]][1]
            self.notifiers[nid] = cls(nid, notifier_config, self.logger, stats)
        self.router = Router(config.parsed_routes(), self.notifiers, config.repeat_interval)
        self.book = AlertBook()
        self._task: asyncio.Task[None] | None = None
        self._admin: Any = None
        self._exported: set[tuple[str, str, str]] = set()

    # -- pipeline ------------------------------------------------------------------------------------------------
    async def consume_metrics(self, batch: Any) -> None:
        n = count_items(Signal.METRICS, batch)
        self._incoming.inc(n)
        if self.index:
            self.record(batch)
        self._outgoing.inc(n)
        await self.next.consume_metrics(batch)

    def record(self, batch: Any) -> None:
        index, now = self.index, self.clock()
        for rm in batch.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    stores = index.get(metric.name)
                    if stores is not None:
                        for store in stores:
                            try:
                                store.record(metric, now)
                            except Exception:  # never crash on data
                                self.logger.exception("alerts: could not record metric %s", metric.name)

    # -- evaluation ----------------------------------------------------------------------------------------------
    def evaluate(self, now: float | None = None) -> list[Alert]:
        """One round: advance every alert, export state, queue due notifications. Returns alerts that changed."""
        now = self.clock() if now is None else now
        changed: list[Alert] = []
        for rule in self.rules:
            for store in rule.stores:
                store.expire(now)
            try:
                changed += self.book.evaluate(rule, dict(self.config.external_labels), now)
            except Exception:
                self.logger.exception("alerts: evaluating %s failed", rule.name)
        self.book.forget(now)
        self._export(now)
        self.router.dispatch(list(self.book.alerts.values()), now, lambda a: self.book.silenced(a, now))
        self.metrics.evaluations.labels(self.name).inc()
        return changed

    def resolve(self, fp: str) -> Alert | None:
        now = self.clock()
        alert = self.book.resolve(fp, now)
        if alert is not None:
            self.router.dispatch([alert], now, lambda a: False)
            self._export(now)
        return alert

    def _export(self, now: float) -> None:
        counts: dict[tuple[str, str, str], int] = {}
        for alert in self.book.alerts.values():
            if alert.state is not State.RESOLVED:
                key = (alert.name, alert.severity, alert.state.value)
                counts[key] = counts.get(key, 0) + 1
        for key in self._exported | set(counts):
            self.metrics.alerts.labels(self.name, *key).set(counts.get(key, 0))
        self._exported |= set(counts)
        for rule in self.rules:
            if isinstance(rule, CompiledSlo):
                if rule.budget_remaining is not None:
                    self.metrics.slo_budget.labels(self.name, rule.slo.name).set(rule.budget_remaining)
                for window, rate in rule.burn_rates.items():
                    self.metrics.slo_burn.labels(self.name, rule.slo.name, window).set(rate)
            else:
                self.metrics.rule_value.labels(self.name, rule.name).set(len(rule.last_values))

    def rule_rows(self) -> list[dict[str, Any]]:
        rows = []
        for rule in self.rules:
            values = [{"labels": dict(key), "value": value} for key, value in rule.last_values.items()]
            if isinstance(rule, CompiledSlo):
                rows.append({"name": rule.slo.name, "kind": "slo", "objective": rule.slo.objective,
                             "burn_rates": rule.burn_rates, "error_budget_remaining": rule.budget_remaining,
                             "values": values})
            else:
                r = rule.rule
                metric = r.metric if r.aggregation != "ratio" else \
                    f"{r.numerator.metric if r.numerator else ''} / {r.denominator.metric if r.denominator else ''}"
                rows.append({"name": r.alert, "kind": "rule", "severity": r.severity, "metric": metric,
                             "aggregation": r.aggregation, "op": r.op, "threshold": r.threshold,
                             "for": r.for_, "values": values})
        return rows

    async def _loop(self) -> None:
        interval = self.config.evaluation_interval
        while True:
            await asyncio.sleep(interval)
            try:
                self.evaluate()
            except Exception:  # the timer must outlive any bug in one round
                self.logger.exception("alerts: evaluation round failed")

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self, host: Host) -> None:
        for notifier in self.notifiers.values():
            notifier.start()
        if host is not None:  # rule tests start a processor without a gateway around it
            adminapi.attach(host.admin, self)
            self._admin = host.admin
        if self.rules:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"alerts {self.name}")

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._admin is not None:
            adminapi.detach(self._admin, self)
            self._admin = None
        for notifier in self.notifiers.values():
            await notifier.close()
