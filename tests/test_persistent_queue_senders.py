"""A persistent sending queue (``sending_queue::storage``) with ``wait_for_result`` and client metadata, in a real
gateway process in front of a real OTLP backend:

- ``wait_for_result: true`` with storage answers the sender once its request was delivered (not once it is on
  disk), with the backend's error when it was dropped;
- the request's client metadata (``include_metadata``) is written with the record, so ``headers_setter``'s
  ``from_context`` sets the same header when the record is sent, also after a SIGKILL and a restart.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from gateway.component import Signal
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess, free_port

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#: Generous bounds on waiting, never asserted as durations: a hang fails instead of stalling the suite.
WAIT_S = 60.0


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def write_config(tmp_path: Path, ports: dict[str, int], sink: OtlpSink) -> Path:
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
          file_storage/queue: {{directory: "{tmp_path / 'queue'}", create_directory: true}}
          headers_setter:
            headers: [{{key: X-Scope-OrgID, from_context: x-tenant}}]
        receivers:
          otlp:
            protocols:
              grpc: {{endpoint: "127.0.0.1:{ports['grpc']}", include_metadata: true}}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            auth: {{authenticator: headers_setter}}
            sending_queue: {{storage: file_storage/queue, wait_for_result: true, num_consumers: 4}}
            retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 0}}
        service:
          extensions: [health_check, file_storage/queue, headers_setter]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [otlp]}}
    """))
    return config


def export(channel: grpc.aio.Channel, tenant: str, service: str) -> asyncio.Task[object]:
    call = channel.unary_unary(EXPORT)
    body = make_traces(3, service=service).SerializeToString()
    return asyncio.ensure_future(call(body, metadata=(("x-tenant", tenant),), timeout=WAIT_S))


def service_of(batch: object) -> str:
    resource = batch.resource_spans[0].resource  # type: ignore[attr-defined]
    return next(a.value.string_value for a in resource.attributes if a.key == "service.name")


async def test_wait_for_result_with_storage_answers_after_delivery_with_the_senders_headers(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    ports = {name: free_port() for name in ("grpc", "health", "metrics")}
    gateway = GatewayProcess(write_config(tmp_path, ports, sink), ports, tmp_path / "gateway.log").start()
    try:
        await asyncio.to_thread(gateway.wait_ready)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
            sink.fail_next(1_000_000, message="backend down")
            pending = export(channel, "team-a", "svc-a")
            await wait_for(lambda: len(sink.received(Signal.TRACES)) >= 3, "three refused attempts")
            # On disk and refused three times (the backend stays down until the test says): no answer yet.
            assert not pending.done()
            sink.clear()  # the backend is back
            await pending  # answered OK once an attempt was delivered
            delivered = [r for r in sink.received(Signal.TRACES) if r.accepted]
            assert [service_of(r.batch) for r in delivered] == ["svc-a"]
            assert delivered[0].headers["x-scope-orgid"] == "team-a"
            # A request the backend refuses for good: the sender gets the refusal, not an early OK.
            sink.refuse_when(lambda batch: "no such tenant")
            with_error = export(channel, "team-b", "svc-b")
            try:
                await with_error
                raise AssertionError("a refused request was answered OK")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, exc
                assert "no such tenant" in (exc.details() or "")
    finally:
        gateway.stop()
        await sink.stop()


async def test_client_metadata_survives_sigkill_and_restart(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    sink.fail_next(1_000_000, message="backend down")
    ports = {name: free_port() for name in ("grpc", "health", "metrics")}
    config = write_config(tmp_path, ports, sink)
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(config, ports, log).start()
    try:
        await asyncio.to_thread(gateway.wait_ready)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
            pending = [export(channel, f"tenant-{i}", f"svc-{i}") for i in range(3)]
            # every record on disk and tried at least once (each attempt carried its sender's header)
            await wait_for(lambda: {service_of(r.batch) for r in sink.received(Signal.TRACES)}
                           == {"svc-0", "svc-1", "svc-2"}, "an attempt of every request")
            assert all(r.headers["x-scope-orgid"] == "tenant-" + service_of(r.batch)[4:]
                       for r in sink.received(Signal.TRACES))
            assert not any(p.done() for p in pending)  # not delivered, so not answered
            gateway.kill()  # SIGKILL: no drain, no goodbye
            for call in pending:  # the senders learn nothing was acknowledged; they would retry
                try:
                    await call
                    raise AssertionError("a request was answered OK before it was delivered")
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() is grpc.StatusCode.UNAVAILABLE, exc
        sink.clear()  # the backend is back
        gateway = GatewayProcess(config, ports, log).start()
        await asyncio.to_thread(gateway.wait_ready)
        await wait_for(lambda: {service_of(b) for b in sink.batches(Signal.TRACES)} == {"svc-0", "svc-1", "svc-2"},
                       "every request replayed from disk")
        # replayed after the restart with the metadata written with each record
        for received in sink.received(Signal.TRACES):
            assert received.headers["x-scope-orgid"] == "tenant-" + service_of(received.batch)[4:], received.headers
    finally:
        gateway.stop()
        await sink.stop()
