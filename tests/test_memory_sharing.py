"""Several memory stores on one directory, as several processes hold it (in one process here; the
real multi-process test is tests/test_memory_multiprocess.py): writes never lost, seen by the others
before their next read, compactions followed without reloading, old formats upgraded."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pytest

from vectorseam.errors import CollectionNotFoundError, DimensionMismatchError, StoreUnavailableError
from vectorseam.stores import journal, memory
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing import make_records, random_vectors
from vectorseam.types import CollectionSpec, Record


def rec(i: int, dim: int = 4, **meta: object) -> Record:
    return Record(f"r{i}", np.full(dim, i + 1, dtype=np.float32), f"t{i}", {"i": i, **meta})


def test_interleaved_writers_lose_nothing(tmp_path: Path) -> None:
    """The lost-update bug: each store wrote its stale copy over the other's. Now each write applies
    the other's first, so the union survives, in every store and on disk."""
    a, b = MemoryStore(tmp_path), MemoryStore(tmp_path)
    a.ensure_collection(CollectionSpec("c", 4, "dot"))
    for i in range(40):
        (a if i % 2 else b).upsert("c", [rec(i)])
    a.delete("c", ["r0"])
    b.delete("c", ["r1"])
    want = {f"r{i}" for i in range(2, 40)}
    for store in (a, b, MemoryStore(tmp_path)):
        assert {r.id for page in store.scan("c") for r in page} == want


def test_reader_follows_compactions_without_reloading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "COMPACT_MAX_ENTRIES", 2)
    writer, reader = MemoryStore(tmp_path), MemoryStore(tmp_path)
    writer.ensure_collection(CollectionSpec("c", 4, "cosine"))
    assert reader.count("c") == 0
    loaded = reader._collections["c"]
    for i in range(9):
        writer.upsert("c", [rec(i)])
        assert reader.count("c") == i + 1  # seen before the next read, one log entry at a time
    assert reader._collections["c"] is loaded, "the reader reloaded instead of following the seals"
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["generation"] >= 6


