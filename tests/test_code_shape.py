"""The shape of the code: no function in the package or the store adapters is longer than 60 lines or
takes more than 10 parameters, unless a comment right above it says why (``# long: ...``).

Why a test and not a linter rule: ruff has no function-length rule, and its argument-count rule (PLR0913)
cannot take a reason. A long function is often two parts that a name would explain; where it is not (a
typer command declares every option as a parameter, a generated kernel is one template), the comment
says so where the next reader looks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "src" / "vectorseam", *sorted((ROOT / "adapters").glob("*/src"))]
MAX_LINES = 60
MAX_PARAMETERS = 10
MARK = "# long:"


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = node.args
    names = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    count = len(names) + (args.vararg is not None) + (args.kwarg is not None)
    if names and names[0].arg in ("self", "cls"):
        count -= 1
    return count


def _excused(lines: list[str], start: int, def_line: int) -> bool:
    """A ``# long:`` comment on the line above the function (or its first decorator), between its decorators
    and its def, or on its def line."""
    return any(MARK in lines[n - 1] for n in range(max(start - 1, 1), def_line + 1))


def oversized(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text, str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        length = (node.end_lineno or node.lineno) - start + 1
        params = _parameters(node)
        if (length > MAX_LINES or params > MAX_PARAMETERS) and not _excused(lines, start, node.lineno):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines, {params} parameters")
    return found


def test_no_function_is_too_long_or_takes_too_many_parameters() -> None:
    found = [problem for source in SOURCES for path in sorted(source.rglob("*.py")) for problem in oversized(path)]
    assert not found, (f"over {MAX_LINES} lines or {MAX_PARAMETERS} parameters (split it where a name explains the "
                       f"part, or say why above it with '{MARK} ...'):\n" + "\n".join(found))


def test_the_check_sees_long_functions_and_reads_the_excuse(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    params = ", ".join(f"p{i}" for i in range(MAX_PARAMETERS + 1))
    module = tmp_path / "m.py"
    module.write_text(f"def long():\n{body}\n\ndef wide({params}):\n    pass\n\n\n"
                      f"{MARK} a typer command: one parameter per option\ndef excused({params}):\n    pass\n\n\n"
                      f"class C:\n    def method(self, {', '.join(f'p{i}' for i in range(MAX_PARAMETERS))}):\n"
                      "        pass\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        problems = oversized(module)
    finally:
        ROOT = saved
    assert [p.split(" ")[1] for p in problems] == ["long:", "wide:"]


def test_no_module_re_exports_another_layer_through_getattr() -> None:
    """A module-level ``__getattr__`` hands out names the import contracts never see; only a package's
    ``__init__`` may have one, to load its own modules lazily (``import vectorseam`` stays fast)."""
    found = []
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if path.name != "__init__.py" and any(
                    isinstance(node, ast.FunctionDef) and node.name == "__getattr__" for node in tree.body):
                found.append(str(path.relative_to(ROOT)))
    assert not found, f"module-level __getattr__ outside a package's __init__: {found}"
