"""The CLI reference, generated from the typer application (its click command tree).

Each command gets its usage line, its help text and a table of its arguments and options, read from the
same click objects that ``vectorseam COMMAND --help`` prints, so the page and the terminal cannot disagree.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

# typer carries its own copy of click (typer._click), so the objects are read by their attributes, never
# by isinstance against the click package.


def _anchor(path: list[str]) -> str:
    return "-".join(path)


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _annotation_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_annotation_name(a) for a in args if a is not type(None))
    if origin in (list, tuple):
        return _annotation_name(args[0]) if args else "text"
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    return {int: "integer", float: "number", str: "text", bool: "boolean", Path: "path"}.get(annotation, "text")


def _type_name(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    descriptor = getattr(param, "type_descriptor", None)
    name = _annotation_name(descriptor.annotation) if descriptor is not None else "text"
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None or high is not None:
        name += f" ({'' if low is None else f'{low} ≤ '}n{'' if high is None else f' ≤ {high}'})"
    return name


def _default(param: Any) -> str:
    default = param.default
    if callable(default) or default is None or default == () or default == []:
        return ""
    if isinstance(default, enum.Enum):
        default = default.value
    if getattr(param, "is_flag", False):
        if param.secondary_opts:
            return f"`{param.opts[0] if default else param.secondary_opts[0]}`"
        return "on" if default else ""
    if isinstance(default, list | tuple):
        return ", ".join(f"`{d}`" for d in default)
    return f"`{default}`"


def _names(param: Any) -> str:
    if _is_argument(param):
        name = (param.name or "").upper()
        return f"`{name}`" + (" …" if param.nargs == -1 else "")
    names = [*param.opts, *param.secondary_opts]
    return " / ".join(f"`{n}`" for n in names)


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _help(param: Any) -> str:
    text = getattr(param, "help", None) or ""
    notes = []
    if param.required and not _is_argument(param):
        notes.append("required")
    if _is_argument(param) and not param.required:
        notes.append("optional")
    if getattr(param, "multiple", False) or (_is_argument(param) and param.nargs == -1):
        notes.append("one or more" if _is_argument(param) else "repeatable")
    if getattr(param, "envvar", None):
        notes.append(f"env `{param.envvar}`")
    suffix = f" ({', '.join(notes)})" if notes else ""
    return _cell(text) + suffix


def _usage(cmd: Any, ctx: Any) -> str:
    pieces = cmd.collect_usage_pieces(ctx)
    return " ".join([ctx.command_path, *pieces])


def _command(cmd: Any, path: list[str], parent: Any, out: list[str]) -> None:
    ctx = cmd.context_class(cmd, info_name=path[-1], parent=parent)
    level = "#" * min(len(path) + 1, 4)
    if len(path) > 1:
        out.extend([f"{level} `{' '.join(path)}` {{ #{_anchor(path)} }}", ""])
    help_text = inspect.cleandoc(cmd.help or "").replace("\b\n", "")
    out.extend(["```", _usage(cmd, ctx), "```", ""])
    if help_text:
        out.extend([help_text, ""])
    params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        out.extend(["| argument / option | type | default | description |", "|---|---|---|---|"])
        for p in params:
            out.append(f"| {_names(p)} | {_type_name(p)} | {_default(p)} | {_help(p)} |")
        out.append("")
    if hasattr(cmd, "list_commands"):
        subs = [(name, cmd.get_command(ctx, name)) for name in cmd.list_commands(ctx)]
        visible = [(n, c) for n, c in subs if c is not None and not c.hidden]
        if len(path) == 1:
            out.extend(["## Commands", "", "| command | what it does |", "|---|---|"])
            for name, sub in visible:
                out.append(f"| [`{name}`](#{_anchor([*path, name])}) | {_cell(_short_help(sub))} |")
            out.append("")
        for name, sub in visible:
            _command(sub, [*path, name], ctx, out)


def _short_help(cmd: Any) -> str:
    text = getattr(cmd, "short_help", None) or inspect.cleandoc(cmd.help or "").split("\n\n")[0]
    return " ".join(text.split())


def render(app: Any) -> str:
    import typer.main

    root = typer.main.get_command(app)
    out = [
        "# CLI reference",
        "",
        "Generated at build time from the `vectorseam` command (the typer application in `vectorseam.cli`); "
        "`vectorseam COMMAND --help` prints the same. A mistake a user can make (a missing file, a collection "
        "that does not exist, a bad filter) prints one `error:` line and exits with status 1.",
        "",
    ]
    _command(root, ["vectorseam"], None, out)
    return "\n".join(out) + "\n"