def test_reader_far_behind_reloads_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two compactions while a reader sleeps remove the files it knew; it reloads (no damage report)."""
    monkeypatch.setattr(memory, "COMPACT_MAX_ENTRIES", 1)
    writer, reader = MemoryStore(tmp_path), MemoryStore(tmp_path)
    writer.ensure_collection(CollectionSpec("c", 4, "dot"))
    writer.upsert("c", [rec(0)])
    assert reader.count("c") == 1
    old = set(os.listdir(tmp_path / "c"))
    for i in range(1, 6):
        writer.upsert("c", [rec(i)])
    assert not old & set(os.listdir(tmp_path / "c")) - {"manifest.json"}, "old generation files should be gone"
    assert reader.count("c") == 6
    assert {r.id for r in reader.fetch("c", [f"r{i}" for i in range(6)])} == {f"r{i}" for i in range(6)}


def test_drop_and_recreate_are_seen_by_other_stores(tmp_path: Path) -> None:
    a, b = MemoryStore(tmp_path), MemoryStore(tmp_path)
    a.ensure_collection(CollectionSpec("c", 4, "dot"))
    a.upsert("c", [rec(1)])
    assert b.count("c") == 1
    assert a.drop_collection("c")
    with pytest.raises(CollectionNotFoundError):
        b.count("c")
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


def test_a_write_waits_for_the_lock_then_says_who_holds_it(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path, lock_timeout=0.3)
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    fd = os.open(tmp_path / ".locks" / "c.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process writing (a separate open file: a separate lock)
        with pytest.raises(StoreUnavailableError, match=r"c\.lock.*nothing was written"):
            store.upsert("c", [rec(1)])
        assert store.count("c") == 0  # reads never wait for the lock
    finally:
        os.close(fd)
    store.upsert("c", [rec(1)])
    assert MemoryStore(tmp_path).count("c") == 1


def test_an_unfinished_compaction_is_invisible_and_cleaned_up(tmp_path: Path) -> None:
    """A writer killed after sealing its log but before committing the manifest: readers stay on the
    old log (they wait for the commit), the next writer cuts the seal and removes the orphan files."""
    writer, reader = MemoryStore(tmp_path), MemoryStore(tmp_path)
    writer.ensure_collection(CollectionSpec("c", 4, "dot"))
    writer.upsert("c", [rec(1)])
    coll = writer._collections["c"]
    assert coll.log is not None
    tag = "1-deadbeef"
    (tmp_path / "c" / f"vectors-{tag}.npy").write_bytes(b"partial")
    (tmp_path / "c" / f"log-{tag}.bin").write_bytes(b"")
    dead = journal.open_log(tmp_path / "c", coll.log.name, 4, coll.log.generation, 0)  # the killed process's
    dead.offset = coll.log.offset
    dead.append(journal.Entry(coll.log.generation, "seal", log=f"log-{tag}.bin"))
    dead.close()
    writer.close()  # it died
    assert reader.count("c") == 1  # the seal is pending: nothing to follow yet, no error
    fresh = MemoryStore(tmp_path)
    assert fresh.count("c") == 1
    fresh.upsert("c", [rec(2)])  # cuts the seal off and removes the orphans
    assert not list((tmp_path / "c").glob(f"*{tag}*"))
    for store in (reader, MemoryStore(tmp_path)):
        assert store.count("c") == 2


def _write_snapshot_format(directory: Path, fmt: int, metric: str, vectors: np.ndarray) -> None:
    """A collection as format 1/2 wrote it: one vectors file (rows, norms), one records file."""
    directory.mkdir(parents=True)
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    rows = vectors / norms[:, None] if fmt == 1 and metric == "cosine" else vectors
    if metric == "euclidean":
        norms = np.einsum("ij,ij->i", vectors, vectors).astype(np.float32)
    with open(directory / "vectors-abc.npy", "wb") as fh:
        np.save(fh, rows.astype(np.float32))
        np.save(fh, norms)
    lines = [json.dumps({"id": f"r{i}", "text": f"t{i}", "metadata": {"i": i}}) for i in range(len(vectors))]
    (directory / "records-abc.jsonl").write_text("\n".join(lines) + "\n")
    (directory / "manifest.json").write_text(json.dumps({
        "format": fmt, "name": directory.name, "dimension": vectors.shape[1], "metric": metric,
        "metadata": {"embedder": "e"}, "count": len(vectors), "vectors": "vectors-abc.npy",
        "records": "records-abc.jsonl"}))


@pytest.mark.parametrize(("fmt", "metric"), [(1, "cosine"), (2, "cosine"), (2, "euclidean")])
def test_old_formats_are_upgraded_in_place(tmp_path: Path, fmt: int, metric: str) -> None:
    vectors = random_vectors(6, 4, seed=3, scale=3.0)
    _write_snapshot_format(tmp_path / "c", fmt, metric, vectors)
    store = MemoryStore(tmp_path)
    info = store.collection_info("c")
    assert (info.count, info.metric, dict(info.metadata)) == (6, metric, {"embedder": "e"})
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["format"] == journal.FORMAT
    assert not (tmp_path / "c" / "vectors-abc.npy").exists()
    got = {r.id: r.vector for r in store.fetch("c", [f"r{i}" for i in range(6)])}
    for i in range(6):
        np.testing.assert_allclose(got[f"r{i}"], vectors[i], rtol=1e-6)
    store.upsert("c", make_records(random_vectors(1, 4, seed=9), prefix="new"))
    assert MemoryStore(tmp_path).count("c") == 7


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


def test_opening_while_another_process_writes_and_compacts_never_reports_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old format failed about one open in seven with "the directory is damaged" while another
    process saved; here a process opens the directory in a loop while this one writes and compacts
    (every second write), and never sees an error or an older state than before."""
    import subprocess
    import sys
    import time

    monkeypatch.setattr(memory, "COMPACT_MAX_ENTRIES", 2)
    writer = MemoryStore(tmp_path)
    writer.ensure_collection(CollectionSpec("c", 16, "cosine"))
    proc = subprocess.Popen([sys.executable, "-c", OPENER, str(tmp_path), "6"], stdout=subprocess.PIPE, text=True)
    rng = np.random.default_rng(0)
    written = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        writer.upsert("c", make_records(rng.normal(size=(50, 16)).astype(np.float32), prefix=f"w{written}-"))
        written += 1
    out, _ = proc.communicate(timeout=60)
    assert "ERROR" not in out, out
    opened = int(out.split("opened ")[1].split()[0])
    assert opened >= 10 and written >= 20, (opened, written)
    assert MemoryStore(tmp_path).count("c") == 50 * written
