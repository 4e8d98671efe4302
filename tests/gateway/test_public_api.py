"""The public API is what ``gateway.__all__`` lists (plus a few public packages); plugins import nothing else."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import gateway

ROOT = Path(__file__).resolve().parents[2]

#: A change here is a change of the plugin SDK: deliberate, and said in the commit message.
PUBLIC_NAMES = {
    "FilePath", "Tagged", "tagged_block", "optional_sections", "raise_if",
    "Backoff", "BatchConsumer", "MIB", "AuthConfig", "CORSConfig", "ClientInfo", "GRPCClientConfig", "GRPCServerConfig",
    "HTTPClient", "HTTPClientConfig", "HTTPServer", "HTTPServerConfig", "client_auth", "server_auth",
    "server_middleware", "shared_ports", "AdminRoutes", "GatewayStats", "HeadersEditor",
    "Authenticator", "ClientAuthenticator", "Component", "Consumer", "CreateConnector", "CreateExporter",
    "CreateExtension", "CreateProcessor", "CreateReceiver", "LogsConsumer", "MetricsConsumer", "Storage",
    "TracesConsumer",
    "OVERFLOW_ATTRIBUTE", "STATUS_BITS", "USER_AGENT", "AdminClient", "AdminServer", "AdmissionGate", "Batch", "Budget",
    "CliCommand", "ComponentID", "ComponentSettings", "ConfigError", "ConsumeError", "DebugServer", "Duration",
    "Envelope", "EnvelopeTable", "ExporterChannel", "ExporterHelper", "Factory", "FlushingConnector", "Host",
    "Kind", "OtelgwError", "OtlpGrpcConfig", "OtlpGrpcExporter", "OverloadedError", "Part", "PartSender",
    "PartialSuccess", "PermanentError", "PluginError", "Processor", "QueueConfig", "ReloadingClientTLS",
    "ReloadingServerTLS", "Reservation", "RetryConfig", "RetryableError", "SegmentLog", "SharedComponent",
    "SharedComponents", "Signal", "SkipBatchError", "Split", "Stability", "Status", "StatusMapping",
    "StorageUnavailable", "TLSClientConfig", "TLSServerConfig", "TooLargeError", "add_admin_options",
    "admin_token", "alerts_summary", "any_value_to_python", "assemble", "attached", "check_request", "consume",
    "count_items", "decode", "field", "format_addresses", "grpc_error", "hashable_value", "hookimpl", "http_error",
    "json_response", "key_value", "listen_error", "load_config_files", "offloaded", "parse_duration",
    "parse_grpc_endpoint", "parse_retry_after", "permanent_http_error", "register_admission_gate",
    "safe_yaml_load", "spanscan", "split", "split_host_port", "split_request", "stamp", "status_for", "timestamp",
    "unchanged", "unregister_admission_gate", "validate_tree", "varint", "wire_bytes",
    "WireBatch", "hand_on", "message_of", "rewritten",
}

#: Besides ``gateway`` itself, the packages a plugin may import from.
PUBLIC_PACKAGES = ("gateway.testing", "gateway.protos", "gateway.ottl", "gateway.prometheus", "gateway.otlpjson",
                   "gateway.client")


def test_all_names_exist_and_nothing_public_is_missing():
    for name in gateway.__all__:
        assert hasattr(gateway, name), name
    # Submodules are attributes of the package, not its API; a module it exports by name (spanscan) is.
    public = {n for n, v in vars(gateway).items()
              if not n.startswith("_") and (not isinstance(v, types.ModuleType) or n in gateway.__all__)}
    assert public - {"annotations"} == set(gateway.__all__)
    assert len(set(gateway.__all__)) == len(gateway.__all__)  # ruff (RUF022) keeps it sorted


def test_the_public_names_are_the_snapshot():
    assert set(gateway.__all__) == PUBLIC_NAMES, "a change of the public API: update PUBLIC_NAMES deliberately"


def test_the_module_docstring_guides_to_every_public_name():
    assert [name for name in gateway.__all__ if f"``{name}``" not in (gateway.__doc__ or "")] == []


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every module ``path`` imports, relative imports resolved, with its line."""
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            module = node.module or ""
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module]) if module else ".".join(base)
            found.append((node.lineno, module))
            if module == "gateway":  # `from gateway import x` may name a submodule too (unless it is exported)
                found += [(node.lineno, f"gateway.{alias.name}") for alias in node.names
                          if isinstance(getattr(gateway, alias.name, None), types.ModuleType)
                          and alias.name not in gateway.__all__]
    return found


