"""The pprof extension: a CPU profile in pprof's gzip'd protobuf format, with the functions that used the CPU."""

from __future__ import annotations

import asyncio
import gzip
import textwrap
from pathlib import Path

import aiohttp

from gateway._host.registry import load_registry
from gateway._host.service import Service, load_config
from gateway.component import ComponentID
from gateway.protos.pprof import profile_pb2

CONFIG = textwrap.dedent("""
    receivers:
      otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}
    exporters:
      debug: {}
    extensions:
      pprof: {endpoint: "127.0.0.1:0"}
    service:
      extensions: [pprof]
      telemetry: {metrics: {address: ""}}
      pipelines:
        traces: {receivers: [otlp], exporters: [debug]}
""")


def burn_cpu_for_the_profile() -> int:
    return sum(i * i for i in range(20_000))


async def test_profile_is_pprof_and_names_the_busy_function(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CONFIG)
    service = Service.from_files([str(path)])
    await service.start()
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            burn_cpu_for_the_profile()
            await asyncio.sleep(0)

    task = asyncio.create_task(busy())
    try:
        address = service.host.extensions[ComponentID("pprof")].server.address
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{address}/debug/pprof/profile?seconds=1") as answer:
                assert answer.status == 200
                data = await answer.read()
            async with session.get(f"http://{address}/debug/pprof/profile?seconds=0") as answer:
                assert answer.status == 400
            async with session.get(f"http://{address}/debug/pprof/profile",
                                   headers={"Host": "attacker.example:1777"}) as answer:
                assert answer.status == 403  # a DNS-rebinding page cannot read it
            first = asyncio.create_task(session.get(f"http://{address}/debug/pprof/profile?seconds=0.5"))
            await asyncio.sleep(0.1)
            async with session.get(f"http://{address}/debug/pprof/profile?seconds=0.5") as answer:
                assert answer.status == 409  # one profile at a time
            (await first).close()
    finally:
        stop.set()
        await task
        await service.shutdown()
    profile = profile_pb2.Profile.FromString(gzip.decompress(data))
    strings = profile.string_table
    assert strings[0] == ""
    assert [(strings[t.type], strings[t.unit]) for t in profile.sample_type] == [("cpu", "nanoseconds")]
    assert profile.period == 10_000_000 and profile.duration_nanos >= 1_000_000_000
    # one sample per distinct stack, valued count x period: the busy task kept the CPU busy most of the second
    assert sum(s.value[0] for s in profile.sample) >= 300_000_000
    functions = {f.id: strings[f.name] for f in profile.function}
    locations = {loc.id: loc for loc in profile.location}
    leaves = [functions[locations[s.location_id[0]].line[0].function_id] for s in profile.sample]
    busy_ns = sum(s.value[0] for s, leaf in zip(profile.sample, leaves, strict=True)
                  if "burn_cpu_for_the_profile" in leaf)
    assert busy_ns >= 0.5 * sum(s.value[0] for s in profile.sample)
    # every id a sample names exists, and each location has its line
    assert all(i in locations for s in profile.sample for i in s.location_id)
    assert all(loc.line[0].line > 0 for loc in profile.location)


def test_collector_options_load_and_save_to_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CONFIG.replace('pprof: {endpoint: "127.0.0.1:0"}',
                                   "pprof: {block_profile_fraction: 3, mutex_profile_fraction: 5}"))
    config = load_config([str(path)], load_registry())
    assert config.components[next(k for k in config.components if k[1] == ComponentID("pprof"))].config.endpoint \
        == "localhost:1777"
    path.write_text(CONFIG.replace('pprof: {endpoint: "127.0.0.1:0"}', "pprof: {save_to_file: cpu.prof}"))
    try:
        load_config([str(path)], load_registry())
    except Exception as exc:
        assert "extensions::pprof::save_to_file: not supported" in str(exc)
    else:
        raise AssertionError("save_to_file must be refused")
