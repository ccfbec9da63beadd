"""Collection aliases, kept by vectorseam (the VectorStore protocol has none, and few backends do).

An alias is a name that resolves to a collection, per store. ``vectorseam reindex`` builds a new
collection beside the old one and switches the alias only when the new one is complete, so searches
never see a half-built collection and the switch is one atomic file replace. An alias shadows a
collection of the same name: after ``reindex docs`` the name ``docs`` means the new collection while
the old one is kept until dropped.

The map lives in ``<data_dir>/aliases.json`` as ``{store identity: {alias: collection}}``.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from vectorseam.errors import VectorseamError
from vectorseam.types import validate_collection_name

_LOCK = threading.Lock()


class AliasMap:
    def __init__(self, data_dir: str | Path, store_key: str) -> None:
        self.path = Path(data_dir) / "aliases.json"
        self.store_key = store_key

    def _read_all(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise VectorseamError(f"cannot read the alias map {self.path}: {exc}; fix or remove the file") from None
        if not isinstance(data, dict):
            raise VectorseamError(f"the alias map {self.path} is not a JSON object; fix or remove the file")
        return data

    def all(self) -> dict[str, str]:
        return dict(self._read_all().get(self.store_key, {}))

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
        with _LOCK:
            data = self._read_all()
            mine = data.setdefault(self.store_key, {})
            if collection is None:
                mine.pop(alias, None)
            else:
                mine[alias] = collection
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".aliases-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)  # the switch is atomic: readers see the old map or the new one
