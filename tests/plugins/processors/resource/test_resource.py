from __future__ import annotations

import hashlib

import pytest

from gateway import client
from gateway.client import ClientInfo
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.testing import Sink, make_logs, settings_for
from plugins.processors.resource.factory import factory


def attributes(batch) -> dict:  # type: ignore[no-untyped-def]
    return {kv.key: kv.value.WhichOneof("value") and getattr(kv.value, kv.value.WhichOneof("value"))
            for kv in batch.resource_logs[0].resource.attributes}


async def test_insert_upsert_update_delete() -> None:
    config = decode(factory.create_default_config(), {"attributes": [
        {"key": "service.name", "value": "ignored", "action": "insert"},
        {"key": "k8s.node.name", "value": "node-1", "action": "upsert"},
        {"key": "replicas", "value": 3, "action": "insert"},
        {"key": "absent", "value": "x", "action": "update"},
        {"key": "gone", "action": "delete"},
    ]})
    assert validate_tree(config) == []
    sink = Sink()
    processor = factory.create_logs(settings_for(Kind.PROCESSOR, "resource", Signal.LOGS), config, sink)  # type: ignore[misc]
    batch = make_logs(2)
    batch.resource_logs[0].resource.attributes.add(key="gone").value.string_value = "secret"
    await processor.consume_logs(batch)
    assert attributes(sink.batches[Signal.LOGS][0]) == {
        "service.name": "test-service", "k8s.node.name": "node-1", "replicas": 3}


@pytest.mark.parametrize(("data", "errors"), [
    ({}, ["attributes: at least one action is required"]),
    ({"attributes": [{"key": "a", "action": "merge"}]},
     ["attributes::0::action: must be one of insert, upsert, update, delete, hash, convert, got 'merge'"]),
    ({"attributes": [{"key": "a", "action": "upsert"}]},
     ["attributes::0::upsert needs exactly one of value, from_attribute, from_context"]),
    ({"attributes": [{"key": "a", "action": "upsert", "value": "x", "from_attribute": "b"}]},
     ["attributes::0::upsert needs exactly one of value, from_attribute, from_context, got value, from_attribute"]),
    ({"attributes": [{"action": "delete", "pattern": "("}, {"key": "a", "action": "convert"}]},
     ["attributes::0::pattern: invalid regular expression '(': missing ), unterminated subpattern at position 0",
      "attributes::1::converted_type: must be one of int, double, string, got ''"]),
])
def test_invalid_configs(data: dict, errors: list[str]) -> None:
    assert validate_tree(decode(factory.create_default_config(), data)) == errors


async def test_from_attribute_from_context_pattern_hash_and_convert() -> None:
    config = decode(factory.create_default_config(), {"attributes": [
        {"key": "service.namespace", "from_attribute": "k8s.namespace.name", "action": "upsert"},
        {"key": "missing.copy", "from_attribute": "absent", "action": "upsert"},
        {"key": "tenant", "from_context": "metadata.x-tenant", "action": "insert"},
        {"key": "peer", "from_context": "client.address", "action": "upsert"},
        {"action": "delete", "pattern": "^secret\\."},
        {"key": "user.email", "action": "hash"},
        {"key": "replicas", "action": "convert", "converted_type": "int"},
        {"key": "zone", "action": "convert", "converted_type": "int"},  # "eu-1" does not convert: kept
    ]})
    assert validate_tree(config) == []
    sink = Sink()
    processor = factory.create_logs(settings_for(Kind.PROCESSOR, "resource", Signal.LOGS), config, sink)  # type: ignore[misc]
    batch = make_logs(1)
    resource = batch.resource_logs[0].resource.attributes
    for key, value in (("k8s.namespace.name", "shop"), ("secret.token", "t"), ("secret.key", "k"),
                       ("user.email", "jane@example.com"), ("replicas", "3"), ("zone", "eu-1")):
        resource.add(key=key).value.string_value = value
    with client.attached(ClientInfo({"x-tenant": ("blue", "green")}, "10.0.0.7:5000")):
        await processor.consume_logs(batch)
    assert attributes(sink.batches[Signal.LOGS][0]) == {
        "service.name": "test-service", "k8s.namespace.name": "shop", "service.namespace": "shop",
        "user.email": hashlib.sha256(b"jane@example.com").hexdigest(), "replicas": 3, "zone": "eu-1",
        "tenant": "blue;green", "peer": "10.0.0.7:5000"}
