"""The ``resourcedetection`` processor: detectors run once at start, within ``timeout``; every batch's resources
then get the detected attributes (replacing existing ones with ``override: true``). Touches one envelope per
resource, never the items."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from gateway import ComponentSettings, Consumer, Host, Processor, Signal

from .config import Config
from .detectors import Skip, detect_docker, detect_env, detect_k8snode, detect_system

__all__ = ["ResourceDetectionProcessor"]

_ENVELOPES = {Signal.TRACES: "resource_spans", Signal.METRICS: "resource_metrics", Signal.LOGS: "resource_logs"}


class ResourceDetectionProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        super().__init__(settings, config, next_consumer)
        self._envelope = _ENVELOPES[settings.signal or Signal.TRACES]
        #: What detection found, in detector order (with override false, the first detector wins).
        self.detected: dict[str, str] = {}
        self._keyvalues: list[KeyValue] = []

    async def _run_detector(self, name: str) -> dict[str, str]:
        config: Config = self.config
        if name == "env":
            return detect_env()
        if name == "system":
            return await asyncio.to_thread(detect_system, config.system)
        if name == "docker":
            return await detect_docker(config.docker)
        return detect_k8snode(config.k8snode)

    async def start(self, host: Host) -> None:
        config: Config = self.config
        results = await asyncio.gather(*(asyncio.wait_for(self._run_detector(d), config.timeout)
                                         for d in config.detectors), return_exceptions=True)
        detected: dict[str, str] = {}
        for name, result in zip(config.detectors, results, strict=True):
            if isinstance(result, dict):
                for key, value in result.items():
                    detected.setdefault(key, value)  # an earlier detector wins, as in the Collector
                continue
            reason = "timed out" if isinstance(result, TimeoutError) else str(result) or type(result).__name__
            level = self.logger.info if isinstance(result, Skip) else self.logger.warning
            level("detector %s skipped: %s", name, reason, extra={"detector": name})
        self.detected = detected
        self._keyvalues = [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in detected.items()]
        self.logger.info("resource detected", extra={"attributes": ", ".join(sorted(detected)) or "none"})

    def _apply(self, batch: Any) -> Any:
        if not self._keyvalues:
            return batch
        override = self.config.override
        for envelope in getattr(batch, self._envelope):
            attributes = envelope.resource.attributes
            index = {kv.key: i for i, kv in enumerate(attributes)}
            for kv in self._keyvalues:
                position = index.get(kv.key)
                if position is None:
                    attributes.append(kv)
                elif override:
                    attributes[position].value.CopyFrom(kv.value)
        return batch

    process_traces = process_metrics = process_logs = _apply
