"""Regenerate gateway/protos/ (Python modules, type stubs, the Jaeger gRPC stub) from the .proto files here.

    python protos/generate.py            # rewrite gateway/protos/ from protos/*.proto
    python protos/generate.py --check    # exit 1 and list the differences if gateway/protos/ is stale
    python protos/generate.py --out DIR  # generate into DIR instead (DIR/gateway/protos/...)

Uses grpcio-tools' bundled protoc, so the output depends only on the grpcio-tools version (a test dependency).
protoc names a module's imports after the .proto paths (``from jaeger.api_v2 import model_pb2``); the
generated modules live in the ``gateway.protos`` package instead, so those imports are rewritten. Every
generated file also gets lint and type-check exemptions: it is protoc's code, checked by this script, not by
hand.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
PACKAGE = "gateway.protos"
PACKAGE_DIR = Path(*PACKAGE.split("."))
#: The .proto files that have a gRPC service, and so get a ``*_pb2_grpc.py`` stub.
SERVICES = ("jaeger/api_v2/collector.proto",)

_INIT_DOCS = {
    "": "Python modules generated from the project's own .proto files (protos/); regenerate with\n"
        "``python protos/generate.py``, never edit by hand.\n\n"
        "- ``gateway.protos.jaeger.api_v2``: Jaeger's model and CollectorService (``PostSpans``)\n"
        "- ``gateway.protos.loki``: Loki's push request (package ``logproto``)\n"
        "- ``gateway.protos.pprof``: pprof's Profile (CPU profiles of the ``pprof`` extension)\n"
        "- ``gateway.protos.prometheus``: Prometheus remote write (``WriteRequest``, package ``prometheus``)\n"
        "- ``gateway.protos.otelgw``: wire-compatible views of OTLP requests, for exporters that transcode and\n"
        "  processors that scan or edit bytes",
    "jaeger": "Jaeger (generated from protos/jaeger).",
    "jaeger/api_v2": "Jaeger api_v2: ``model_pb2`` (Batch, Span, Process, ...) and ``collector_pb2`` /\n"
                     "``collector_pb2_grpc`` (CollectorService/PostSpans). Generated from protos/jaeger/api_v2.",
    "loki": "Loki push (package ``logproto``): ``push_pb2``. Generated from protos/loki.",
    "otelgw": "Wire-compatible views of OTLP requests: ``otlp_views_pb2`` (fields as bytes, for exporters that\n"
              "transcode), ``item_views_pb2`` (items as bytes, for processors that scan them) and ``ottl_views_pb2``\n"
              "(span attributes as bytes, for OTTL statements that edit them). Generated from protos/otelgw.",
    "pprof": "pprof's profile format (package ``perftools.profiles``): ``profile_pb2``, written by the ``pprof``\n"
             "extension. Generated from protos/pprof.",
    "prometheus": "Prometheus remote write (package ``prometheus``): ``remote_pb2`` (WriteRequest) and\n"
                  "``types_pb2``. Generated from protos/prometheus.",
}
_HEADER = "# ruff: noqa\n# mypy: ignore-errors\n"
_PYI_HEADER = "# ruff: noqa\n"


def proto_files() -> list[str]:
    return sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", *args])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def _rewrite_imports(text: str, roots: set[str]) -> str:
    """Module paths named after .proto paths, in imports and in the ``__module__`` of generated classes."""
    names = "|".join(map(re.escape, sorted(roots)))
    imports = re.compile(rf"^(from|import) ((?:{names})(?:\.\w+)*) ", re.M)
    text = imports.sub(lambda m: f"{m.group(1)} {PACKAGE}.{m.group(2)} ", text)
    module = re.compile(rf"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, ')((?:{names})\.)")
    return module.sub(lambda m: f"{m.group(1)}{PACKAGE}.{m.group(2)}", text)


def _packages(protos: list[str]) -> list[str]:
    """Every directory holding a .proto, and their parents, as package paths ("" is gateway/protos itself)."""
    packages = {""}
    for proto in protos:
        for parent in Path(proto).parents:
            packages.add("" if parent == Path(".") else parent.as_posix())
    return sorted(packages)


def generate(out: Path) -> list[Path]:
    """Write the package into ``out`` (``out/gateway/protos/...``); return the files written, sorted."""
    protos = proto_files()
    with tempfile.TemporaryDirectory(prefix="otelgw-protoc-") as raw_dir:
        raw = Path(raw_dir)
        _protoc([f"--python_out={raw}", f"--pyi_out={raw}", *protos])
        _protoc([f"--grpc_python_out={raw}", *SERVICES])
        roots = {p.split("/")[0] for p in protos}
        target = out / PACKAGE_DIR
        written = []
        for source in sorted(raw.rglob("*.py*")):
            relative = source.relative_to(raw)
            text = _rewrite_imports(source.read_text(), roots)
            header = _PYI_HEADER if source.suffix == ".pyi" else _HEADER
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(header + text)
            written.append(destination)
    for package in _packages(protos):
        doc = _INIT_DOCS.get(package, f"Generated from protos/{package}.")
        init = target / package / "__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_text(f'"""{doc}"""\n')
        written.append(init)
    return sorted(written)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def differences(expected: Path, actual: Path) -> list[str]:
    """How the tree ``actual`` differs from ``expected`` (both package directories), as readable lines."""
    want, have = _files(expected), _files(actual)
    lines = [f"missing: {name}" for name in sorted(want - have)]
    lines += [f"not generated from a .proto (stale?): {name}" for name in sorted(have - want)]
    lines += [f"differs: {name}" for name in sorted(want & have)
              if not filecmp.cmp(expected / name, actual / name, shallow=False)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with gateway/protos/ instead of writing")
    parser.add_argument("--out", type=Path, help="generate under this directory instead of the repository")
    args = parser.parse_args(argv)
    if args.out is not None:
        generate(args.out)
        return 0
    committed = REPO_ROOT / PACKAGE_DIR
    with tempfile.TemporaryDirectory(prefix="otelgw-protos-") as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / PACKAGE_DIR
        diff = differences(fresh, committed) if committed.exists() else ["missing: gateway/protos/"]
        if args.check:
            for line in diff:
                print(line)
            if diff:
                print("gateway/protos/ is out of date: run `python protos/generate.py`", file=sys.stderr)
            return 1 if diff else 0
        if committed.exists():
            shutil.rmtree(committed)
        shutil.copytree(fresh, committed)
    print(f"regenerated {committed.relative_to(REPO_ROOT)}/ from {len(proto_files())} .proto files"
          + (f" ({len(diff)} changed)" if diff else " (no changes)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
