"""Shared CLI plumbing: the global --config option and the lazily built VectorSeam."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

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
    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FilterError(f"--filter is not valid JSON: {exc.msg} at column {exc.colno}: {shown!r}") from None
    except ValueError:  # json's only other ValueError: Python's limit on an integer's digits
        raise FilterError("--filter holds a number with more digits than Python reads as an integer "
                          f"({sys.get_int_max_str_digits()}); no metadata value is that long") from None
    except RecursionError:
        raise FilterError("--filter is nested too deeply to read; a filter nests $and/$or/$not at most "
                          "64 levels") from None
    if not isinstance(value, dict):
        raise FilterError(f"--filter must be a JSON object such as '{{\"Score\": {{\"$gte\": 4}}}}', got {shown!r}")
    return value


ConfigOption = typer.Option(None, "--config", "-c", help="path to a vectorseam.toml", exists=False)
# Every command that reads one collection takes it the same way, with the same help.
CollectionOption = Annotated[str | None, typer.Option(
    "--collection", help="the collection (or an alias of it); default: the configured one (setting 'collection')")]


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
