"""The pprof extension: a CPU profile in pprof's gzip'd protobuf format, with the functions that used the CPU."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import aiohttp
import pytest

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


class Busy:
    """A started gateway with the pprof extension, its event loop kept busy in ``burn_cpu_for_the_profile``."""

    def __init__(self, tmp_path: Path) -> None:
        path = tmp_path / "gw.yaml"
        path.write_text(CONFIG)
        self.service = Service.from_files([str(path)])
        self.stop = asyncio.Event()

    async def __aenter__(self) -> str:
        await self.service.start()

        async def busy() -> None:
            while not self.stop.is_set():
                burn_cpu_for_the_profile()
                await asyncio.sleep(0)

        self.task = asyncio.create_task(busy())
        return str(self.service.host.extensions[ComponentID("pprof")].server.address)

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await self.task
        await self.service.shutdown()


async def test_profile_is_pprof_and_names_the_busy_function(tmp_path: Path) -> None:
    async with Busy(tmp_path) as address, aiohttp.ClientSession() as session:
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
    # what speedscope reads: each function's name (never its system_name), file and first line, and the last line
    # of a location; every location is in the one mapping, marked as symbolized
    assert all(strings[f.name] and strings[f.filename] and f.start_line > 0 for f in profile.function)
    assert all(f.system_name == 0 for f in profile.function)
    assert [(m.id, m.has_functions, m.has_filenames, m.has_line_numbers) for m in profile.mapping] == \
        [(1, True, True, True)]
    assert {loc.mapping_id for loc in profile.location} == {1}


GO = shutil.which("go")


@pytest.mark.skipif(GO is None, reason="go is not installed (Debian's golang-go, installed by "
                    "tests/install-test-servers.sh as root): go tool pprof cannot read the profile here")
async def test_go_tool_pprof_reads_the_profile(tmp_path: Path) -> None:
    """The real pprof (``go tool pprof``) reads the served profile as it is: the busy function first, and Python's
    ``<module>`` frames with their names (pprof's C++ name simplification would empty them if it applied)."""
    async with Busy(tmp_path) as address, aiohttp.ClientSession() as session, \
            session.get(f"http://{address}/debug/pprof/profile?seconds=1") as answer:
        assert answer.status == 200
        (tmp_path / "cpu.pprof").write_bytes(await answer.read())
    assert GO is not None
    env = {**os.environ, "HOME": str(tmp_path), "GOPATH": str(tmp_path / "go"), "GOFLAGS": "-mod=mod"}

    def pprof(*args: str) -> str:
        done = subprocess.run([GO, "tool", "pprof", *args, str(tmp_path / "cpu.pprof")], capture_output=True,
                              text=True, timeout=120, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Main binary filename not available" not in done.stderr, done.stderr
        return done.stdout

    top = pprof("-top", "-nodecount=1000")
    assert "Type: cpu" in top
    rows = [line.split() for line in top.splitlines() if line.strip().endswith("burn_cpu_for_the_profile")]
    assert len(rows) == 1, top
    cumulative_share = float(rows[0][4].rstrip("%"))  # its own time is in its generator expression
    assert cumulative_share >= 30, top  # the busy task kept the event loop busy most of the second
    assert "burn_cpu_for_the_profile.<locals>.<genexpr>" in top
    names = [line.split()[-1] for line in top.splitlines() if "%" in line and line.split()[-1] != "cum%"]
    assert "<module>" in names and "<unknown>" not in names, top
    raw = pprof("-raw")
    assert "<module>" in raw and "burn_cpu_for_the_profile" in raw, raw
    locations = raw.split("Locations", 1)[1].split("Mappings", 1)[0]
    # each location line: "id: address M=mapping name file:line s=start"; none without a name
    assert all(len(line.split()) >= 5 for line in locations.strip().splitlines()), locations


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
