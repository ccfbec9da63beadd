"""Collection aliases, kept by vectorseam (the VectorStore protocol has none, and few backends do).

An alias is a name that resolves to a collection, per store. ``vectorseam reindex`` builds a new
collection beside the old one and switches the alias only when the new one is complete, so searches
never see a half-built collection and the switch is one transaction. An alias shadows a
collection of the same name: after ``reindex docs`` the name ``docs`` means the new collection while
the old one is kept until dropped.

The map lives in the data directory's state database (:mod:`vectorseam.state`), one row per
(store identity, alias): a switch is one transaction, seen by every process at once.
"""

from __future__ import annotations

from vectorseam.errors import VectorseamError
from vectorseam.state import StateDB
from vectorseam.types import validate_collection_name


class AliasMap:
    def __init__(self, state: StateDB, store_key: str) -> None:
        self.state = state
        self.path = state.path
        self.store_key = store_key

    def all(self) -> dict[str, str]:
        return self.state.aliases(self.store_key)

    def resolve(self, name: str) -> str:
        """The collection ``name`` points at (following chains), or ``name`` itself when not an alias."""
        aliases = self.all()
        seen = {name}
        while name in aliases:
            name = aliases[name]
            if name in seen:
                raise VectorseamError(f"alias cycle through {name!r} in {self.path}; fix it with "
                                      "`vectorseam alias set`")
            seen.add(name)
        return name

    def set(self, alias: str, collection: str) -> None:
        validate_collection_name(alias)
        validate_collection_name(collection)
        if alias == collection:
            raise VectorseamError(f"alias {alias!r} cannot point at itself")
        self._update(alias, collection)

    def remove(self, alias: str) -> bool:
        if alias not in self.all():
            return False
        self._update(alias, None)
        return True

    def _update(self, alias: str, collection: str | None) -> None:
        self.state.set_alias(self.store_key, alias, collection)
