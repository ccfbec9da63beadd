"""The memory store on disk: state survives reopening, a crash mid-save never corrupts, damage is named."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectorseam.errors import StoreUnavailableError, VectorseamError
from vectorseam.stores import journal, memory
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


def test_only_the_current_and_previous_generation_stay_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compaction keeps the files of the generation before it (a process may have just read that
    manifest) and removes everything older, temp files of crashed writers included."""
    monkeypatch.setattr(memory, "COMPACT_MAX_ENTRIES", 2)
    store = MemoryStore(tmp_path)
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    (tmp_path / "c" / ".manifest-crashed.tmp").write_bytes(b"{")
    for seed in range(7):
        store.upsert("c", make_records(random_vectors(5, 4, seed=seed), prefix=f"s{seed}-"))
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["format"] == 3 and manifest["generation"] == 6
    current = {manifest["vectors"], manifest["records"], manifest["log"]}
    assert set(_files(tmp_path / "c")) == {"manifest.json", *current, *manifest["previous"]}
    assert len(manifest["previous"]) == 3
    assert MemoryStore(tmp_path).count("c") == 35


def test_dropped_collection_leaves_no_directory(tmp_path: Path) -> None:
    with MemoryStore(tmp_path) as store:
        store.ensure_collection(CollectionSpec("c", 4, "dot"))
        store.upsert("c", make_records(random_vectors(3, 4, seed=1)))
    with MemoryStore(tmp_path) as store:
        assert store.drop_collection("c")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []  # .locks stays
    assert MemoryStore(tmp_path).collections() == []


def test_writes_are_durable_without_flush(tmp_path: Path) -> None:
    """Every write call commits: another store opened on the directory sees it at once."""
    store = MemoryStore(tmp_path)
    store.ensure_collection(CollectionSpec("c", 4, "cosine"))
    store.upsert("c", make_records(random_vectors(3, 4, seed=1)))
    assert MemoryStore(tmp_path).count("c") == 3
    store.delete("c", ids=["r0001"])
    assert [r.id for r in MemoryStore(tmp_path).fetch("c", ["r0000", "r0001", "r0002"])] == ["r0000", "r0002"]


# --- failures while writing ------------------------------------------------------------------------


def _fail(what: str) -> Callable[..., Any]:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise OSError(f"injected failure in {what}")

    return boom


