"""Pages that show files kept elsewhere in the repository (benchmark results, the changelog, the adapter
READMEs) without copying them: a page says ``<!-- include: PATH level=N -->`` and the build puts the file
there, its headings moved to level N and its relative links made to work on the site (``notitle`` drops the
file's own title when the page has one).

Any other file (a TOML example, a manifest) is shown as a code block under its path.

A link in an included file points at a path of the repository. On the site it becomes a link to the page
that includes that file, to a published copy of it (plots, result JSON), to the API reference for a
module of ``src/vectorseam``, or, for anything else (a Dockerfile, a test), the path as code: the site is
built offline and links nowhere outside itself.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from pathlib import Path

MARKER = re.compile(r"^<!--\s*include:\s*(?P<path>\S+)(?:\s+level=(?P<level>[1-6]))?(?P<notitle>\s+notitle)?\s*-->\s*$",
                    re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})(\s)")
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")


def markers(text: str) -> list[tuple[str, int]]:
    return [(m["path"], int(m["level"] or 2)) for m in MARKER.finditer(text)]


def _outside_code(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to every line outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            out.append(line)
        else:
            out.append(line if fenced else fn(line))
    return "\n".join(out) + "\n"


def shift_headings(text: str, level: int) -> str:
    levels: list[int] = []

    def measure(line: str) -> str:
        if m := _HEADING.match(line):
            levels.append(len(m.group(1)))
        return line

    _outside_code(text, measure)
    if not levels:
        return text
    delta = level - min(levels)

    def shift(line: str) -> str:
        m = _HEADING.match(line)
        if not m:
            return line
        return "#" * max(1, min(6, len(m.group(1)) + delta)) + line[len(m.group(1)):]

    return _outside_code(text, shift)


class Linker:
    """Maps repository paths to site files, for the links of included files."""

    def __init__(self, repo: Path, included: dict[str, str], published: dict[str, str]) -> None:
        self.repo = repo
        self.included = included  # repo path of an included file -> src_uri of the page including it
        self.published = published  # repo path -> src_uri of its published copy

    def _site_target(self, repo_path: str) -> str | None:
        return self.included.get(repo_path) or self.published.get(repo_path)

    def rewrite(self, text: str, source: str, page_uri: str) -> str:
        """Make the relative links of ``text`` (the repository file ``source``) work from page ``page_uri``."""
        here = posixpath.dirname(source)
        page_dir = posixpath.dirname(page_uri)

        def link(m: re.Match[str]) -> str:
            target = m["target"]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                return m.group(0)
            path, _, anchor = target.partition("#")
            repo_path = posixpath.normpath(posixpath.join(here, path))
            found = self._site_target(repo_path)
            if found is not None:
                url = posixpath.relpath(found, page_dir or ".") + (f"#{anchor}" if anchor else "")
                return f"{m['bang']}[{m['text']}]({url})"
            module = re.fullmatch(r"src/(vectorseam/.+)\.py", repo_path)
            if module and not m["bang"]:
                dotted = module.group(1).replace("/", ".").removesuffix(".__init__")
                return f"[{m['text']}][{dotted}]"
            return f"{m['text']} (`{repo_path}`)" if m["text"].strip("`") != repo_path else f"`{repo_path}`"

        return _outside_code(text, lambda line: _LINK.sub(link, line))

    def expand(self, markdown: str, page_uri: str) -> str:
        def include(m: re.Match[str]) -> str:
            path, level = m["path"], int(m["level"] or 2)
            file = self.repo / path
            if not file.is_file():
                raise FileNotFoundError(f"{page_uri}: included file {path} does not exist")
            text = file.read_text(encoding="utf-8")
            if file.suffix != ".md":  # a configuration file, a manifest: shown as it is
                language = {".toml": "toml", ".yml": "yaml", ".yaml": "yaml", ".py": "python"}.get(file.suffix, "")
                return f"```{language} title=\"{path}\"\n{text.rstrip()}\n```\n"
            if m["notitle"]:  # the page has its own title: the file's first heading goes
                text = re.sub(r"\A\s*#\s+[^\n]*\n", "", text, count=1)
            return self.rewrite(shift_headings(text, level), path, page_uri)

        return MARKER.sub(include, markdown)
