"""Strings no store can hold (lone surrogates, NUL) are refused at the memory store's boundary, naming
the record and the field, before they reach memory or disk; every collection stays writable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vectorseam.errors import ValidationError
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

V = np.ones(4, dtype=np.float32)
BAD = {
    "text": (Record("bad", V, "caf\ud800e", {}), r"record 'bad': text holds a lone surrogate"),
    "metadata value": (Record("bad", V, "t", {"k": "x\udfff"}), r"record 'bad': metadata field 'k' holds a lone"),
    "metadata list item": (Record("bad", V, "t", {"k": ["ok", "\ud83d"]}), r"metadata field 'k' item 1 holds a lone"),
    "metadata key": (Record("bad", V, "t", {"k\ud800": 1}), r"record 'bad': metadata key .* holds a lone"),
    "id": (Record("bad\udc00", V, "t", {}), r"id .* holds a lone surrogate"),
    "NUL in text": (Record("bad", V, "a\x00b", {}), r"record 'bad': text holds a NUL character"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("persisted", [False, True])
def test_unstorable_strings_are_refused_before_anything_is_written(
    tmp_path: Path, case: str, persisted: bool
) -> None:
    store = MemoryStore(tmp_path if persisted else None)
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    store.ensure_collection(CollectionSpec("d", 4, "dot"))
    store.upsert("c", [Record("ok0", V, "fine", {"k": "é"})])
    record, message = BAD[case]
    with pytest.raises(ValidationError, match=message):
        store.upsert("c", [Record("ok1", V, "fine", {}), record])  # the batch is refused as a whole
    assert store.count("c") == 1 and store.fetch("c", ["ok1", "bad"]) == []
    # Nothing is left pending or broken: both collections keep taking writes, and they are on disk.
    store.upsert("c", [Record("ok2", V, "fine", {})])
    store.upsert("d", [Record("ok3", V, "fine", {})])
    if persisted:
        reopened = MemoryStore(tmp_path)
        assert (reopened.count("c"), reopened.count("d")) == (2, 1)
        assert [r.metadata for r in reopened.fetch("c", ["ok0"])] == [{"k": "é"}]
