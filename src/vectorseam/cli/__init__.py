"""The ``vectorseam`` command line. Commands live in sibling modules that register on ``app``.

Errors a user can cause (VectorseamError) print one clear line and exit 1; never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from vectorseam.errors import VectorseamError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="vectorseam: semantic search, QA, recommendations and analysis over pluggable vector stores.",
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)

# Each module adds its commands to ``app`` on import.
_COMMAND_MODULES = [
    "vectorseam.cli.core",
    "vectorseam.cli.retrieval",
    "vectorseam.cli.analysis",
    "vectorseam.cli.serve",
    "vectorseam.cli.jobs",
]


def _register() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name)


def main() -> None:
    _register()
    try:
        app()
    except VectorseamError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
