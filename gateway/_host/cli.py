"""The ``otelgw`` command: run, validate, print-config, components, new-plugin, ottl, demo, top and tap over
the admin endpoint, and what plugins add through the ``otelgw_cli_commands`` hook (the alerts processor's
``alerts`` and ``rules``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway._host import cli_ottl, cli_tap, cli_top, gcpolicy, mallocpolicy, scaffold
from gateway._host.children import die_with_starter
from gateway._host.config import GatewayConfig
from gateway._host.confmap import set_option_source
from gateway._host.demo import cli as cli_demo
from gateway._host.files import check_files
from gateway._host.printconfig import print_config
from gateway._host.redact import redact
from gateway._host.registry import Registry, load_registry
from gateway._host.service import Service, gateway_version, load_config
from gateway._host.telemetry import configure_logging
from gateway._host.workers.context import available_cpus, reuse_port_error, tag_logs
from gateway._host.workers.supervisor import Supervisor, worker_config_errors
from gateway.component import Kind
from gateway.errors import ConfigError, PluginError

__all__ = ["main"]


#: Feature gates otelgw knows, with what it does about them: their behaviour is always on.
KNOWN_FEATURE_GATES = {
    "confmap.enableMergeAppendOption": "always on: pipelines' component lists add up across --config files",
}


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", required=True, metavar="URI",
                        help="configuration file path, or file:PATH, env:VAR (the variable holds YAML) or "
                             "yaml:KEY::PATH: VALUE; repeat to merge several (later ones win; pipelines' "
                             "component lists add up)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set_options",
                        help="set one value after every --config, the key a path separated by '::' "
                             "(processors::batch::timeout=2s)")
    parser.add_argument("--feature-gates", action="append", default=[], metavar="GATES",
                        help="the Collector's feature gates, comma-separated (+gate, -gate); accepted, and "
                             "unknown ones are named in a warning")


def _sources(args: argparse.Namespace) -> list[str]:
    """``--config`` sources, then one ``yaml:`` source per ``--set``, as the Collector orders them."""
    return [*args.config, *(set_option_source(option) for option in args.set_options)]


def _feature_gate_warnings(args: argparse.Namespace) -> list[str]:
    warnings = []
    for value in getattr(args, "feature_gates", []):
        for gate in filter(None, (g.strip() for g in value.split(","))):
            name = gate.lstrip("+-")
            if name not in KNOWN_FEATURE_GATES:
                warnings.append(f"--feature-gates: {name!r} is unknown to otelgw and ignored")
    return warnings


def _parser(registry: Registry) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otelgw", description="OpenTelemetry gateway: OTLP in, pipelines, out. "
                                     "Without a command, as the Collector: otelgw --config FILE runs.")
    parser.add_argument("--version", action="version", version=f"otelgw version {gateway_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the gateway until SIGTERM or SIGINT")
    _add_config(run)
    run.add_argument("--grace-period", type=float, default=30.0, metavar="SECONDS",
                     help="how long shutdown may take to drain pipelines (default 30)")
    run.add_argument("--watch-config", type=float, nargs="?", const=2.0, default=0.0, metavar="SECONDS",
                     help="reload (as on SIGHUP) when a config file's content changes, checking every SECONDS "
                          "(default 2 when given; off when absent). For ConfigMaps mounted as a directory")
    run.add_argument("--workers", type=_workers, default=1, metavar="N|auto",
                     help="worker processes sharing the receiver ports (SO_REUSEPORT); auto: one per CPU available "
                          "to the process (affinity and cgroup quota). Default 1: one process, as always")
    validate = commands.add_parser("validate", help="check a configuration and print every error")
    _add_config(validate)
    print_config = commands.add_parser("print-config", help="print the merged configuration, secrets redacted")
    _add_config(print_config)
    components = commands.add_parser("components", help="list every registered component type")
    components.add_argument("--json", action="store_true", help="print JSON: build info and every component")
    new_plugin = commands.add_parser("new-plugin", help="write a plugin package: a component, its tests, packaging")
    new_plugin.add_argument("name", help="the component's type name, e.g. my_filter")
    new_plugin.add_argument("--kind", required=True, choices=[k.value for k in scaffold.KINDS])
    new_plugin.add_argument("--dir", type=Path, default=None, metavar="DIR",
                            help="where to write the package (default ./otelgw-NAME); must be empty or absent")
    cli_top.add_parser(commands)
    cli_tap.add_parser(commands)
    cli_ottl.add_parser(commands)
    cli_demo.add_parser(commands)
    for name, command in registry.commands.items():
        if name in commands.choices:
            raise PluginError(f"command {name!r} of a plugin clashes with the built-in otelgw {name}")
        sub = commands.add_parser(name, help=command.help)
        command.add_arguments(sub)
        sub.set_defaults(plugin_command=command.run)
    return parser


def _workers(text: str) -> int:
    if text == "auto":
        return available_cpus()
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a number of workers (1 or more) or auto, got {text!r}")
    return count


def _print_errors(errors: Sequence[str]) -> None:
    print(f"invalid configuration: {len(errors)} error(s)", file=sys.stderr)
    for message in errors:
        print(f"  {redact(message)}", file=sys.stderr)


def _components(registry: Registry, as_json: bool = False) -> int:
    if as_json:
        listing: dict[str, Any] = {"buildinfo": {"command": "otelgw", "version": gateway_version(),
                                                 "description": "OpenTelemetry gateway"}}
        for factory, plugin in registry.unique_factories():
            listing.setdefault(factory.kind.section, []).append({
                "name": factory.type, "stability": factory.stability.value, "signals": factory.signals,
                "aliases": list(factory.aliases), "plugin": plugin})
        print(json.dumps(listing, indent=2))
        return 0
    rows = [(f.kind.value, f.type, f.stability.value, ",".join(f.signals) or "-",
             ",".join(f.aliases) or "-", plugin) for f, plugin in registry.unique_factories()]
    header = ("KIND", "TYPE", "STABILITY", "SIGNALS", "ALIASES", "PLUGIN")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _new_plugin(name: str, kind: Kind, directory: Path | None) -> int:
    try:
        target = scaffold.write_plugin(name, kind, directory)
    except ValueError as exc:
        print(f"otelgw new-plugin: {exc}", file=sys.stderr)
        return 2
    where = str(target) if target.is_absolute() else f"./{target}"  # ./x: pip takes it for a path, not a name
    print(f"wrote the {kind.value} {name!r} to {where}. Next:\n"
          f"  python -m pip install -e {where}\n"
          f"  otelgw components | grep -w {name}\n"
          f"  python -m pytest {where}")
    return 0


def _run(registry: Registry, config_paths: Sequence[str], grace_period: float, watch_interval: float = 0.0,
         workers: int = 1, warnings: Sequence[str] = ()) -> int:
    config = load_config(config_paths, registry)
    check_files(config)
    # Before the graph is built: components log while they are created (e.g. redaction's engine).
    logs = config.telemetry.logs
    configure_logging(logs.level, logs.encoding, output_paths=logs.output_paths,
                      error_output_paths=logs.error_output_paths, sampling=logs.sampling,
                      initial_fields=logs.initial_fields)
    tag_logs()
    for warning in [*warnings, *config.warnings]:
        logging.getLogger("otelgw.config").warning("configuration: %s", warning)
    if workers > 1:
        return _supervise(config, config_paths, grace_period, watch_interval, workers)
    gcpolicy.install()
    mallocpolicy.install()
    service = Service(config, registry, config_paths)
    service.watch_interval = watch_interval
    try:
        import uvloop
    except ImportError:  # uvloop has no Windows build; asyncio's own loop works, only slower
        return asyncio.run(service.run(grace_period))
    return uvloop.run(service.run(grace_period))


def _supervise(config: GatewayConfig, config_paths: Sequence[str], grace_period: float, watch_interval: float,
               workers: int) -> int:
    """``--workers N`` with N > 1: this process supervises N gateway processes (gateway._host.workers)."""
    unsupported = reuse_port_error()
    if unsupported is not None:
        print(f"otelgw: --workers {workers} needs the workers to share the receiver ports, but {unsupported}; "
              f"run with --workers 1 (one process), or one gateway per port behind a load balancer", file=sys.stderr)
        return 2
    errors = worker_config_errors(config, workers)
    if errors:
        raise ConfigError(errors)
    return asyncio.run(Supervisor(config, config_paths, workers, grace_period, watch_interval).run())


def _print_warnings(warnings: Sequence[str]) -> None:
    for message in warnings:
        print(f"warning: {redact(message)}", file=sys.stderr)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of a closed pipe does not print an error."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    die_with_starter()  # started by the demo: end with it (gateway._host.children)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0].startswith(("--config", "--set", "--feature-gates")):
        arguments.insert(0, "run")  # the Collector's root command runs the gateway
    try:
        registry = load_registry()
        parser = _parser(registry)
    except PluginError as exc:  # before parsing: plugins add commands
        print(f"plugin error: {redact(str(exc))}", file=sys.stderr)
        return 3
    args = parser.parse_args(arguments)
    try:
        if hasattr(args, "plugin_command"):
            return int(args.plugin_command(args))
        if args.command == "top":
            return cli_top.run(args)
        if args.command == "tap":
            return cli_tap.run(args)
        if args.command == "ottl":
            return cli_ottl.run(args)
        if args.command == "demo":
            return cli_demo.run(args)
        if args.command == "components":
            return _components(registry, args.json)
        if args.command == "new-plugin":
            return _new_plugin(args.name, Kind(args.kind), args.dir)
        if args.command == "print-config":
            _print_warnings(_feature_gate_warnings(args))
            return print_config(_sources(args), _print_errors)
        if args.command == "validate":
            # A dry run of the configuration: certificate, token and password files are checked by run.
            config = load_config(_sources(args), registry)
            _print_warnings([*_feature_gate_warnings(args), *config.warnings])
            print("configuration is valid")
            return 0
        return _run(registry, _sources(args), args.grace_period, args.watch_config, args.workers,
                    _feature_gate_warnings(args))
    except ConfigError as exc:
        _print_errors(exc.messages)
        return 2
    except PluginError as exc:
        print(f"plugin error: {redact(str(exc))}", file=sys.stderr)
        return 3
    except BrokenPipeError:  # the reader left (``otelgw alerts rules | head``): stop quietly, as other tools do
        _quiet_stdout()
        return 141  # what a shell reports for a writer ended by SIGPIPE
    except OSError as exc:  # a port in use, an unwritable file: one line, no traceback
        print(f"otelgw: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
