"""Kill the ingest job with SIGKILL at random moments and just after random batches, run it again, and check the store record by record.

A real subprocess runs the real job (record manager, embedding cache, store writes, cleanup) against
the persisted memory store and against a real PostgreSQL + pgvector server. Embeddings come from a
cache pre-filled with the real model's vectors so that each run spends its time in the job itself
(where the kills must land), not in loading the model.

Each killed run reads another version of the same source file (every text changed, rows removed
and added; ``cleanup="full"``), so every kill interrupts real writes, updates and deletes. A last run
completes; the store must then hold exactly the last version: every id, text, metadata value and
vector, nothing more. A further run must find everything unchanged.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_ingest_helpers import (
    assert_nothing_to_do,
    check_store,
    fill_cache,
    source_versions,
    start_job,
    write_jsonl,
)
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.stores.memory import MemoryStore

KILLS = 22
COLLECTION = "killed"


def _run(env: dict[str, str], source: Path, cache: Path, kill_after: float | None,
         kill_at_batch: int | None = None) -> tuple[int, str, float]:
    """Run the job and kill it ``kill_after`` seconds after it started working, or that long after it
    reported batch ``kill_at_batch`` as written (so the kill lands among later writes). Returns the exit
    code, the output and how long the job worked (from the end of its imports to its exit)."""
    job = start_job(env, source, COLLECTION, cache, batch_size=4, checkpoint_seconds=0)
    if kill_at_batch is not None:
        job.until_batch(kill_at_batch)
    if kill_after is not None:
        time.sleep(kill_after)
        job.proc.send_signal(signal.SIGKILL)
    return job.finish(timeout=120)


def _kill_and_resume(env: dict[str, str], tmp: Path, emb: LocalEmbedder) -> tuple[
    list[dict[str, Any]], dict[str, int], list[int]
]:
    versions = source_versions()
    source = tmp / "source.jsonl"  # one path, whose content changes between runs, as in a scheduled job
    cache = tmp / "cache.sqlite"
    fill_cache(cache, list(dict.fromkeys(r["text"] for v in versions for r in v)), emb)
    rng = random.Random(int(os.environ.get("VECTORSEAM_KILL_SEED", "6")))
    # A full run (every row to write) decides the window the kill times are drawn from.
    write_jsonl(source, versions[0])
    code, out, window = _run(env | {"VECTORSEAM_COLLECTION": "probe"}, source, cache, None)
    assert code == 0, out
    killed_mid_run: list[int] = []
    for i in range(3 * KILLS):
        if len(killed_mid_run) >= KILLS:
            break
        # Every run sees another version, so every run has writes, updates and deletes to do.
        write_jsonl(source, versions[i % len(versions)])
        if i % 2:  # at a random moment: may land before the first write, in a write, or in cleanup
            code, out, _ = _run(env, source, cache, rng.uniform(0.0, 0.9 * window))
        else:  # just after a random batch was written: always among writes, however fast the machine
            code, out, _ = _run(env, source, cache, rng.uniform(0.0, 0.01), kill_at_batch=rng.randint(1, 24))
        if code == -signal.SIGKILL:
            killed_mid_run.append(out.count("batch "))
        else:
            assert code == 0, out
            window = max(0.9 * window, 0.2)  # the job finished first: draw the next kill times earlier
    final = versions[-1]
    write_jsonl(source, final)
    code, out, _ = _run(env, source, cache, None)
    assert code == 0, out
    code, out, _ = _run(env, source, cache, None)  # a re-run over an unchanged source changes nothing
    assert code == 0, out
    report = json.loads(out.split("REPORT ", 1)[1])
    return final, report, killed_mid_run


def _assert_outcome(rows: list[dict[str, Any]], report: dict[str, int], killed: list[int]) -> None:
    assert_nothing_to_do(report, rows)
    # Most kills must have landed while the job was running, many of them after it had written.
    assert len(killed) >= KILLS, f"only {len(killed)} runs were killed mid-run: {killed}"
    assert sum(1 for batches in killed if batches > 0) >= 10, f"too few kills after a write: {killed}"


@pytest.fixture
def base_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    env["VECTORSEAM_DATA_DIR"] = str(tmp_path / "data")
    env["VECTORSEAM_COLLECTION"] = COLLECTION
    yield env


def test_sigkill_and_resume_memory_store(tmp_path: Path, base_env: dict[str, str],
                                         local_embedder: LocalEmbedder) -> None:
    rows, report, killed = _kill_and_resume(base_env, tmp_path, local_embedder)
    with MemoryStore(tmp_path / "data" / "memory") as store:  # read back from disk, as a new process would
        check_store(store, COLLECTION, rows, local_embedder)
    _assert_outcome(rows, report, killed)


def test_sigkill_and_resume_pgvector(tmp_path: Path, base_env: dict[str, str], local_embedder: LocalEmbedder,
                                     pg_server: Any) -> None:
    from vectorseam_pgvector import create_store

    options = {"dsn": pg_server.dsn(), "schema": f"kill_{uuid.uuid4().hex[:8]}", "retries": 1}
    env = base_env | {"VECTORSEAM_STORE__NAME": "pgvector", "VECTORSEAM_STORE__OPTIONS": json.dumps(options)}
    rows, report, killed = _kill_and_resume(env, tmp_path, local_embedder)
    store = create_store(**options)
    try:
        check_store(store, COLLECTION, rows, local_embedder)
    finally:
        store.close()
    _assert_outcome(rows, report, killed)
