"""The memory store on disk (SQLite plus snapshots): state survives reopening and kills, snapshots are
only a cache, failed writes change nothing, files are private."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectorseam.errors import (
    CollectionDamagedError,
    CollectionNotFoundError,
    ConfigError,
    StoreUnavailableError,
    ValidationError,
)
from vectorseam.stores import memory_db, memory_snapshot
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing import assert_same_record, make_records, random_vectors
from vectorseam.types import METRICS, CollectionSpec, Record


def snapshot(store: MemoryStore) -> dict[str, Any]:
    """Everything observable about a store, for before/after comparisons."""
    out: dict[str, Any] = {}
    for info in store.collections():
        records = [r for page in store.scan(info.name) for r in page]
        out[info.name] = (info, records)
    return out


def assert_same_state(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for name, (info, records) in want.items():
        g_info, g_records = got[name]
        assert g_info == info
        assert [r.id for r in g_records] == [r.id for r in records]
        for g, w in zip(g_records, records, strict=True):
            assert_same_record(g, w)
            assert g.metadata == w.metadata  # exact types (int stays int) on the same backend


def test_state_survives_reopen(tmp_path: Path) -> None:
    with MemoryStore(tmp_path) as store:
        for n, metric in enumerate(METRICS):
            name = f"c{metric}"
            store.ensure_collection(CollectionSpec(name, 6, metric, {"embedder": f"e{n}", "ü": "✓"}))
            store.upsert(name, make_records(random_vectors(30, 6, seed=n, scale=2.0), metadata=lambda i: {
                "i": i, "f": i / 4, "b": i % 2 == 0, "s": f"ünï {i}", "l": ["x", i], "z": None,
            }))
            store.delete(name, ids=["r0003", "r0010"])
            store.delete(name, filter={"i": {"$gte": 25}})
        store.ensure_collection(CollectionSpec("empty", 3, "dot"))
        store.ensure_collection(CollectionSpec("gone", 3, "dot"))
        store.upsert("gone", make_records(random_vectors(2, 3, seed=9)))
        store.drop_collection("gone")
        before = snapshot(store)
        queries = random_vectors(3, 6, seed=99)
        hits_before = {m: store.query(f"c{m}", queries, k=5) for m in METRICS}
    assert sorted(before) == ["ccosine", "cdot", "ceuclidean", "empty"]
    assert before["cdot"][0].count == 23

    reopened = MemoryStore(tmp_path)
    assert_same_state(snapshot(reopened), before)
    for metric, results in hits_before.items():
        again = reopened.query(f"c{metric}", queries, k=5)
        assert [[(h.id, h.score) for h in hs] for hs in again] == [
            [(h.id, h.score) for h in hs] for hs in results
        ]
    # The reopened store keeps working and persisting.
    reopened.upsert("empty", make_records(random_vectors(1, 3, seed=5)))
    reopened.close()
    assert MemoryStore(tmp_path).count("empty") == 1


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_dropped_collection_leaves_no_directory(tmp_path: Path) -> None:
    with MemoryStore(tmp_path) as store:
        store.ensure_collection(CollectionSpec("c", 4, "dot"))
        store.upsert("c", make_records(random_vectors(3, 4, seed=1)))
    with MemoryStore(tmp_path) as store:
        assert store.drop_collection("c")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []
    assert MemoryStore(tmp_path).collections() == []


def test_writes_are_durable_without_flush(tmp_path: Path) -> None:
    """Every write call commits: another store opened on the directory sees it at once."""
    store = MemoryStore(tmp_path)
    store.ensure_collection(CollectionSpec("c", 4, "cosine"))
    store.upsert("c", make_records(random_vectors(3, 4, seed=1)))
    assert MemoryStore(tmp_path).count("c") == 3
    store.delete("c", ids=["r0001"])
    assert [r.id for r in MemoryStore(tmp_path).fetch("c", ["r0000", "r0001", "r0002"])] == ["r0000", "r0002"]


def test_files_are_private_to_the_user(tmp_path: Path) -> None:
    """A data directory holds every tenant's records: nothing in it is readable by other users."""
    with MemoryStore(tmp_path / "store") as store:
        store.ensure_collection(CollectionSpec("c", 4, "dot"))
        store.upsert("c", make_records(random_vectors(5, 4, seed=1)))
        store.compact("c")
    for path in (tmp_path / "store").rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def test_opening_a_store_loads_nothing_until_used(tmp_path: Path) -> None:
    """Listing and counting read the database only; the vectors load on the first search."""
    with MemoryStore(tmp_path) as store:
        for name in ("a", "b"):
            store.ensure_collection(CollectionSpec(name, 4, "dot"))
            store.upsert(name, make_records(random_vectors(7, 4, seed=2)))
    store = MemoryStore(tmp_path)
    assert [(c.name, c.count) for c in store.collections()] == [("a", 7), ("b", 7)]
    assert store.count("b") == 7
    assert all(e.coll is None for e in store._entries.values())
    store.query("a", random_vectors(1, 4, seed=3)[0], k=2)
    assert store._entries["a"].coll is not None and store._entries["b"].coll is None