def _fail_on_call(n: int, real: Callable[..., Any], what: str) -> Callable[..., Any]:
    calls = {"n": 0}

    def maybe(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(f"injected failure in {what} call {n}")
        return real(*args, **kwargs)

    return maybe


WRITE_FAULTS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    # the two steps of a write: appending the entry, making it durable
    "append": lambda mp: mp.setattr(journal.os, "pwrite", _fail("os.pwrite")),
    "append-half": lambda mp: mp.setattr(
        journal.os, "pwrite", lambda fd, data, offset: journal_pwrite(fd, data[: len(data) // 2], offset)
        if len(data) > 64 else _fail("second half")()
    ),
    "sync": lambda mp: mp.setattr(journal.os, "fdatasync", _fail("os.fdatasync")),
}
journal_pwrite = os.pwrite


@pytest.mark.parametrize("fault", sorted(WRITE_FAULTS))
def test_failed_write_changes_nothing_and_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    store = MemoryStore(tmp_path)
    store.ensure_collection(CollectionSpec("c", 4, "euclidean", {"v": "1"}))
    store.upsert("c", make_records(random_vectors(20, 4, seed=1)))
    other = MemoryStore(tmp_path)
    other.ensure_collection(CollectionSpec("d", 4, "dot"))
    old = snapshot(store)
    log_before = {p.name: p.stat().st_size for p in (tmp_path / "c").iterdir()}
    with monkeypatch.context() as mp:
        WRITE_FAULTS[fault](mp)
        with pytest.raises(StoreUnavailableError, match="nothing was written") as info:
            store.upsert("c", make_records(random_vectors(25, 4, seed=2)))
        assert "log-" in str(info.value) and "retry" in str(info.value)
    assert_same_state(snapshot(store), old)  # memory unchanged
    assert_same_state(snapshot(MemoryStore(tmp_path)), old)  # disk unchanged
    assert {p.name: p.stat().st_size for p in (tmp_path / "c").iterdir()} == log_before  # no orphan bytes
    # The failure blocked nothing: the same write now succeeds, and other collections were writable.
    other.upsert("d", make_records(random_vectors(2, 4, seed=3)))
    store.upsert("c", make_records(random_vectors(25, 4, seed=2)))
    assert MemoryStore(tmp_path).count("c") == 25
    assert MemoryStore(tmp_path).count("d") == 2


COMPACTION_FAULTS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    # each step of a compaction in turn: vectors file, records file, new log, seal, manifest temp, commit
    "vectors-write": lambda mp: mp.setattr(journal.np, "save", _fail("np.save")),
    "records-write": lambda mp: mp.setattr(
        journal, "_fsync_write", _fail_on_call(1, journal._fsync_write, "records write")
    ),
    "new-log": lambda mp: mp.setattr(
        journal, "_fsync_write", _fail_on_call(2, journal._fsync_write, "new log")
    ),
    "seal": lambda mp: mp.setattr(journal.os, "fdatasync", _fail("os.fdatasync")),
    "manifest-write": lambda mp: mp.setattr(
        journal, "_fsync_write", _fail_on_call(3, journal._fsync_write, "manifest write")
    ),
    "temp-file": lambda mp: mp.setattr(journal.tempfile, "mkstemp", _fail("mkstemp")),
    "commit": lambda mp: mp.setattr(journal.os, "replace", _fail("os.replace")),
}


@pytest.mark.parametrize("fault", sorted(COMPACTION_FAULTS))
def test_failed_compaction_loses_nothing_and_leaves_no_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    store = MemoryStore(tmp_path)
    store.ensure_collection(CollectionSpec("c", 4, "euclidean", {"v": "1"}))
    store.upsert("c", make_records(random_vectors(20, 4, seed=1)))
    store.delete("c", ids=["r0000"])
    state = snapshot(store)
    files = _files(tmp_path / "c")
    with monkeypatch.context() as mp:
        COMPACTION_FAULTS[fault](mp)
        with pytest.raises(StoreUnavailableError, match="no data was lost"):
            store.compact("c")
    assert _files(tmp_path / "c") == files
    assert_same_state(snapshot(MemoryStore(tmp_path)), state)
    # A compaction started by a write fails quietly (the write itself is already safe) ...
    monkeypatch.setattr(memory, "COMPACT_MAX_ENTRIES", 1)
    with monkeypatch.context() as mp:
        COMPACTION_FAULTS[fault](mp)
        if fault != "seal":  # the seal's fdatasync is also the write's: that fault fails the write
            store.upsert("c", make_records(random_vectors(1, 4, seed=5), prefix="late"))
    if fault == "seal":
        store.upsert("c", make_records(random_vectors(1, 4, seed=5), prefix="late"))
    # ... and the next write compacts.
    store.upsert("c", make_records(random_vectors(1, 4, seed=6), prefix="later"))
    reopened = MemoryStore(tmp_path)
    assert reopened.count("c") == 21
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["count"] == 21 and set(_files(tmp_path / "c")) == journal.referenced(manifest)


def test_failed_creation_is_invisible_and_can_be_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore(tmp_path)
    with monkeypatch.context() as mp:
        mp.setattr(journal.os, "replace", _fail("os.replace"))
        with pytest.raises(OSError):
            store.ensure_collection(CollectionSpec("c", 4, "dot"))
    assert MemoryStore(tmp_path).collections() == []
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    assert [c.name for c in MemoryStore(tmp_path).collections()] == ["c"]


CHILD = r"""
import sys
import numpy as np
from vectorseam.stores import memory
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

memory.COMPACT_MAX_ENTRIES = 3  # a compaction (a rewrite of every file) every third write
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
    """Kill a writer at random moments of its writes (appends and compactions); each reopen sees the
    last committed generation (or the one being written, if its entry was complete), never a mix."""
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
            if cycle_seconds is None:  # time three writes (one compaction among them) to aim the kills
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


# --- damaged files -----------------------------------------------------------------------------------


def _make_collection(path: Path) -> Path:
    """Three records in a base (vectors-*.npy, records-*.jsonl) and two more writes in the log."""
    with MemoryStore(path) as store:
        store.ensure_collection(CollectionSpec("c", 4, "dot"))
        store.upsert("c", [Record(f"r{i}", np.full(4, i, dtype=np.float32), "t", {"i": i}) for i in range(3)])
        store.compact("c")
        store.upsert("c", [Record("r3", np.full(4, 3, dtype=np.float32), "t", {"i": 3})])
        store.upsert("c", [Record("r4", np.full(4, 4, dtype=np.float32), "t", {"i": 4})])
    return path / "c"


def _manifest_edit(**changes: Any) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        manifest = json.loads((directory / "manifest.json").read_text())
        for key, value in changes.items():
            if value is ...:
                del manifest[key]
            else:
                manifest[key] = value
        (directory / "manifest.json").write_text(json.dumps(manifest))

    return edit


def _write(pattern: str, data: bytes) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        (target,) = directory.glob(pattern)
        target.write_bytes(data)

    return edit


def _truncate(pattern: str, keep: int) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        (target,) = directory.glob(pattern)
        target.write_bytes(target.read_bytes()[:keep])

    return edit


def _replace_with_directory(pattern: str) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        (target,) = directory.glob(pattern)
        target.unlink()
        target.mkdir()

    return edit


DAMAGE: dict[str, Callable[[Path], None]] = {
    "manifest-truncated": _truncate("manifest.json", 20),
    "manifest-empty": _write("manifest.json", b""),
    "manifest-null": _write("manifest.json", b"null"),
    "manifest-list": _write("manifest.json", b"[1, 2]"),
    "manifest-binary": _write("manifest.json", b"\xff\xfe\x00"),
    "format-version": _manifest_edit(format=99),
    "count-missing": _manifest_edit(count=...),
    "name-missing": _manifest_edit(name=...),
    "vectors-missing-key": _manifest_edit(vectors=...),
    "dimension-null": _manifest_edit(dimension=None),
    "dimension-text": _manifest_edit(dimension="four"),
    "metric-unknown": _manifest_edit(metric="manhattan"),
    "metadata-not-object": _manifest_edit(metadata=[1]),
    "count-mismatch": _manifest_edit(count=5),
    "dimension-mismatch": _manifest_edit(dimension=5),
    "vectors-file-missing": _manifest_edit(vectors="vectors-gone.npy"),
    "vectors-truncated": _truncate("vectors-*.npy", 100),
    "vectors-empty": _write("vectors-*.npy", b""),
    "records-bad-json": _write("records-*.jsonl", b"{not json\n"),
    "records-without-id": _write("records-*.jsonl", b'{"text": "t", "metadata": {}}\n' * 3),
    "records-not-objects": _write("records-*.jsonl", b"[1]\n[2]\n[3]\n"),
    "records-too-few": _write("records-*.jsonl", b'{"id": "r0", "text": "t", "metadata": {}}\n'),
    "records-is-a-directory": _replace_with_directory("records-*.jsonl"),
    "log-file-missing": lambda d: _current_log(d).unlink(),
    "log-checksum": lambda d: _flip_byte(_current_log(d), 40),
    "log-entry-overwritten": lambda d: _flip_byte(_current_log(d), _first_entry_end(d)),
}


def _current_log(directory: Path) -> Path:
    return directory / json.loads((directory / "manifest.json").read_text())["log"]


def _first_entry_end(directory: Path) -> int:
    data = _current_log(directory).read_bytes()
    _, head, blob, _ = journal._PREFIX.unpack(data[: journal._PREFIX.size])
    return int(journal._PREFIX.size + head + blob)


def _flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_collection_gives_a_clear_error(tmp_path: Path, damage: str) -> None:
    directory = _make_collection(tmp_path)
    DAMAGE[damage](directory)
    with pytest.raises(VectorseamError) as info:
        MemoryStore(tmp_path)
    assert type(info.value) is VectorseamError
    message = str(info.value)
    assert str(directory) in message, message
    assert any(hint in message for hint in ("ingest again", "backup")), message
    assert "remove it" not in message and "delete" not in message, message  # never invite deleting data
    if damage.startswith("log-") and damage != "log-file-missing":
        # Says where the good part ends and how to keep it.
        assert "truncate -s" in message and "intact" in message, message


@pytest.mark.parametrize("tail", ["cut-mid-entry", "cut-mid-prefix", "zeros"])
def test_an_incomplete_last_write_is_not_damage(tmp_path: Path, tail: str) -> None:
    """A writer killed while appending leaves a partial entry: never acknowledged, so the directory
    opens at the write before it, and the next write cuts the partial entry off."""
    directory = _make_collection(tmp_path)
    log_path = _current_log(directory)
    data = log_path.read_bytes()
    if tail == "cut-mid-entry":
        log_path.write_bytes(data[:-7])
    elif tail == "cut-mid-prefix":
        log_path.write_bytes(data[: _first_entry_end(directory) + 9])
    else:
        log_path.write_bytes(data + bytes(100))
    store = MemoryStore(tmp_path)
    want = 5 if tail == "zeros" else 4
    assert store.count("c") == want
    store.upsert("c", [Record("r9", np.full(4, 9, dtype=np.float32), "t", {"i": 9})])
    assert MemoryStore(tmp_path).count("c") == want + 1
    assert "r9" in {r.id for r in MemoryStore(tmp_path).fetch("c", ["r9"])}


def test_directory_without_manifest_is_ignored(tmp_path: Path) -> None:
    """A crash during a collection's very first save leaves files but no manifest: not a collection."""
    directory = _make_collection(tmp_path)
    (directory / "manifest.json").unlink()
    (tmp_path / ".c.deleted-1234").mkdir()
    (tmp_path / "stray-file.txt").write_text("x")
    assert MemoryStore(tmp_path).collections() == []
