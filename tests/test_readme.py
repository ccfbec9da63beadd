"""The README is the front door: it stays short, every link in it resolves, and its Python examples compile.

Links are checked as GitHub resolves them: a relative path must name a file or folder of the repository, and
an anchor must name a heading of the target Markdown file (GitHub's slugs). Links to other sites are not
fetched (no network here); the docs site's own links are checked by its strict build (``make docs-check``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 250

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with their numbers."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


def github_slug(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"\{\s*#[^}]*\}\s*$", "", text)  # an attr-list id is not part of the text GitHub shows
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    """The anchors GitHub gives a file's headings (repeated ones get -1, -2, ...), plus explicit ids."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(markdown.read_text(encoding="utf-8")):
        m = _HEADING.match(line)
        if not m:
            continue
        explicit = re.search(r"\{\s*#([\w-]+)\s*\}\s*$", m.group(2))
        if explicit:
            found.add(explicit.group(1))
        slug = github_slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def readme_links() -> list[tuple[int, str]]:
    return [(number, m.group(1)) for number, line in prose_lines(README.read_text(encoding="utf-8"))
            for m in _LINK.finditer(line)]


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines; keep it to {MAX_LINES} and move detail into docs/"


def test_every_readme_link_resolves() -> None:
    links = readme_links()
    assert len(links) > 20  # the parser finds them: a regex that matched nothing would pass vacuously
    problems = []
    for number, target in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # another site: not fetched here
        path, _, anchor = target.partition("#")
        file = README if not path else (README.parent / path).resolve()
        if not file.exists():
            problems.append(f"README.md:{number}: {target}: {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file} "
                            "does not exist")
            continue
        if anchor:
            if file.suffix != ".md":
                problems.append(f"README.md:{number}: {target}: an anchor into a file that is not Markdown")
            elif anchor not in anchors(file):
                problems.append(f"README.md:{number}: {target}: {file.relative_to(ROOT)} has no heading with "
                                f"anchor #{anchor}")
    assert not problems, "\n".join(problems)


def test_link_checker_catches_broken_links(tmp_path: Path) -> None:
    """The checks above can fail: a missing anchor and the slugs GitHub makes are told apart."""
    page = tmp_path / "page.md"
    page.write_text("# Keys scoped to collections\n## `vectorseam search` (CLI)\n## Keys scoped to collections\n"
                    "## Installing into your own environment { #install }\n```\n# not a heading\n```\n")
    assert anchors(page) == {"keys-scoped-to-collections", "vectorseam-search-cli", "keys-scoped-to-collections-1",
                             "installing-into-your-own-environment", "install"}


@pytest.mark.parametrize("number", [n for n, _ in enumerate(
    re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL))])
def test_readme_python_examples_compile(number: int) -> None:
    code = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)[number]
    compile(code, f"README.md python example {number + 1}", "exec")