def _plugin_import_problems(path: Path, root: Path = ROOT) -> list[str]:
    own = ".".join(path.relative_to(root).parts[:3])  # plugins.<kind>s.<type>
    problems = []
    for line, module in _imports(path, root):
        where = f"{path.relative_to(root)}:{line}: {module}"
        parts = module.split(".")
        if parts[0] == "gateway":
            if any(p.startswith("_") for p in parts) or (
                    module != "gateway" and not module.startswith(tuple(p + "." for p in PUBLIC_PACKAGES))
                    and module not in PUBLIC_PACKAGES):
                problems.append(f"{where} is not the public API (import it from gateway)")
        elif parts[0] == "plugins" and module != own and not module.startswith(own + "."):
            problems.append(f"{where} belongs to another plugin")
    return problems


def test_plugins_import_only_the_public_api_and_their_own_package():
    problems = [p for path in sorted((ROOT / "plugins").rglob("*.py")) for p in _plugin_import_problems(path)]
    assert problems == []


def test_the_check_catches_private_and_foreign_imports(tmp_path):
    path = tmp_path / "plugins" / "processors" / "batch" / "example.py"
    path.parent.mkdir(parents=True)
    path.write_text("from gateway._host.service import Service\nfrom gateway.helpers.exporter import X\n"
                    "from plugins.processors.filter.config import Config\nfrom .config import Config as C\n"
                    "from gateway import Factory, otlpjson\nfrom gateway.protos.loki import push_pb2\n"
                    "from ..filter import factory\n")
    problems = _plugin_import_problems(path, tmp_path)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "gateway._host.service is not the public API (import it from gateway)",
        "gateway.helpers.exporter is not the public API (import it from gateway)",
        "plugins.processors.filter.config belongs to another plugin",
        "plugins.processors.filter belongs to another plugin",
    ]


def test_the_host_never_imports_a_plugin():
    problems = [f"{path.relative_to(ROOT)}:{line}: {module}"
                for path in sorted((ROOT / "gateway").rglob("*.py")) if "protos" not in path.parts
                for line, module in _imports(path) if module.split(".")[0] == "plugins"]
    assert problems == []


def test_the_sdk_modules_type_check_strictly(tmp_path):
    """``mypy --strict`` on the modules ``make lint`` names: the contracts a plugin author reads are exact, and a
    plugin written against them (the forward connector) type-checks strictly too."""
    pytest.importorskip("mypy")
    makefile = (ROOT / "Makefile").read_text()
    modules = re.search(r"^STRICT_TYPED := (.*?)\n\n", makefile, re.M | re.S).group(1).replace("\\\n", " ").split()
    assert {"gateway/__init__.py", "gateway/component.py", "plugins/connectors/forward/connector.py"} <= set(modules)
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                             "--cache-dir", str(tmp_path), *modules], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_consumers_are_methods_not_attributes_set_at_run_time():
    """``consume_traces`` and its siblings are declared methods (or ``BatchConsumer``'s), so a reader and a type
    checker see what a component consumes; none is bound with ``setattr`` or assigned in ``__init__``."""
    pattern = re.compile(r"setattr\([^)]*consume_|\bself\.consume_\w+\s*=")
    found = [f"{path.relative_to(ROOT)}:{n}" for root in ("gateway", "plugins")
             for path in sorted((ROOT / root).rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert found == []
