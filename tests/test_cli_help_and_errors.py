"""What a new user meets first on the command line: every command's --help, and the one-line errors of
the commonest first mistakes (an empty data directory, a misspelt file, a busy port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from vectorseam.cli import _register, app


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vectorseam.cli.__main__", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture()
def env(isolated_env: Path) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def _command_paths() -> Iterator[tuple[list[str], Any]]:
    _register()
    root = get_command(app)

    def walk(path: list[str], command: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk([*path, name], sub)

    yield from walk([], root)


COMMANDS = list(_command_paths())


def test_the_command_tree_is_complete() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "search", "ingest", "collections", "serve", "alias set", "eval beir", "customize train"} <= names


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "vectorseam")
def test_help_shows_no_bool_after_flags_and_a_readable_usage_line(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    command = dict((tuple(p), c) for p, c in COMMANDS)[tuple(path)]
    for param in command.params:
        if param.param_type_name == "argument":  # named as the docstrings name them: QUERIES..., SOURCE
            shown = param.name.upper() + ("..." if param.nargs != 1 else "")
            assert (shown if param.required else f"[{shown}]") in usage, usage
        if param.param_type_name == "option" and param.is_flag:  # and a flag's row has its help, no type
            row = next(line for line in result.output.splitlines() if param.opts[0] + " " in line)
            assert "<" not in row, row


def test_every_collection_option_has_help() -> None:
    with_option = []
    for path, command in COMMANDS:
        for param in command.params:
            if "--collection" in getattr(param, "opts", ()):
                with_option.append(" ".join(path))
                assert param.help, f"{' '.join(path)}: --collection has no help"
                result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
                row = next(line for line in result.output.splitlines() if "--collection" in line)
                assert param.help.split()[0] in row.split("--collection", 1)[1], row  # and it is rendered
    assert {"search", "recommend", "ask", "ingest", "profile show", "profile remove"} <= set(with_option)


def test_collections_on_an_empty_data_directory_says_so_in_one_line(env: dict[str, str], isolated_env: Path) -> None:
    proc = run(["collections"], env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith("no collections in the memory store") and "vectorseam ingest" in lines[0]
    assert str(isolated_env / "data") in lines[0]
    assert proc.stderr == ""
    assert run(["collections", "--json"], env).stdout.strip() == "[]"  # machines still get JSON


def test_ingest_of_a_missing_file_is_one_error_line_and_no_progress_bar(env: dict[str, str],
                                                                       isolated_env: Path) -> None:
    proc = run(["ingest", "nosuch.csv", "--collection", "reviews"], env)
    assert proc.returncode != 0
    assert proc.stderr.splitlines() == ["error: nosuch.csv: no such file or directory"], proc.stderr
    assert proc.stdout == ""
    assert not (isolated_env / "data" / "memory").exists() or "reviews" not in run(["collections", "--json"],
                                                                                   env).stdout


def test_serve_on_a_busy_port_is_an_error_line(env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run(["serve", "--host", "127.0.0.1", "--port", str(port)], env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: cannot serve on 127.0.0.1:{port}: already in use; stop what holds it or choose another port "
        "with --port (or service.port)"], proc.stderr
    assert "{" not in proc.stderr  # no JSON log line: the server never started
