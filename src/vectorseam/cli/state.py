"""Shared CLI plumbing: the global --config option and the lazily built VectorSeam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vectorseam.client import VectorSeam
from vectorseam.errors import FilterError
from vectorseam.types import Hit

_config_file: Path | None = None


def set_config_file(path: Path | None) -> None:
    global _config_file
    _config_file = path


def open_client() -> VectorSeam:
    return VectorSeam(config_file=_config_file)


def parse_filter_option(raw: str | None) -> dict[str, Any] | None:
    """--filter takes the JSON dict form; a JSON error names the position so it can be fixed."""
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FilterError(f"--filter is not valid JSON: {exc.msg} at column {exc.colno}: {raw!r}") from None
    if not isinstance(value, dict):
        raise FilterError(f"--filter must be a JSON object such as '{{\"Score\": {{\"$gte\": 4}}}}', got {raw!r}")
    return value


ConfigOption = typer.Option(None, "--config", "-c", help="path to a vectorseam.toml", exists=False)


def hit_dict(hit: Hit) -> dict[str, Any]:
    """A hit as the CLI's --json output writes it."""
    return {"id": hit.id, "score": hit.score, "text": hit.text, "metadata": hit.metadata}


def print_hits(console: Console, title: str, hits: list[Hit], empty: str = "no hits") -> None:
    """Ranked hits as a table, long texts shortened, for search and recommend alike.

    Ids and texts are stored data, shown as plain Text: as markup, a text holding ``[/]`` would crash
    the command and one holding ``[red]`` would lose those characters.
    """
    table = Table(title=Text(title), title_justify="left", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id")
    table.add_column("text", overflow="fold", max_width=90)
    for rank, hit in enumerate(hits, 1):
        text = hit.text if len(hit.text) <= 200 else hit.text[:197] + "..."
        table.add_row(str(rank), f"{hit.score:.3f}", Text(hit.id), Text(text))
    console.print(table)
    if not hits:
        console.print(empty, markup=False, highlight=False)
