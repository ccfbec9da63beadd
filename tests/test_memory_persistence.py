"""The memory store on disk: state survives reopening, a crash mid-save never corrupts, damage is named."""

from __future__ import annotations

import json
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

from vectorseam.errors import VectorseamError
from vectorseam.stores import memory
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


def test_only_the_live_generation_stays_on_disk(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    store.ensure_collection(CollectionSpec("c", 4, "dot"))
    for seed in range(3):
        store.upsert("c", make_records(random_vectors(5, 4, seed=seed)))
        store.flush()
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert len(names) == 3 and names[0] == "manifest.json", names
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert {manifest["records"], manifest["vectors"]} == set(names[1:])


def test_dropped_collection_leaves_no_directory(tmp_path: Path) -> None:
    with MemoryStore(tmp_path) as store:
        store.ensure_collection(CollectionSpec("c", 4, "dot"))
        store.upsert("c", make_records(random_vectors(3, 4, seed=1)))
    with MemoryStore(tmp_path) as store:
        assert store.drop_collection("c")
    assert list(tmp_path.iterdir()) == []
    assert MemoryStore(tmp_path).collections() == []


# --- failures while saving -------------------------------------------------------------------------


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


FAULTS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    # each step of _save in turn: vectors file, records file, manifest temp file, the commit
    "vectors-write": lambda mp: mp.setattr(memory.np, "save", _fail("np.save")),
    "records-write": lambda mp: mp.setattr(
        memory, "_fsync_write", _fail_on_call(1, memory._fsync_write, "records write")
    ),
    "manifest-write": lambda mp: mp.setattr(
        memory, "_fsync_write", _fail_on_call(2, memory._fsync_write, "manifest write")
    ),
    "temp-file": lambda mp: mp.setattr(memory.tempfile, "mkstemp", _fail("mkstemp")),
    "commit": lambda mp: mp.setattr(memory.os, "replace", _fail("os.replace")),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_failed_save_leaves_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    with MemoryStore(tmp_path) as store:
        store.ensure_collection(CollectionSpec("c", 4, "euclidean", {"v": "1"}))
        store.upsert("c", make_records(random_vectors(20, 4, seed=1)))
    old = snapshot(MemoryStore(tmp_path))

    store = MemoryStore(tmp_path)
    store.upsert("c", make_records(random_vectors(25, 4, seed=2)))
    store.delete("c", ids=["r0000"])
    new = snapshot(store)
    with monkeypatch.context() as mp:
        FAULTS[fault](mp)
        with pytest.raises(OSError, match="injected failure"):
            store.flush()
    assert_same_state(snapshot(MemoryStore(tmp_path)), old)

    # The change is still pending in the live store: the next save completes it and cleans up.
    store.flush()
    assert_same_state(snapshot(MemoryStore(tmp_path)), new)
    assert len(list((tmp_path / "c").iterdir())) == 3


def test_failed_first_save_of_a_new_collection_is_invisible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore(tmp_path)
    with monkeypatch.context() as mp:
        mp.setattr(memory.os, "replace", _fail("os.replace"))
        with pytest.raises(OSError):
            store.ensure_collection(CollectionSpec("c", 4, "dot"))
    assert MemoryStore(tmp_path).collections() == []
    store.flush()
    assert [c.name for c in MemoryStore(tmp_path).collections()] == ["c"]


CHILD = r"""
import sys
import numpy as np
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

path, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = MemoryStore(path)
store.ensure_collection(CollectionSpec("big", dim, "euclidean"))
base = (np.arange(n * dim, dtype=np.float32).reshape(n, dim) % 97) / 7
first = store.fetch("big", ["r0"], include_vectors=False)
gen = first[0].metadata["gen"] + 1 if first else 0
while True:
    size = n - (gen % 3) * 100  # the count changes too, so a mix of generations shows
    store.upsert("big", [Record(f"r{i}", base[i] + gen, f"gen {gen}", {"gen": gen}) for i in range(size)])
    store.delete("big", ids=[f"r{i}" for i in range(size, n)])
    print(f"saving {gen}", flush=True)
    store.flush()
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
    size = n - (gen % 3) * 100
    assert info.count == len(records) == size
    base = (np.arange(n * dim, dtype=np.float32).reshape(n, dim) % 97) / 7
    for r in records:
        i = int(r.id[1:])
        assert r.text == f"gen {gen}"
        assert r.vector is not None
        np.testing.assert_allclose(r.vector, base[i] + gen, rtol=1e-6)
    return gen


def test_sigkill_during_save_never_corrupts(tmp_path: Path) -> None:
    """Kill a writer at random moments of its save; each reopen sees one complete generation."""
    n, dim = 3000, 64
    script = tmp_path / "writer.py"
    script.write_text(CHILD)
    store_dir = tmp_path / "store"
    rng = random.Random(1234)
    save_seconds: float | None = None
    interrupted = 0
    for attempt in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(store_dir), str(n), str(dim)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline()]
            assert lines[0].startswith("saving "), f"writer failed: {lines} {proc.communicate()[1]}"
            if save_seconds is None:  # first round: time one whole save to aim the kills inside it
                start = time.monotonic()
                lines.append(proc.stdout.readline())
                save_seconds = time.monotonic() - start
                lines.append(proc.stdout.readline())
            time.sleep(rng.uniform(0.0, 0.9 * save_seconds))
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
    assert interrupted >= 1, "no kill landed inside a save; the test did not exercise a crash mid-save"


# --- damaged files -----------------------------------------------------------------------------------


def _make_collection(path: Path) -> Path:
    with MemoryStore(path) as store:
        store.ensure_collection(CollectionSpec("c", 4, "dot"))
        store.upsert("c", [Record(f"r{i}", np.full(4, i, dtype=np.float32), "t", {"i": i}) for i in range(3)])
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
}


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


def test_directory_without_manifest_is_ignored(tmp_path: Path) -> None:
    """A crash during a collection's very first save leaves files but no manifest: not a collection."""
    directory = _make_collection(tmp_path)
    (directory / "manifest.json").unlink()
    (tmp_path / ".c.deleted-1234").mkdir()
    (tmp_path / "stray-file.txt").write_text("x")
    assert MemoryStore(tmp_path).collections() == []
