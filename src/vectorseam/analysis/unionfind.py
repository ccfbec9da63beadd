"""Union-find (disjoint sets) over string ids: pairs above a threshold become duplicate groups."""

from __future__ import annotations

from collections.abc import Iterable


class UnionFind:
    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        parent = self._parent.setdefault(item, item)
        root = item
        while parent != root:
            root, parent = parent, self._parent[parent]
        while item != root:  # path compression keeps later finds near O(1)
            item, self._parent[item] = self._parent[item], root
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self._parent[rb] = ra

    def groups(self, order: Iterable[str] | None = None) -> list[list[str]]:
        """Sets of two or more, members in ``order`` (default: sorted), largest group first."""
        members: dict[str, list[str]] = {}
        items = list(order) if order is not None else sorted(self._parent)
        for item in items:
            if item in self._parent:
                members.setdefault(self.find(item), []).append(item)
        out = [g for g in members.values() if len(g) > 1]
        out.sort(key=lambda g: (-len(g), g[0]))
        return out
