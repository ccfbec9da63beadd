"""Several memory stores on one directory, as several processes hold it (in one process here; the
real multi-process tests are tests/test_memory_multiprocess.py and tests/test_memory_model.py): writes
never lost, seen by the others before their next read, drops seen, snapshots followed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from vectorseam.errors import CollectionNotFoundError, DimensionMismatchError, StoreUnavailableError
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing import make_records
from vectorseam.types import CollectionSpec, Record


def rec(i: int, dim: int = 4, **meta: object) -> Record:
    return Record(f"r{i}", np.full(dim, i + 1, dtype=np.float32), f"t{i}", {"i": i, **meta})


def test_interleaved_writers_lose_nothing(tmp_path: Path) -> None:
    """The lost-update bug: each store wrote its stale copy over the other's. Each write applies the
    other's first, so the union survives, in every store and on disk."""
    a, b = MemoryStore(tmp_path), MemoryStore(tmp_path)
    a.ensure_collection(CollectionSpec("c", 4, "dot"))
    for i in range(40):
        (a if i % 2 else b).upsert("c", [rec(i)])
    a.delete("c", ["r0"])
    b.delete("c", ["r1"])
    want = {f"r{i}" for i in range(2, 40)}
    for store in (a, b, MemoryStore(tmp_path)):
        assert {r.id for page in store.scan("c") for r in page} == want


def test_an_idle_writer_survives_two_compactions_by_another_process(tmp_path: Path) -> None:
    """The sequence that lost acknowledged writes in the log format: W writes one record and goes idle;
    another process compacts twice; W upserts five. Every one must be on disk and seen by W, and W must
    see the other process's later writes."""
    w = MemoryStore(tmp_path)
    w.ensure_collection(CollectionSpec("c", 4, "dot"))
    w.upsert("c", [rec(0)])
    other = MemoryStore(tmp_path)
    other.compact("c")
    other.upsert("c", [rec(100)])
    other.delete("c", ["r100"])
    other.compact("c")
    for i in range(1, 6):
        w.upsert("c", [rec(i)])
    assert w.count("c") == 6
    assert MemoryStore(tmp_path).count("c") == 6
    other.upsert("c", [rec(50)])
    assert w.count("c") == 7 and [r.id for r in w.fetch("c", ["r50"])] == ["r50"]
    assert {r.id for page in MemoryStore(tmp_path).scan("c") for r in page} == {f"r{i}" for i in (0, 1, 2, 3, 4, 5, 50)}


def test_a_reader_follows_writes_without_reloading(tmp_path: Path) -> None:
    writer, reader = MemoryStore(tmp_path), MemoryStore(tmp_path)
    writer.ensure_collection(CollectionSpec("c", 4, "cosine"))
    assert reader.count("c", filter={"i": {"$gte": 0}}) == 0
    loaded = reader._entries["c"].coll
    for i in range(9):
        writer.upsert("c", [rec(i)])
        if i % 3 == 0:
            writer.compact("c")
        assert reader.count("c", filter={"i": {"$gte": 0}}) == i + 1  # seen before the next read
    assert reader._entries["c"].coll is loaded, "the reader reloaded instead of applying the changes"


def test_drop_and_recreate_are_seen_by_other_stores(tmp_path: Path) -> None:
    a, b = MemoryStore(tmp_path), MemoryStore(tmp_path)
    a.ensure_collection(CollectionSpec("c", 4, "dot"))
    a.upsert("c", [rec(1)])
    assert b.count("c") == 1
    assert a.drop_collection("c")
    with pytest.raises(CollectionNotFoundError):
        b.count("c")
    with pytest.raises(CollectionNotFoundError):
        b.upsert("c", [rec(9)])  # a store that still had it open never writes into the dropped database
    assert b.collections() == []
    a.ensure_collection(CollectionSpec("c", 8, "cosine"))
    a.upsert("c", [rec(2, dim=8)])
    assert b.collection_info("c").dimension == 8
    assert [r.id for r in b.fetch("c", ["r1", "r2"])] == ["r2"]
    with pytest.raises(DimensionMismatchError):
        b.ensure_collection(CollectionSpec("c", 4, "dot"))
    # A collection created by another store is listed and readable without reopening.
    a.ensure_collection(CollectionSpec("d", 4, "dot"))
    assert [c.name for c in b.collections()] == ["c", "d"]


def test_a_drop_interrupted_after_its_commit_is_finished_by_the_next_store(tmp_path: Path) -> None:
    a = MemoryStore(tmp_path)
    a.ensure_collection(CollectionSpec("c", 4, "dot"))
    a.upsert("c", [rec(1)])
    entry = a._entries["c"]
    assert entry.db is not None
    entry.db.mark_dropped()  # the process died right after the commit, before removing the directory
    b = MemoryStore(tmp_path)
    assert b.collections() == []
    b.ensure_collection(CollectionSpec("c", 4, "dot"))
    assert b.count("c") == 0


def test_reads_never_wait_for_a_writer(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path, lock_timeout=0.3)
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    store.upsert("c", [rec(1)])
    other = sqlite3.connect(tmp_path / "c" / "records.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreUnavailableError, match="nothing was written"):
            store.upsert("c", [rec(2)])
        assert store.count("c") == 1 and MemoryStore(tmp_path).count("c") == 1
    finally:
        other.execute("ROLLBACK")
        other.close()


OPENER = r"""
import sys, time
from vectorseam.stores.memory import MemoryStore
path, seconds = sys.argv[1], float(sys.argv[2])
opened = errors = 0
last = -1
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        n = MemoryStore(path).count("c")
        assert n >= last, f"went back from {last} to {n} records"
        last = n
        opened += 1
    except Exception as exc:
        errors += 1
        print("ERROR", type(exc).__name__, exc, flush=True)
print("opened", opened, "errors", errors, flush=True)
"""


def test_opening_while_another_process_writes_and_snapshots_never_reports_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process opens the directory in a loop while this one writes and writes snapshots (every
    second write, pruning tombstones), and never sees an error or an older state than before."""
    import subprocess
    import sys
    import time

    writer = MemoryStore(tmp_path)
    writer.ensure_collection(CollectionSpec("c", 16, "cosine"))
    proc = subprocess.Popen([sys.executable, "-c", OPENER, str(tmp_path), "6"], stdout=subprocess.PIPE, text=True)
    rng = np.random.default_rng(0)
    written = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        writer.upsert("c", make_records(rng.normal(size=(50, 16)).astype(np.float32), prefix=f"w{written}-"))
        written += 1
        if written % 2 == 0:
            writer.compact("c")
    out, _ = proc.communicate(timeout=60)
    assert "ERROR" not in out, out
    opened = int(out.split("opened ")[1].split()[0])
    assert opened >= 10 and written >= 20, (opened, written)
    assert MemoryStore(tmp_path).count("c") == 50 * written
