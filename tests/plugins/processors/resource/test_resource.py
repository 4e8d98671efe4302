from __future__ import annotations

import pytest

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
     ["attributes::0::action: must be one of insert, upsert, update, delete, got 'merge'"]),
    ({"attributes": [{"key": "a", "action": "upsert"}]},
     ["attributes::0::value: a string, number or bool is required for upsert"]),
])
def test_invalid_configs(data: dict, errors: list[str]) -> None:
    assert validate_tree(decode(factory.create_default_config(), data)) == errors
