"""The ``vectorseam`` command line. Commands live in sibling modules that register on ``app``.

Errors a user can cause (VectorseamError) print one clear line and exit 1; never a traceback.
Their text is printed as plain text, never as Rich markup: it quotes what the user typed (a
collection name such as ``[/]``, a file name) and config syntax such as ``[service]``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

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
    "vectorseam.cli.doctor",
]


def _without_flag_types(params: list[Any]) -> list[Any]:
    for param in params:
        if param.param_type_name == "option" and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # typer shows the metavar, when set, instead of the type
    return params


class _Command(TyperCommand):
    """Help as people read it: flags show no ``<bool>`` after them (a flag takes no value), and the usage
    line names arguments as their help and docstrings do, ``QUERIES...``/``[NAME]``, not ``{queries}...``.

    Parameters are told apart by click's ``param_type_name`` rather than by class: typer vendors its own
    copy of click in some releases and uses click itself in others."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = str(param.metavar or param.name or "arg").upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


class _Group(TyperGroup):
    """The command groups (``vectorseam``, ``eval``, ``alias``, ``customize``): flags as in :class:`_Command`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


def _use_help_format(typer_app: typer.Typer) -> None:
    typer_app.info.cls = _Group
    for command in typer_app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = _Command
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _use_help_format(group.typer_instance)


def _register() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name)
    _use_help_format(app)


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
