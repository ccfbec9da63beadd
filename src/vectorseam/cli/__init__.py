"""The ``vectorseam`` command line. Commands live in sibling modules that register on ``app``.

Errors a user can cause (VectorseamError) print one clear line and exit 1; never a traceback.
Their text is printed as plain text, never as Rich markup: it quotes what the user typed (a
collection name such as ``[/]``, a file name) and config syntax such as ``[service]``.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.text import Text

from vectorseam.errors import VectorseamError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="vectorseam: semantic search, QA, recommendations and analysis over pluggable vector stores.",
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def print_error(message: object) -> None:
    """``error: <message>`` on stderr, the message as plain text (see the module docstring)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", str(message)), highlight=False, soft_wrap=True)


# Each module adds its commands to ``app`` on import.
_COMMAND_MODULES = [
    "vectorseam.cli.core",
    "vectorseam.cli.retrieval",
    "vectorseam.cli.analysis",
    "vectorseam.cli.serve",
    "vectorseam.cli.jobs",
    "vectorseam.cli.tune",
]


def _register() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name)


def main() -> None:
    _register()
    try:
        app()
    except VectorseamError as exc:
        print_error(exc)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
