"""The redaction processor: picks the items that need work, then visits only the fields that need it.

Per traces or logs request, the prefilter scans the request's items (spans, log records) and its envelopes once,
as bytes: the request's bytes themselves (the bytes the receiver parsed when no component has changed the batch
since, ``gateway.wirebytes``; else one serialization), whose item and envelope ranges ``items`` finds in C (or,
without the extension, its parts joined). Each hit names its item, and
``guide.touched`` the attributes, events, links, names or bodies to visit there. With an allow-list
(``allow_all_keys: false``) every item's keys are visited anyway, since a key's absence from the list is not
visible in bytes; ``redact_all_types`` or a rule without a searchable literal makes every item be walked
completely. Resource and scope attributes are walked when the scanner found something in
the envelopes (or cannot help); metrics requests walk them always.

After the walk, the request's exact bytes go on with the batch where splicing can give them (``items.splice``,
``gateway.wirebytes.rewritten``), so tail_sampling or an exporter further on need not serialize it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway import ComponentSettings, Consumer, Processor, Signal, WireBatch, rewritten, unchanged, wire_bytes

from . import hyperscan_scanner
from .actions import Action
from .config import Config
from .guide import touched
from .items import Items, changed_items, metric_points, splice, split, split_wire
from .metrics import redaction_metrics
from .prefilter import Hit
from .rules import RuleSet, ValueRule
from .walk import DROPPED, Stats, redact_any, redact_attributes, redact_name, write_summary

__all__ = ["RedactionProcessor"]

# Field numbers (opentelemetry-proto) of the places inside a span and a log record.
_SPAN_NAME, _SPAN_ATTRIBUTES, _SPAN_EVENTS, _SPAN_LINKS, _SPAN_STATUS = 5, 9, 11, 13, 15
_LOG_BODY, _LOG_ATTRIBUTES, _LOG_EVENT_NAME = 5, 6, 12
#: Per data point type: field numbers of its attributes and exemplars (0 = none).
_POINT_FIELDS: dict[type, tuple[int, int]] = {}

Selected = tuple[int, int, "dict[int, set[int]] | None"]
#: (flat index in ``Items``, or -1 when every item is walked; (resource, scope, item) indexes; the item; rule
#: mask; fields to visit or None for all) of an item to walk.
_Chosen = tuple[int, tuple[int, int, int], Any, int, "dict[int, set[int]] | None"]


class _Selection:
    """The items of a request to walk, and what ``_hand_on_bytes`` needs to give the bytes on after the walk."""

    __slots__ = ("chosen", "data", "envelopes", "parts")

    def __init__(self, chosen: list[_Chosen], data: bytes | None = None, parts: Items | None = None,
                 envelopes: bool = True) -> None:
        self.chosen = chosen
        #: Whether resource and scope attributes need a walk: False when the scanner found nothing in the
        #: envelopes (it scans them too), so no rule can match there.
        self.envelopes = envelopes
        #: The received bytes when the walk's result can be spliced into them (only flagged items walked, and
        #: ``Items.exact``), else None: the bytes are then forgotten. ``parts`` is set then.
        self.data = data
        self.parts = parts


def _points(metric: Any) -> Any:
    data = metric.WhichOneof("data")
    return getattr(metric, data).data_points if data is not None else ()


def _point_fields(point: Any) -> tuple[int, int]:
    fields = _POINT_FIELDS.get(type(point))
    if fields is None:
        by_name = point.DESCRIPTOR.fields_by_name
        fields = _POINT_FIELDS[type(point)] = (by_name["attributes"].number,
                                               by_name["exemplars"].number if "exemplars" in by_name else 0)
    return fields


#: Non-empty once the start-up log has said which scan engine runs.
_told_engine: list[bool] = []

#: Repeated fields from a request down to its items.
_TRACE_NAMES = ("resource_spans", "scope_spans", "spans")
_LOG_NAMES = ("resource_logs", "scope_logs", "log_records")


def _indexed(batch: Any, names: tuple[str, str, str]) -> Iterator[tuple[tuple[int, int, int], Any]]:
    outer, middle, inner = names
    for i, first in enumerate(getattr(batch, outer)):
        for j, second in enumerate(getattr(first, middle)):
            for k, item in enumerate(getattr(second, inner)):
                yield (i, j, k), item


class RedactionProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        super().__init__(settings, config, next_consumer)
        self.rules = RuleSet(config)
        self._summary = config.summary if config.summary != "silent" else ""
        self._all = self.rules.rules_for(self.rules.all_rules)
        metrics = redaction_metrics(settings.telemetry.registry)
        name, signal = str(settings.id), (settings.signal.value if settings.signal else "traces")
        self._scanned = metrics.scanned.labels(name, signal)
        self._walked = metrics.walked.labels(name, signal)
        if self.rules.walk_all_reason:
            self.logger.warning("every item is checked in Python, the prefilter cannot help: %s",
                                self.rules.walk_all_reason)
        elif self.rules.scanner is not None and not hyperscan_scanner.AVAILABLE and not _told_engine:
            _told_engine.append(True)  # once per process, not once per pipeline
            self.logger.info("hyperscan is not installed, so the prefilter scans with Python's re (about half as "
                             "fast); on x86-64 Linux, macOS or Windows: pip install 'otelgw[hyperscan]'")

    # ------------------------------------------------------------------ selection

    def _select_points(self, batch: Any, points: Sequence[Any]) -> Iterable[Selected]:
        """(index, rule mask, fields to visit or None for all) of the data points to walk, in order. The
        scanner runs over the points' bytes (``items.metric_points``), from the receiver's bytes when exact."""
        rules = self.rules
        if not points:
            return ()
        if rules.walk_all_reason:
            self._walked.inc(len(points))
            return ((index, rules.all_rules, None) for index in range(len(points)))
        hits: dict[int, Hit] = {}
        parts: list[bytes] = []
        if rules.scanner is not None:
            data = wire_bytes(batch)
            parts = list(metric_points(data if data is not None else batch.SerializeToString()))
            hits = rules.scanner.locate(parts)
            self._scanned.inc(len(points))
        if rules.walk_all_keys:
            self._walked.inc(len(points))
            return ((index, hits[index].mask if index in hits else 0, None) for index in range(len(points)))
        self._walked.inc(len(hits))
        return ((index, hit.mask, touched(parts[index], hit.ranges)) for index, hit in sorted(hits.items()))

    def _select_in_request(self, batch: Any, signal: Signal, names: tuple[str, str, str]) -> _Selection:
        """The items of a traces or logs request to walk, with their rule masks and the fields to visit, and
        whether its envelopes need a walk.

        The scanner runs once over the request's items and envelopes (``items.split``), taken from the request's
        bytes: the receiver's, when nothing has changed the batch since (``gateway.wirebytes``), else one
        serialization."""
        rules = self.rules
        scanner = rules.scanner
        chosen: list[_Chosen] = []
        if rules.walk_all_reason or scanner is None:
            if rules.walk_all_reason:
                chosen = [(-1, indexes, item, rules.all_rules, None) for indexes, item in _indexed(batch, names)]
            elif rules.walk_all_keys:
                chosen = [(-1, indexes, item, 0, None) for indexes, item in _indexed(batch, names)]
            # else nothing the scanner could look for: only envelopes (key rules) are walked
            self._walked.inc(len(chosen))
            return _Selection(chosen)
        data = wire_bytes(batch)
        received = data is not None
        if data is None:
            data = batch.SerializeToString()
        parts = split(data, signal, batch)
        hits, envelopes = parts.locate(scanner.find(parts.text))
        items = parts.count
        self._scanned.inc(items)
        if envelopes:
            # A hit in the envelopes: resource and scope attributes are walked, and text in fields this schema
            # does not know cannot be checked, so it does not leave.
            batch.DiscardUnknownFields()
            received = False  # the envelopes changed: the bytes are forgotten
        located = {parts.address(index): (hit, index) for index, hit in hits.items()}
        if rules.walk_all_keys:
            self._walked.inc(items)
            for indexes, item in _indexed(batch, names):
                found = located.get(indexes)
                if found is not None:
                    item.DiscardUnknownFields()
                chosen.append((-1, indexes, item, found[0].mask if found is not None else 0, None))
            return _Selection(chosen)  # an allow-list: every envelope is walked too
        self._walked.inc(len(located))
        outer, middle, inner = names
        scope: tuple[int, int] | None = None
        items_of_scope: Any = None
        for (i, j, k), (hit, index) in sorted(located.items()):
            if scope != (i, j):  # each access through the parents creates their Python wrappers: once per scope
                scope, items_of_scope = (i, j), getattr(getattr(getattr(batch, outer)[i], middle)[j], inner)
            item = items_of_scope[k]
            item.DiscardUnknownFields()  # flagged: text in a field the walk does not know cannot stay
            chosen.append((index, (i, j, k), item, hit.mask, touched(parts.item(index), hit.ranges)))
        return _Selection(chosen, data if received and parts.exact else None, parts, envelopes)

    def _hand_on_bytes(self, batch: Any, signal: Signal, selection: _Selection) -> None:
        """Tell ``gateway.wirebytes`` the request's exact bytes after the walk, when they can be had by splicing
        (``items.splice``): the received bytes themselves when no walked item changed, else those bytes with
        the changed items' new serializations in place. Otherwise the ``ForgetWireBytes`` after this processor
        forgets the bytes, and whoever needs them serializes the batch."""
        data, parts = selection.data, selection.parts
        if data is None or parts is None:
            return
        changed = changed_items(parts, ((index, item) for index, _, item, _, _ in selection.chosen))
        if changed:
            rewritten(batch, splice(data, signal, parts, changed))
        else:
            unchanged(batch)

    def _envelopes(self, batch: Any, names: tuple[str, str, str]) -> None:
        outer, middle, _ = names
        for first in getattr(batch, outer):
            self._envelope(first.resource.attributes)
            for second in getattr(first, middle):
                self._envelope(second.scope.attributes)

    def _envelope(self, attrs: Any) -> None:
        stats = Stats() if self._summary else None
        redact_attributes(attrs, self.rules, self._all, stats)
        if stats:
            write_summary(attrs, stats, self._summary)

    # ------------------------------------------------------------------ signals

    async def consume_wire(self, batch: WireBatch) -> None:
        await self.run_wire(batch, self.process_wire)

    def process_wire(self, batch: WireBatch) -> Any:
        """A traces request held as bytes, redacted without parsing it: each flagged span is parsed alone,
        walked, and spliced back when it changed (a new ``WireBatch``; the received one never changes).
        ``NotImplemented`` (the request is then parsed and given to ``process_traces``) where the walk needs the
        whole message: logs and metrics, every item walked (``walk_all_reason``, an allow-list), no scanner, a
        hit in the envelopes, bytes the C walk refuses."""
        rules = self.rules
        if (batch.signal is not Signal.TRACES or rules.walk_all_reason or rules.scanner is None
                or rules.walk_all_keys):
            return NotImplemented
        data = batch.data
        parts = split_wire(data)
        if parts is None:
            return NotImplemented
        hits, envelopes = parts.locate(rules.scanner.find(parts.text))
        if envelopes:
            return NotImplemented
        self._scanned.inc(parts.count)
        self._walked.inc(len(hits))
        rules_for = rules.rules_for
        walked = []
        for index, hit in sorted(hits.items()):
            item = parts.item(index)
            span = Span.FromString(item)
            span.DiscardUnknownFields()  # flagged: text in a field the walk does not know cannot stay
            self._span(span, rules_for(hit.mask), touched(item, hit.ranges))
            walked.append((index, span))
        changed = changed_items(parts, walked)
        if not changed:
            return batch
        return WireBatch(Signal.TRACES, [splice(data, Signal.TRACES, parts, changed)], [batch.items])

    def process_traces(self, batch: Any) -> Any:
        selection = self._select_in_request(batch, Signal.TRACES, _TRACE_NAMES)
        if selection.envelopes:
            self._envelopes(batch, _TRACE_NAMES)
        rules_for = self.rules.rules_for
        for _, _, span, mask, fields in selection.chosen:
            self._span(span, rules_for(mask), fields)
        self._hand_on_bytes(batch, Signal.TRACES, selection)
        return batch

    def process_metrics(self, batch: Any) -> Any:
        points = []
        for resource_metrics in batch.resource_metrics:
            self._envelope(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                self._envelope(scope_metrics.scope.attributes)
                for metric in scope_metrics.metrics:
                    if metric.metadata:
                        self._envelope(metric.metadata)
                    points.extend(_points(metric))
        rules_for = self.rules.rules_for
        for index, mask, fields in self._select_points(batch, points):
            if mask:
                points[index].DiscardUnknownFields()  # flagged: text the walk cannot check does not stay
            self._point(points[index], rules_for(mask), fields)
        return batch

    def process_logs(self, batch: Any) -> Any:
        selection = self._select_in_request(batch, Signal.LOGS, _LOG_NAMES)
        if selection.envelopes:
            self._envelopes(batch, _LOG_NAMES)
        rules_for = self.rules.rules_for
        if self.rules.body_rule is None:
            for _, _, record, mask, fields in selection.chosen:
                self._log(record, rules_for(mask), fields)
            self._hand_on_bytes(batch, Signal.LOGS, selection)
            return batch
        # The body action changes every body, flagged or not; plain string bodies of clean records go the short way.
        # (So the bytes are forgotten: every record may have changed.)
        chosen = {indexes: (mask, fields) for _, indexes, _, mask, fields in selection.chosen}
        quick = not (self._summary or self.rules.allowed_values or self.rules.body_rule.action is Action.DROP)
        replace, action = self.rules.replacer.replace, self.rules.body_rule.action
        for i, resource_logs in enumerate(batch.resource_logs):
            for j, scope_logs in enumerate(resource_logs.scope_logs):
                flagged = {k: choice for (a, b, k), choice in chosen.items() if a == i and b == j}
                for k, record in enumerate(scope_logs.log_records):
                    choice = flagged.get(k) if flagged else None
                    if choice is None and quick:
                        body = record.body
                        text = body.string_value  # "" unless the body is a non-empty string
                        if text:
                            body.string_value = replace(action, text, text)
                            continue
                        if body.WhichOneof("value") in (None, "string_value"):
                            continue
                    mask, fields = choice or (0, {})
                    self._log(record, rules_for(mask), fields, whole_body=True)
        return batch

    # ------------------------------------------------------------------ items

    def _span(self, span: Any, active: Sequence[ValueRule], fields: dict[int, set[int]] | None) -> None:
        rules, summary = self.rules, self._summary
        stats = Stats() if summary else None
        if fields is None:
            redact_attributes(span.attributes, rules, active, stats)
        elif _SPAN_ATTRIBUTES in fields:
            redact_attributes(span.attributes, rules, active, stats, indexes=sorted(fields[_SPAN_ATTRIBUTES]))
        if active and (fields is None or _SPAN_NAME in fields):
            redact_name(span, "name", rules, active, stats, "span.name")
        if active and (fields is None or _SPAN_STATUS in fields) and span.status.message:
            redact_name(span.status, "message", rules, active, stats, "status.message")
        events = range(len(span.events)) if fields is None else sorted(fields.get(_SPAN_EVENTS, ()))
        for index in events:
            event = span.events[index]
            event_stats = Stats() if summary else None
            if active:
                redact_name(event, "name", rules, active, event_stats, "event.name")
            self._attributes(event.attributes, active, event_stats)
        links = range(len(span.links)) if fields is None else sorted(fields.get(_SPAN_LINKS, ()))
        for index in links:
            self._attributes(span.links[index].attributes, active, Stats() if summary else None)
        if stats:
            write_summary(span.attributes, stats, summary)

    def _attributes(self, attrs: Any, active: Sequence[ValueRule], stats: Stats | None) -> None:
        redact_attributes(attrs, self.rules, active, stats)
        if stats:
            write_summary(attrs, stats, self._summary)

    def _point(self, point: Any, active: Sequence[ValueRule], fields: dict[int, set[int]] | None) -> None:
        attributes, exemplars = _point_fields(point)
        if fields is None or attributes in fields:
            self._attributes(point.attributes, active, Stats() if self._summary else None)
        if exemplars:
            chosen = range(len(point.exemplars)) if fields is None else sorted(fields.get(exemplars, ()))
            for index in chosen:
                self._attributes(point.exemplars[index].filtered_attributes, active,
                                 Stats() if self._summary else None)

    def _log(self, record: Any, active: Sequence[ValueRule], fields: dict[int, set[int]] | None,
             whole_body: bool = False) -> None:
        rules, summary = self.rules, self._summary
        stats = Stats() if summary else None
        body_stats = Stats() if summary else None
        if fields is None:
            redact_attributes(record.attributes, rules, active, stats)
        elif _LOG_ATTRIBUTES in fields:
            redact_attributes(record.attributes, rules, active, stats, indexes=sorted(fields[_LOG_ATTRIBUTES]))
        if active and (fields is None or _LOG_EVENT_NAME in fields) and record.event_name:
            redact_name(record, "event_name", rules, active, stats, "event_name")
        body_rules = (rules.body_rule, *active) if whole_body and rules.body_rule is not None else active
        if fields is not None and _LOG_BODY not in fields and not whole_body:
            body_rules = ()
        if body_rules and record.HasField("body"):
            body = record.body
            if body.WhichOneof("value") == "kvlist_value":
                redact_attributes(body.kvlist_value.values, rules, body_rules, body_stats)
            else:
                outcome = redact_any(body, rules, body_rules, body_stats, "")
                if outcome == DROPPED:
                    record.ClearField("body")
                if body_stats is not None and outcome:
                    (body_stats.redacted if outcome == DROPPED else body_stats.masked).append("body")
        if stats:
            write_summary(record.attributes, stats, summary)
        if body_stats:
            write_summary(record.attributes, body_stats, summary, body=True)
