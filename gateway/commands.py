"""Commands a plugin adds to ``otelgw`` through the ``otelgw_cli_commands`` hook."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CliCommand"]


@dataclass(frozen=True)
class CliCommand:
    """``otelgw NAME ...``: a subcommand, returned by a plugin's ``otelgw_cli_commands`` hook.

    ``add_arguments`` fills the subcommand's own ``argparse`` parser (options, nested subcommands); ``run`` gets
    the parsed arguments and returns the exit status. Raise ``ConfigError`` for bad input: the CLI prints its
    messages (secrets redacted) and exits 2.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
