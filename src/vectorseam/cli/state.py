"""Shared CLI plumbing: the global --config option and the lazily built VectorSeam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vectorseam.client import VectorSeam
from vectorseam.errors import FilterError

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