# --- snapshots: a cache that can be lost or damaged without losing anything -----------------------------


def _filled(path: Path, n: int = 40) -> dict[str, Any]:
    with MemoryStore(path) as store:
        store.ensure_collection(CollectionSpec("c", 6, "cosine", {"embedder": "e"}))
        store.upsert("c", make_records(random_vectors(n, 6, seed=4), metadata=lambda i: {"i": i, "big": 2**80 + i}))
        store.compact("c")  # a snapshot at this change
        store.upsert("c", make_records(random_vectors(5, 6, seed=5), prefix="late-"))
        store.delete("c", ids=["r0001", "late-r0002"])
        return snapshot(store)


def test_a_snapshot_opens_the_collection_and_later_changes_apply_on_top(tmp_path: Path) -> None:
    before = _filled(tmp_path)
    (snap,) = memory_snapshot.available(tmp_path / "c")
    store = MemoryStore(tmp_path)
    assert_same_state(snapshot(store), before)
    assert store._entries["c"].snapshot_seq == int(snap.name.split("-")[1])


@pytest.mark.parametrize("damage", ["deleted", "vectors-flipped", "ids-truncated", "manifest-garbage",
                                    "offsets-zeroed"])
def test_a_lost_or_damaged_snapshot_loses_nothing(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    before = _filled(tmp_path)
    (snap,) = memory_snapshot.available(tmp_path / "c")
    if damage == "deleted":
        for path in snap.iterdir():
            path.unlink()
        snap.rmdir()
    elif damage == "vectors-flipped":
        data = bytearray((snap / "vectors.npy").read_bytes())
        data[200] ^= 0x10
        (snap / "vectors.npy").write_bytes(bytes(data))
    elif damage == "ids-truncated":
        (snap / "ids.npy").write_bytes((snap / "ids.npy").read_bytes()[:-3])
    elif damage == "manifest-garbage":
        (snap / "manifest.json").write_bytes(b"\x00\xff")
    else:
        data = bytearray((snap / "texts_off.npy").read_bytes())
        data[-16:] = bytes(16)
        (snap / "texts_off.npy").write_bytes(bytes(data))
    assert_same_state(snapshot(MemoryStore(tmp_path)), before)
    if damage != "deleted":
        assert "snapshot set aside" in caplog.text
        assert not memory_snapshot.available(tmp_path / "c")  # moved out of the way, kept for inspection


def test_a_snapshot_ahead_of_its_database_is_reported_as_damage(tmp_path: Path) -> None:
    """A database that lost commits a snapshot holds must not be served as if complete."""
    with MemoryStore(tmp_path) as store:
        for name in ("c", "other"):
            store.ensure_collection(CollectionSpec(name, 4, "dot"))
            store.upsert(name, make_records(random_vectors(3, 4, seed=1)))
        saved = tmp_path / "saved.sqlite3"
        with sqlite3.connect(tmp_path / "c" / "records.sqlite3") as live, sqlite3.connect(saved) as copy:
            live.backup(copy)
        store.upsert("c", make_records(random_vectors(3, 4, seed=2), prefix="new-"))
        store.compact("c")
    os.replace(saved, tmp_path / "c" / "records.sqlite3")  # the database as it was before the last commit
    store = MemoryStore(tmp_path)
    with pytest.raises(CollectionDamagedError, match="collection 'c' is damaged .*vectorseam doctor c"):
        store.count("c", filter={"i": 1})
    assert store.count("other") == 3  # every other collection keeps serving
    assert "c" in store.damaged()


def test_a_reader_behind_pruned_tombstones_reloads_from_the_snapshot(tmp_path: Path) -> None:
    """Snapshots prune old tombstones; a process that had not looked since then reloads instead."""
    reader = MemoryStore(tmp_path)
    writer = MemoryStore(tmp_path)
    writer.ensure_collection(CollectionSpec("c", 4, "dot"))
    writer.upsert("c", make_records(random_vectors(10, 4, seed=1)))
    assert reader.count("c", filter={"absent": 1}) == 0  # loads the collection in the reader
    for round_ in range(3):
        writer.delete("c", ids=[f"r{round_:04d}"])
        writer.compact("c")
    assert [r.id for r in reader.fetch("c", [f"r{i:04d}" for i in range(10)])] == [f"r{i:04d}" for i in range(3, 10)]
    assert reader._entries["c"].snapshot_seq > 0, "the reader should have reloaded from the newest snapshot"


# --- failures while writing -------------------------------------------------------------------------------


def test_a_refused_write_changes_nothing(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    store.ensure_collection(CollectionSpec("c", 4, "cosine"))
    store.upsert("c", make_records(random_vectors(3, 4, seed=1)))
    before = snapshot(store)
    bad = [Record("ok", np.ones(4, np.float32)), Record("zero", np.zeros(4, np.float32))]
    with pytest.raises(ValidationError, match="record 'zero': a zero vector"):
        store.upsert("c", bad)
    assert_same_state(snapshot(store), before)
    assert_same_state(snapshot(MemoryStore(tmp_path)), before)


def test_a_write_that_fails_half_way_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error while rows are being written (here: the third row's checksum) leaves the database and
    this process's copy exactly as before; the next write succeeds."""
    store = MemoryStore(tmp_path)
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    store.upsert("c", make_records(random_vectors(3, 4, seed=1)))
    before = snapshot(store)
    real = memory_db.record_crc
    calls = {"n": 0}

    def flaky(*args: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("injected failure")
        return real(*args)

    monkeypatch.setattr(memory_db, "record_crc", flaky)
    with pytest.raises(OSError, match="injected"):
        store.upsert("c", make_records(random_vectors(5, 4, seed=2), prefix="x-"))
    monkeypatch.setattr(memory_db, "record_crc", real)
    assert_same_state(snapshot(store), before)
    assert_same_state(snapshot(MemoryStore(tmp_path)), before)
    store.upsert("c", make_records(random_vectors(2, 4, seed=3), prefix="y-"))
    assert MemoryStore(tmp_path).count("c") == 5


def test_a_write_waits_for_another_writer_then_says_so(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path, lock_timeout=0.3)
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    other = sqlite3.connect(tmp_path / "c" / "records.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with pytest.raises(StoreUnavailableError, match="another process has held its write lock"):
            store.upsert("c", make_records(random_vectors(1, 4, seed=1)))
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.upsert("c", make_records(random_vectors(1, 4, seed=1)))
    assert store.count("c") == 1


def test_process_durability_is_a_choice(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path, durability="process")
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    store.upsert("c", make_records(random_vectors(2, 4, seed=1)))
    assert MemoryStore(tmp_path).count("c") == 2
    with pytest.raises(ConfigError, match="durability"):
        MemoryStore(tmp_path, durability="never")  # type: ignore[arg-type]


# --- blobs kept with a collection ---------------------------------------------------------------------------


@pytest.mark.parametrize("persisted", [True, False])
def test_blobs_live_and_die_with_their_collection(tmp_path: Path, persisted: bool) -> None:
    store = MemoryStore(tmp_path if persisted else None)
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    assert store.get_blob("c", "profile") is None
    store.put_blob("c", "profile", b"v1")
    if persisted:
        other = MemoryStore(tmp_path)
        assert other.get_blob("c", "profile") == b"v1"
        store.put_blob("c", "profile", b"v2")
        assert other.get_blob("c", "profile") == b"v2"  # seen on the next call
    assert store.delete_blob("c", "profile") and not store.delete_blob("c", "profile")
    store.put_blob("c", "profile", b"v3")
    store.drop_collection("c")
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    assert store.get_blob("c", "profile") is None
    with pytest.raises(CollectionNotFoundError):
        store.get_blob("absent", "profile")


# --- killed writers ----------------------------------------------------------------------------------------


CHILD = r"""
import sys
import numpy as np
from vectorseam.stores import memory
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

memory.SNAPSHOT_MIN_CHANGES = 2000  # a snapshot (a rewrite of every record) every other write
path, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = MemoryStore(path)
store.ensure_collection(CollectionSpec("big", dim, "euclidean"))
base = (np.arange(n * dim, dtype=np.float32).reshape(n, dim) % 97) / 7
first = store.fetch("big", ["r0"], include_vectors=False)
gen = first[0].metadata["gen"] + 1 if first else 0
while True:
    print(f"saving {gen}", flush=True)
    store.upsert("big", [Record(f"r{i}", base[i] + gen, f"gen {gen}", {"gen": gen}) for i in range(n)])
    print(f"saved {gen}", flush=True)
    store.close()  # writes a snapshot: kills land in snapshot writes too
    gen += 1
"""


def _check_generation(path: Path, n: int, dim: int) -> int:
    store = MemoryStore(path)
    (info,) = store.collections()
    records = [r for page in store.scan("big", batch_size=5000) for r in page]
    gens = {r.metadata["gen"] for r in records}
    assert len(gens) == 1, f"records from several generations after a crash: {sorted(gens)}"
    (gen,) = gens
    assert isinstance(gen, int)
    assert info.count == len(records) == n
    base = (np.arange(n * dim, dtype=np.float32).reshape(n, dim) % 97) / 7
    for r in records:
        i = int(r.id[1:])
        assert r.text == f"gen {gen}"
        assert r.vector is not None
        np.testing.assert_array_equal(r.vector, base[i] + gen)
    return gen


def test_sigkill_during_save_never_corrupts(tmp_path: Path) -> None:
    """Kill a writer at random moments of its writes (commits and snapshot writes); each reopen sees the
    last committed generation (or the one being written, if its commit was complete), never a mix."""
    n, dim = 3000, 64
    script = tmp_path / "writer.py"
    script.write_text(CHILD)
    store_dir = tmp_path / "store"
    rng = random.Random(1234)
    cycle_seconds: float | None = None
    interrupted = 0
    for attempt in range(6):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(store_dir), str(n), str(dim)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline()]
            assert lines[0].startswith("saving "), f"writer failed: {lines} {proc.communicate()[1]}"
            if cycle_seconds is None:  # time three writes (with their snapshots) to aim the kills
                start = time.monotonic()
                for _ in range(6):
                    lines.append(proc.stdout.readline())
                cycle_seconds = time.monotonic() - start
            time.sleep(rng.uniform(0.0, cycle_seconds))
            proc.send_signal(signal.SIGKILL)
            lines += proc.communicate(timeout=30)[0].splitlines()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        saving = [int(x.split()[1]) for x in lines if x.startswith("saving ")]
        saved = [int(x.split()[1]) for x in lines if x.startswith("saved ")]
        last_saved = max(saved, default=saving[0] - 1)
        interrupted += max(saving) > last_saved
        found = _check_generation(store_dir, n, dim)
        assert found in {last_saved, max(saving)}, (attempt, lines, found)
    assert interrupted >= 1, "no kill landed inside a write; the test did not exercise a crash mid-write"


