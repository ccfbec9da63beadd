"""The configuration reference, generated from the pydantic settings models in vectorseam.config.

Every field of :class:`vectorseam.config.Settings` and of the sections it nests becomes a row: its TOML key,
its environment variable, its type, its default and its constraints, with the field's own description.
A field added to the models appears here on the next build; nothing is written by hand.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ENV_PREFIX = "VECTORSEAM_"


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        text = " \\| ".join(parts)
        return f"{text} (optional)" if type(None) in args else text
    if origin is list:
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if annotation is SecretStr:
        return "secret string"
    if annotation is Path:
        return "path"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return "table"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        factory = field.default_factory
        if getattr(factory, "__name__", "") == "default_data_dir":
            return "`$XDG_DATA_HOME/vectorseam`, else `~/.local/share/vectorseam`"
        value = factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, list | dict) and not value:
        return "`[]`" if isinstance(value, list) else "`{}`"
    if isinstance(value, int) and value >= 1024 and value % 1024 == 0:
        return f"`{value}` ({value // (1024 * 1024)} MiB)" if value % (1024 * 1024) == 0 else f"`{value}`"
    return f"`{value}`"


_BOUNDS = ((Ge, "ge", "≥ {}"), (Gt, "gt", "> {}"), (Le, "le", "≤ {}"), (Lt, "lt", "< {}"),
           (MinLen, "min_length", "length ≥ {}"), (MaxLen, "max_length", "length ≤ {}"))


def _constraints(field: FieldInfo) -> str:
    words = []
    for meta in field.metadata:
        for kind, attr, text in _BOUNDS:
            if isinstance(meta, kind):
                words.append(text.format(getattr(meta, attr)))
        if getattr(meta, "pattern", None):
            words.append(f"matches `{meta.pattern}`")
    return ", ".join(words)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _model_of(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """(model, is_list) when the field nests a settings section (or a list of them)."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation, False
    if get_origin(annotation) is list:
        (inner,) = get_args(annotation) or (None,)
        if inspect.isclass(inner) and issubclass(inner, BaseModel):
            return inner, True
    return None


def _table(model: type[BaseModel], toml_path: list[str], env_path: list[str] | None) -> tuple[list[str], list[Any]]:
    rows = ["| key | type | default | constraints | environment | description |",
            "|---|---|---|---|---|---|"]
    nested = []
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if sub is not None:
            nested.append((name, field, *sub))
            continue
        env = f"`{ENV_PREFIX}{'__'.join([*env_path, name]).upper()}`" if env_path is not None else "–"
        rows.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {_constraints(field)} | {env} | "
                    f"{_cell(field.description or '')} |")
    return rows, nested


def _doc(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    if doc.startswith(f"{model.__name__}(") or not doc.strip():
        return ""  # pydantic's generated signature, not a docstring
    return inspect.cleandoc(doc)


def render(settings_model: type[BaseModel]) -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated at build time from the settings models in `vectorseam.config` "
        "([`Settings`][vectorseam.config.Settings]). Each key is read, in order of precedence, from "
        "keyword arguments (`VectorSeam(settings=...)`), the environment (`VECTORSEAM_` prefix, `__` between "
        "a section and its key), the TOML file (`--config`, `VECTORSEAM_CONFIG`, or `vectorseam.toml` in the "
        "working directory), and the defaults below. The [configuration guide](../guides/configuration.md) "
        "explains how to choose them.",
        "",
    ]

    def section(model: type[BaseModel], toml_path: list[str], env_path: list[str] | None, is_list: bool) -> None:
        rows, nested = _table(model, toml_path, env_path)
        if toml_path:
            header = ".".join(toml_path)
            out.extend([f"## `[{'[' if is_list else ''}{header}{']' if is_list else ''}]`", ""])
            if doc := _doc(model):
                out.extend([doc, ""])
            if is_list:
                out.extend([f"An array of tables: repeat `[[{header}]]` once per entry. In the environment the "
                            f"whole list is one JSON value (`{ENV_PREFIX}{'__'.join(toml_path).upper()}`).", ""])
        else:
            out.extend(["## Top level", ""])
        if len(rows) > 2:
            out.extend([*rows, ""])
        for name, _field, sub, sub_is_list in nested:
            section(sub, [*toml_path, name], None if (sub_is_list or env_path is None) else [*env_path, name],
                    sub_is_list)

    section(settings_model, [], [], False)
    return "\n".join(out) + "\n"
