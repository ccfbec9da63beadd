"""A griffe extension: the Sphinx roles in vectorseam's docstrings become links in the API reference.

The docstrings were written for reading in the source (``:class:`~vectorseam.client.VectorSeam```,
``:func:`matches```, ``literal``), long before the site. Rather than rewriting 200 of them, this turns
each role into an mkdocs-autorefs link to the object it names, resolved the way Sphinx would: a dotted
path as given, else a name in the scope of the docstring's object, its class or its module. The link is
marked optional: a target that is not rendered (a private helper, a third-party class) stays plain code
instead of failing the build. A reST ``::`` that opens a literal block reads as ``:``.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|exc|data|obj|const):`(~?)([^`<>]+?)`")
_LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _lookup(scope: griffe.Object | griffe.Alias, dotted: str) -> griffe.Object | griffe.Alias | None:
    obj: griffe.Object | griffe.Alias | None = scope
    for part in dotted.split("."):
        if obj is None:
            return None
        try:
            obj = obj.members.get(part)
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return obj


def _path_of(found: griffe.Object | griffe.Alias) -> str:
    """The path the object is rendered under: where it is defined, not where it was imported."""
    if isinstance(found, griffe.Alias):
        try:
            return found.final_target.path
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return found.target_path
    return found.path


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring in a package once the whole package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, pkg)

    def _walk(self, obj: griffe.Object, root: griffe.Module) -> None:
        if obj.docstring is not None:
            obj.docstring.value = self._rewrite(obj.docstring.value, obj, root)
        for member in list(obj.members.values()):
            if not isinstance(member, griffe.Alias) and member.parent is obj:
                self._walk(member, root)

    def _resolve(self, target: str, obj: griffe.Object, root: griffe.Module) -> str | None:
        if target.startswith(root.name + "."):
            found = _lookup(root, target[len(root.name) + 1:])
            return _path_of(found) if found is not None else None
        if target == root.name:
            return root.path
        scope: griffe.Object | None = obj
        while scope is not None:  # the object itself, its class, its module, the package above
            found = _lookup(scope, target)
            if found is not None:
                return _path_of(found)
            scope = scope.parent
        return None

    def _rewrite(self, text: str, obj: griffe.Object, root: griffe.Module) -> str:
        def link(match: re.Match[str]) -> str:
            short, target = match.group(2) == "~", match.group(3).strip().lstrip(".")
            shown = target.rsplit(".", 1)[-1] if short else target
            path = self._resolve(target, obj, root)
            code = f"<code>{escape(shown)}</code>"
            if path is None:
                return code
            return f'<autoref identifier="{escape(path)}" optional>{code}</autoref>'

        return _LITERAL_BLOCK.sub(":", _ROLE.sub(link, text))
