"""Migration between backends: memory -> memory (interrupted and resumed), and memory -> pgvector ->
Qdrant (local path) through the real CLI, verified by counts and record-by-record comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectorseam.datadir import DataDir
from vectorseam.errors import StoreUnavailableError
from vectorseam.ingest.migrate import migrate_collection, records_equal
from vectorseam.retrying import RetryPolicy
from vectorseam.state import MigrationState, StateDB
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record


def _fill(store: MemoryStore, n: int, name: str = "src") -> list[Record]:
    rng = np.random.default_rng(3)
    store.ensure_collection(CollectionSpec(name, 16, "cosine", {"embedder": "local:test:16"}))
    records = [Record(f"id-{i:04d}", rng.standard_normal(16).astype(np.float32), f"text {i} ü",
                      {"i": i, "tags": ["a", str(i % 3)], "f": i / 3, "none": None}) for i in range(n)]
    store.upsert(name, records)
    return records


class DropsAfter:
    """A real memory store whose link dies after ``pages`` upserts (an outage mid-migration)."""

    def __init__(self, inner: MemoryStore, pages: int) -> None:
        self.inner, self.pages = inner, pages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        if self.pages <= 0:
            raise StoreUnavailableError("connection reset (simulated outage)")
        self.pages -= 1
        return self.inner.upsert(collection, records)


def test_memory_to_memory_is_resumable_and_verified(tmp_path: Path) -> None:
    source = MemoryStore(tmp_path / "a")
    records = _fill(source, 230)
    db = StateDB(DataDir.at(tmp_path / "b-data"))
    state = MigrationState(db, "k")
    target = MemoryStore(tmp_path / "b")
    with pytest.raises(StoreUnavailableError, match="running the same command again resumes"):
        migrate_collection(source, DropsAfter(target, 3), "src", state, batch_size=50,  # type: ignore[arg-type]
                           retry=RetryPolicy(attempts=2, backoff=0.01))
    db.close()
    target.close()
    target = MemoryStore(tmp_path / "b")  # a new process: only what was committed survived
    state = MigrationState(StateDB(DataDir.at(tmp_path / "b-data")), "k")
    assert state.load() == 150
    report = migrate_collection(source, target, "src", state, batch_size=50, sample=300)
    assert report.verified and report.resumed_from == 150 and report.copied == 80
    assert (report.source_count, report.target_count, report.sampled) == (230, 230, 230)
    assert state.load() == 0
    copied = {r.id: r for page in target.scan("src") for r in page}
    for rec in records:
        assert records_equal(rec, copied[rec.id], "cosine") is None
    assert target.collections()[0].metadata == {"embedder": "local:test:16"}


def test_a_target_with_other_records_fails_verification(tmp_path: Path) -> None:
    source = MemoryStore(tmp_path / "a")
    _fill(source, 20)
    target = MemoryStore(tmp_path / "b")
    _fill(target, 25)  # same ids 0-19 plus five more
    report = migrate_collection(source, target, "src", MigrationState(StateDB(DataDir.at(tmp_path)), "k"))
    assert not report.verified and "target has 25" in report.mismatches[0]


def _config(path: Path, data_dir: Path, store: str, options: dict[str, Any]) -> Path:
    lines = [f'data_dir = "{data_dir}"', "[store]", f'name = "{store}"', "[store.options]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    return subprocess.run([sys.executable, "-m", "vectorseam.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def test_memory_to_pgvector_to_qdrant_through_the_cli(tmp_path: Path, pg_server: Any) -> None:
    pytest.importorskip("vectorseam_qdrant", reason="the Qdrant adapter (adapters/qdrant) is not installed")
    source = MemoryStore(tmp_path / "mem")
    records = _fill(source, 120)
    source.close()
    mem = _config(tmp_path / "mem.toml", tmp_path / "d1", "memory", {"path": str(tmp_path / "mem")})
    qdrant = _config(tmp_path / "qd.toml", tmp_path / "d3", "qdrant", {"path": str(tmp_path / "qdrant")})
    pg = _config(tmp_path / "pg.toml", tmp_path / "d2", "pgvector", {"dsn": pg_server.dsn(), "schema": "mig"})
    first = _cli("migrate", "src", "--from", str(mem), "--to", str(pg), "--batch-size", "40")
    assert first.returncode == 0, first.stderr
    assert "copied 120 records" in first.stdout and "verified" in first.stdout
    second = _cli("migrate", "src", "--from", str(pg), "--to", str(qdrant), "--batch-size", "40")
    assert second.returncode == 0, second.stderr
    assert "verified" in second.stdout
    from vectorseam_qdrant.store import create_store

    store = create_store(path=str(tmp_path / "qdrant"))
    try:
        copied = {r.id: r for page in store.scan("src") for r in page}
        assert len(copied) == 120
        for rec in records:
            assert records_equal(rec, copied[rec.id], "cosine") is None, rec.id
    finally:
        store.close()
