"""Decision order, actions, hashing, summaries and the body action, through the processor."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from gateway.component import Signal
from gateway.testing import make_logs, make_traces

KEY = "k" * 32


def span_attrs(request: Any) -> dict[str, Any]:
    span = request.resource_spans[0].scope_spans[0].spans[0]
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value") or "string_value") for kv in span.attributes}


def traces(make_processor: Any, config: dict[str, Any], attributes: dict[str, Any], spans: int = 2) -> Any:
    processor, _, _ = make_processor(config)
    return processor.process_traces(make_traces(spans, attributes=attributes))


def test_decision_order_ignored_then_allow_list_then_blocked_keys_then_values(make_processor: Any) -> None:
    config = {"allowed_keys": ["note", "api.token", "safe", "route"], "ignored_keys": ["safe"],
              "blocked_key_patterns": [".*token.*"], "detectors": ["email"]}
    out = span_attrs(traces(make_processor, config, {
        "note": "mail bob@example.com", "api.token": "t0p-s3cret", "safe": "eve@example.com",
        "route": "/api/orders/{id}", "user.ssn": "078-05-1120"}))
    assert out == {"note": "mail ****", "api.token": "****", "safe": "eve@example.com", "route": "/api/orders/{id}"}


def test_an_empty_allow_list_removes_every_attribute_even_of_the_resource(make_processor: Any) -> None:
    processor, _, _ = make_processor({})
    request = processor.process_traces(make_traces(3, attributes={"a": "1"}, resource={"team": "x"}))
    assert list(request.resource_spans[0].resource.attributes) == []
    assert all(len(s.attributes) == 0 for s in request.resource_spans[0].scope_spans[0].spans)


def test_allowed_values_keep_what_they_match_and_only_that(make_processor: Any) -> None:
    config = {"allow_all_keys": True, "detectors": ["email"], "allowed_values": [r"[a-z]+@support\.example\.com"],
              "blocked_key_patterns": ["owner"]}
    out = span_attrs(traces(make_processor, config, {
        "note": "cc help@support.example.com and jo@gmail.com", "owner": "ops@support.example.com"}))
    assert out == {"note": "cc help@support.example.com and ****", "owner": "ops@support.example.com"}


def test_actions_per_rule(make_processor: Any) -> None:
    config = {"allow_all_keys": True, "mask": "[x]", "hmac_key": KEY, "hash_length": 12,
              "detectors": {"email": "hash", "credit_card": "mask", "phone": "length", "us_ssn": "drop"},
              "blocked_values": [{"pattern": "CUST-[0-9]{4}", "action": "hash"}]}
    out = span_attrs(traces(make_processor, config, {
        "a": "Alice@Example.com", "b": "card 4111 1111 1111 1111", "c": "call +1 415 555 0132 now",
        "d": "ssn 078-05-1120", "e": "customer CUST-0042"}))
    pseudonym = hmac.new(KEY.encode(), b"alice@example.com", hashlib.sha256).hexdigest()[:12]
    assert out == {"a": pseudonym, "b": "card [x]", "c": "call <15 chars> now",
                   "e": "customer " + hmac.new(KEY.encode(), b"CUST-0042", hashlib.sha256).hexdigest()[:12]}


def test_pseudonyms_are_stable_across_spans_logs_and_formats(make_processor: Any) -> None:
    config = {"allow_all_keys": True, "hmac_key": KEY, "detectors": {"email": "hash", "phone": "hash"}}
    tracer, _, _ = make_processor(config, Signal.TRACES)
    logger, _, _ = make_processor(config, Signal.LOGS)
    spans = tracer.process_traces(make_traces(2, attributes={"e": "Jane@Example.org", "p": "+1 (415) 555-0132"}))
    logs = logger.process_logs(make_logs(1, body="jane@example.org called from +1 415 555 0132"))
    e, p = span_attrs(spans)["e"], span_attrs(spans)["p"]
    assert len(e) == 64 and e != p
    assert logs.resource_logs[0].scope_logs[0].log_records[0].body.string_value == f"{e} called from {p}"


def test_collector_unkeyed_hash_functions(make_processor: Any) -> None:
    out = span_attrs(traces(make_processor, {"allow_all_keys": True, "hash_function": "md5",
                                             "blocked_key_patterns": ["secret"]}, {"secret": "hunter2"}))
    assert out == {"secret": hashlib.md5(b"hunter2").hexdigest()}


def test_drop_removes_attributes_and_array_elements_and_clears_bodies(make_processor: Any) -> None:
    config = {"allow_all_keys": True, "detectors": {"email": "drop"}}
    processor, _, _ = make_processor(config)
    request = make_traces(1, attributes={"to": "a@example.com", "keep": "x", "list": ["ok", "b@example.com"]})
    request.resource_spans[0].scope_spans[0].spans[0].name = "mail c@example.com"
    processor.process_traces(request)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert [kv.key for kv in span.attributes] == ["keep", "list"]
    assert [v.string_value for v in span.attributes[1].value.array_value.values] == ["ok"]
    assert span.name == "****"  # a name cannot be removed
    logger, _, _ = make_processor(config, Signal.LOGS)
    logs = logger.process_logs(make_logs(1, body="from d@example.com"))
    assert not logs.resource_logs[0].scope_logs[0].log_records[0].HasField("body")


def test_body_action_replaces_every_string_of_every_body(make_processor: Any) -> None:
    config = {"allow_all_keys": True, "body_action": "length", "ignored_keys": ["level"]}
    processor, _, _ = make_processor(config, Signal.LOGS)
    logs = processor.process_logs(make_logs(2, body="caller 7 abandoned after 30 s"))
    assert {r.body.string_value for r in logs.resource_logs[0].scope_logs[0].log_records} == {"<29 chars>"}
    structured = processor.process_logs(make_logs(1, body={"msg": "hello there", "level": "warn", "n": 3}))
    body = structured.resource_logs[0].scope_logs[0].log_records[0].body
    values = {kv.key: kv.value for kv in body.kvlist_value.values}
    assert (values["msg"].string_value, values["level"].string_value, values["n"].int_value) == (
        "<11 chars>", "warn", 3)


def test_redact_all_types_checks_numbers(make_processor: Any) -> None:
    attributes = {"card": 4111111111111111, "count": 3}
    assert span_attrs(traces(make_processor, {"allow_all_keys": True, "detectors": ["credit_card"]}, attributes)) \
        == attributes
    assert span_attrs(traces(make_processor, {"allow_all_keys": True, "detectors": ["credit_card"],
                                              "redact_all_types": True}, attributes)) == {"card": "****", "count": 3}


def test_a_trailing_dollar_ends_the_key(make_processor: Any) -> None:
    config = {"allow_all_keys": True, "blocked_key_patterns": [{"pattern": r"(^|\.)message$", "action": "length"}]}
    out = span_attrs(traces(make_processor, config, {"chat.message": "hello", "message.id": "m-1"}))
    assert out == {"chat.message": "<5 chars>", "message.id": "m-1"}


def test_blocked_key_on_an_attribute_without_value_changes_nothing(make_processor: Any) -> None:
    processor, _, _ = make_processor({"allow_all_keys": True, "blocked_key_patterns": ["token"]})
    request = make_traces(1)
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="token")
    processor.process_traces(request)
    [kv] = [kv for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes if kv.key == "token"]
    assert not kv.HasField("value")


def test_summary_debug_lists_keys_and_counts_with_the_collectors_names(make_processor: Any) -> None:
    config = {"allowed_keys": ["note", "ok", "safe", "mail"], "ignored_keys": ["safe"], "detectors": ["email"],
              "allowed_values": [r"[a-z]+@support\.example\.com"], "summary": "debug"}
    out = span_attrs(traces(make_processor, config, {
        "note": "x@example.com", "ok": "fine", "safe": "s", "mail": "a@support.example.com", "gone": "1",
        "gone2": "2"}))
    assert out == {"note": "****", "ok": "fine", "safe": "s", "mail": "a@support.example.com",
                   "redaction.redacted.keys": "gone,gone2", "redaction.redacted.count": 2,
                   "redaction.masked.keys": "note", "redaction.masked.count": 1,
                   "redaction.allowed.keys": "mail", "redaction.allowed.count": 1,
                   "redaction.ignored.count": 1}


def test_summary_info_counts_and_chained_processors_add_up(make_processor: Any) -> None:
    first, _, _ = make_processor({"allow_all_keys": True, "detectors": ["email"], "summary": "info"})
    second, _, _ = make_processor({"allowed_keys": ["a"], "detectors": ["phone"], "summary": "info"})
    request = first.process_traces(make_traces(1, attributes={"a": "x@example.com 415-555-0132", "b": "y@ex.io"}))
    request = second.process_traces(request)
    assert span_attrs(request) == {"a": "**** ****", "redaction.masked.count": 3, "redaction.redacted.count": 1}


def test_summary_silent_adds_nothing_and_names_are_reported(make_processor: Any) -> None:
    assert "redaction.masked.count" not in span_attrs(
        traces(make_processor, {"allow_all_keys": True, "detectors": ["email"]}, {"a": "x@example.com"}))
    processor, _, _ = make_processor({"allow_all_keys": True, "detectors": ["email"], "summary": "debug"})
    request = make_traces(1, attributes={"n": 1})
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.name, span.status.message = "mail x@example.com", "no x@example.com"
    processor.process_traces(request)
    assert span_attrs(request)["redaction.masked.keys"] == "span.name,status.message"


def test_log_body_summary_goes_to_the_record_attributes(make_processor: Any) -> None:
    processor, _, _ = make_processor({"allow_all_keys": True, "detectors": ["email"], "summary": "debug"},
                                     Signal.LOGS)
    logs = processor.process_logs(make_logs(1, body={"from": "x@example.com", "n": 1}))
    record = logs.resource_logs[0].scope_logs[0].log_records[0]
    attributes = {kv.key: kv.value for kv in record.attributes}
    assert attributes["redaction.body.masked.keys"].string_value == "from"
    assert attributes["redaction.body.masked.count"].int_value == 1


def test_a_pattern_without_literal_walks_everything_and_says_so(make_processor: Any, caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="otelgw"):
        processor, _, telemetry = make_processor({"allow_all_keys": True, "blocked_values": [r"\w{24,}"]})
    assert "no literal the prefilter can search for in blocked_values::0" in caplog.text
    request = processor.process_traces(make_traces(4, attributes={"m": "key abcdefghijklmnopqrstuvwxyz0123"}))
    assert span_attrs(request) == {"m": "key ****"}
    exposition = telemetry.exposition().decode()
    assert 'otelgw_processor_redaction_items_walked_total{otel_signal="traces",processor="redaction"} 4.0' \
        in exposition


def test_clean_items_are_scanned_not_walked(make_processor: Any) -> None:
    processor, _, telemetry = make_processor({"allow_all_keys": True, "detectors": ["email", "phone"]})
    request = make_traces(50)
    for span in request.resource_spans[0].scope_spans[0].spans:  # random ids can look like anything
        span.trace_id, span.span_id, span.parent_span_id = b"\x11" * 16, b"\x22" * 8, b""
    request.resource_spans[0].scope_spans[0].spans[7].attributes.add(key="m").value.string_value = "a@b.example"
    processor.process_traces(request)
    exposition = telemetry.exposition().decode()
    assert 'otelgw_processor_redaction_items_scanned_total{otel_signal="traces",processor="redaction"} 50.0' \
        in exposition
    assert 'otelgw_processor_redaction_items_walked_total{otel_signal="traces",processor="redaction"} 1.0' \
        in exposition


def test_numbers_under_a_blocked_key_are_kept_unless_asked(make_processor: Any) -> None:
    attributes = {"gen_ai.usage.input_tokens": 1234, "ratio.token": 0.5, "api.token": "t0p-s3cret"}
    out = span_attrs(traces(make_processor, {"allow_all_keys": True, "blocked_key_patterns": ["token"]}, attributes))
    assert out == {"gen_ai.usage.input_tokens": 1234, "ratio.token": 0.5, "api.token": "****"}
    out = span_attrs(traces(make_processor, {"allow_all_keys": True, "blocked_key_patterns": ["token"],
                                             "blocked_key_patterns_numbers": True}, attributes))
    assert out == {"gen_ai.usage.input_tokens": "****", "ratio.token": "****", "api.token": "****"}


def shipped_rules() -> dict[str, Any]:
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[4]
    config = yaml.safe_load((root / "configs" / "redaction.yaml").read_text())["processors"]["redaction"]
    config["hmac_key"] = KEY
    return config


def test_shipped_rules_know_the_genai_conventions(make_processor: Any) -> None:
    chat = "Hi, I am Jane and my parcel never came"
    out = span_attrs(traces(make_processor, shipped_rules(), {
        "gen_ai.usage.input_tokens": 812, "gen_ai.usage.output_tokens": 96, "gen_ai.usage.cost": 0.0123,
        "gen_ai.input.messages": f'[{{"role":"user","parts":[{{"type":"text","content":"{chat}"}}]}}]',
        "gen_ai.output.messages": chat, "gen_ai.prompt": chat, "gen_ai.completion": chat,
        "gen_ai.prompt.0.content": chat, "gen_ai.system_instructions": chat,
        "gen_ai.tool.call.arguments": '{"email": "x"}', "gen_ai.tool.call.result": chat,
        "gen_ai.request.model": "gpt-4o", "support.kb.results": 3,
        "http.request.header.authorization": "Basic dXNlcjpwYXNz", "session_token": "abc123", "db.password": "pw",
    }))
    assert out["gen_ai.usage.input_tokens"] == 812 and out["gen_ai.usage.output_tokens"] == 96
    assert out["gen_ai.usage.cost"] == 0.0123 and out["support.kb.results"] == 3
    assert out["gen_ai.request.model"] == "gpt-4o"
    for key in ("gen_ai.output.messages", "gen_ai.prompt", "gen_ai.completion", "gen_ai.prompt.0.content",
                "gen_ai.system_instructions", "gen_ai.tool.call.result"):
        assert out[key] == f"<{len(chat)} chars>", key
    assert out["gen_ai.input.messages"].startswith("<") and chat not in str(out)
    assert out["http.request.header.authorization"] == out["session_token"] == out["db.password"] == "****"


def test_shipped_rules_redact_span_names(make_processor: Any) -> None:
    processor, _, _ = make_processor(shipped_rules())
    request = make_traces(1)
    request.resource_spans[0].scope_spans[0].spans[0].name = "GET /api/customers/jane.doe@example.com"
    out = processor.process_traces(request)
    name = out.resource_spans[0].scope_spans[0].spans[0].name
    assert name.startswith("GET /api/customers/") and "jane" not in name and "example.com" not in name
