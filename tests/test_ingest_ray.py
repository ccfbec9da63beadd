"""The load job on Ray (``engine="ray"``) on a real local Ray cluster, one for the whole module.

* **Kill test**, as tests/test_ingest_kill.py does it for the local job: a real driver process
  (the facade, ``engine="ray"``, joining the module's cluster) is killed with SIGKILL at random
  moments and just after random batches, at least five times, and a worker actor (a store writer)
  once in the middle of a run; each killed run reads another version of the source (every text
  changed, rows removed and added, ``cleanup="full"``). Then a full run; the store must hold exactly
  the last version, record by record (id, text, metadata, vector), and one more run must find every
  document unchanged. Against the persisted memory store and against a real PostgreSQL + pgvector
  server; the record manager is in that PostgreSQL in both cases. Embeddings come from a cache
  pre-filled with the real model's vectors, so the runs spend their time in the job.
* **Congruence**: the same corpus (short rows, long texts split into chunks, broken rows) through
  the local job file by file and through Ray over a glob of the files: the same records (ids, texts,
  metadata, vectors within 1e-5, both embedded for real) and the same rejects (file:line). Then the
  CLI with ``--engine ray``: a second source in the same collection, and ``--cleanup full`` of the
  glob deletes what its files lost and nothing of the other source.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_ingest_helpers import (
    assert_nothing_to_do,
    check_store,
    fill_cache,
    make_rows,
    source_versions,
    start_job,
    write_jsonl,
)
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.ingest_options import IngestOptions
from vectorseam.store import VectorStore
from vectorseam.stores.memory import MemoryStore

ray = pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra (pip install 'vectorseam[ray]')")

DRIVER_KILLS = 5
COLLECTION = "killed"


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """One real local cluster for the module: the machine's two CPUs, no dashboard."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _actor_pids(name: str) -> list[int]:
    """Processes of Ray actors whose title names ``name`` (Ray titles them ``ray::<actor>...``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("ray::") and name in cmdline:
            pids.append(int(entry.name))
    return pids


def _run(env: dict[str, str], source: Path, cache: Path, address: str, kill_after: float | None = None,
         kill_at_batch: int | None = None, kill_writer: bool = False) -> tuple[int, str, float, bool]:
    """Run a driver; kill it ``kill_after`` seconds after it started (or after batch ``kill_at_batch``),
    or, with ``kill_writer``, kill one of its writer actors after its first batch and let it finish.
    Returns the exit code, the output, how long it worked and whether a writer was killed."""
    job = start_job(env, source, COLLECTION, cache, batch_size=8, engine="ray", ray_address=address)
    wait_for = 1 if kill_writer else kill_at_batch
    if wait_for is not None:
        job.until_batch(wait_for)
    killed_writer = False
    if kill_writer:
        pids = _actor_pids("_Writer")
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed_writer = True
    if kill_after is not None:
        time.sleep(kill_after)
        job.proc.send_signal(signal.SIGKILL)
    code, out, took = job.finish(timeout=300)
    print(f"driver: exit {code} after {took:.1f}s, {out.count('batch ')} batches"
          f"{', a writer killed' if killed_writer else ''}", file=sys.stderr)
    return code, out, took, killed_writer


def _kill_and_resume(env: dict[str, str], tmp: Path, emb: LocalEmbedder, address: str) -> tuple[
    list[dict[str, Any]], dict[str, int], list[int]
]:
    versions = source_versions()
    source = tmp / "source.jsonl"
    cache = tmp / "cache.sqlite"
    fill_cache(cache, list(dict.fromkeys(r["text"] for v in versions for r in v)), emb)
    rng = random.Random(int(os.environ.get("VECTORSEAM_KILL_SEED", "6")))
    # A run whose writer actor is killed mid-run: Ray restarts the actor and retries its batch.
    write_jsonl(source, versions[0])
    code, out, took, killed_writer = _run(env, source, cache, address, kill_writer=True)
    assert code == 0, out
    assert killed_writer, "no writer actor process was found to kill"
    window = 0.6 * took  # that run also restarted an actor: the next ones are shorter
    killed: list[int] = []
    for i in range(1, 4 * DRIVER_KILLS):
        if len(killed) >= DRIVER_KILLS:
            break
        write_jsonl(source, versions[i % len(versions)])
        if i % 2:  # at a random moment: before the pipeline starts, among writes, or in the cleanup
            code, out, _, _ = _run(env, source, cache, address, kill_after=rng.uniform(0.0, window))
        else:  # just after a random batch was written
            code, out, _, _ = _run(env, source, cache, address, kill_after=rng.uniform(0.0, 0.05),
                                   kill_at_batch=rng.randint(1, 4))
        if code == -signal.SIGKILL:
            killed.append(out.count("batch "))
        else:
            assert code == 0, out
            window = max(0.7 * window, 1.0)  # the run ended first: draw the next kill times earlier
    final = versions[-1]
    write_jsonl(source, final)
    code, out, _, _ = _run(env, source, cache, address)
    assert code == 0, out
    code, out, _, _ = _run(env, source, cache, address)  # a re-run over an unchanged source changes nothing
    assert code == 0, out
    return final, json.loads(out.split("REPORT ", 1)[1].splitlines()[0]), killed


def _assert_outcome(rows: list[dict[str, Any]], report: dict[str, int], killed: list[int]) -> None:
    assert_nothing_to_do(report, rows)
    assert len(killed) >= DRIVER_KILLS, f"only {len(killed)} drivers were killed mid-run: {killed}"
    assert sum(1 for batches in killed if batches > 0) >= 2, f"too few kills after a write: {killed}"


@pytest.fixture
def base_env(tmp_path: Path, pg_server: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    env["VECTORSEAM_DATA_DIR"] = str(tmp_path / "data")
    env["VECTORSEAM_COLLECTION"] = COLLECTION
    env["VECTORSEAM_INGEST__RECORD_MANAGER_DSN"] = pg_server.dsn()
    env["VECTORSEAM_INGEST__RECORD_MANAGER_SCHEMA"] = f"rm_{uuid.uuid4().hex[:8]}"
    return env


def test_sigkill_and_resume_memory_store(tmp_path: Path, base_env: dict[str, str], local_embedder: LocalEmbedder,
                                         ray_address: str) -> None:
    rows, report, killed = _kill_and_resume(base_env, tmp_path, local_embedder, ray_address)
    with MemoryStore(tmp_path / "data" / "memory") as store:
        check_store(store, COLLECTION, rows, local_embedder)
    _assert_outcome(rows, report, killed)


def test_sigkill_and_resume_pgvector(tmp_path: Path, base_env: dict[str, str], local_embedder: LocalEmbedder,
                                     pg_server: Any, ray_address: str) -> None:
    from vectorseam_pgvector import create_store

    options = {"dsn": pg_server.dsn(), "schema": f"raykill_{uuid.uuid4().hex[:8]}", "retries": 1}
    env = base_env | {"VECTORSEAM_STORE__NAME": "pgvector", "VECTORSEAM_STORE__OPTIONS": json.dumps(options)}
    env.pop("VECTORSEAM_INGEST__RECORD_MANAGER_DSN")  # the default: the pgvector store's own database
    rows, report, killed = _kill_and_resume(env, tmp_path, local_embedder, ray_address)
    store = create_store(**options)
    try:
        check_store(store, COLLECTION, rows, local_embedder)
    finally:
        store.close()
    _assert_outcome(rows, report, killed)


# -- congruence with the local job --------------------------------------------------------------------

def _corpus(directory: Path) -> list[Path]:
    """Three files: short rows, texts long enough to be split into chunks, and broken rows."""
    rows = make_rows(60)
    long_texts = [" ".join(f"sentence {j} of the long report {i} about rivers and bridges." for j in range(40))
                  for i in range(3)]
    rows += [{"id": f"long-{i}", "text": t, "group": "long", "rank": i} for i, t in enumerate(long_texts)]
    files = []
    for part in range(3):
        path = write_jsonl(directory / f"part-{part}.jsonl", rows[part::3])
        files.append(path)
    with open(files[1], "a", encoding="utf-8") as fh:
        fh.write('{"id": "broken", "text": \n')  # broken JSON: a reject at its line
        fh.write('{"id": "empty", "text": "   "}\n')  # an empty text: a reject naming its document
    return files


def _records(store: VectorStore, collection: str) -> dict[str, Any]:
    return {r.id: r for page in store.scan(collection, batch_size=100) for r in page}


def test_ray_and_local_produce_the_same_records(tmp_path: Path, isolated_env: Path, pg_server: Any,
                                                ray_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from vectorseam.client import VectorSeam

    monkeypatch.setenv("VECTORSEAM_INGEST__RECORD_MANAGER_DSN", pg_server.dsn())
    monkeypatch.setenv("VECTORSEAM_INGEST__RECORD_MANAGER_SCHEMA", f"rm_{uuid.uuid4().hex[:8]}")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = _corpus(corpus)
    local_rejects: list[str] = []
    with VectorSeam() as vs:
        for i, path in enumerate(files):
            rejects_file = tmp_path / f"local-rejects-{i}.txt"
            vs.ingest_file(path, "local", options=IngestOptions(use_cache=False, rejects_path=rejects_file))
            local_rejects += rejects_file.read_text().splitlines()
        ray_rejects_file = tmp_path / "ray-rejects.txt"
        report = vs.ingest_file(str(corpus / "part-*.jsonl"), "viaray", options=IngestOptions(
            engine="ray", use_cache=False, rejects_path=ray_rejects_file))
        local, viaray = _records(vs.store, "local"), _records(vs.store, "viaray")
    assert report.rejected == 2 and report.added == len({r.split("#")[0] for r in viaray})
    assert any("#" in rid for rid in viaray), "the long texts were not split into chunks"
    assert sorted(viaray) == sorted(local)
    for rid, rec in local.items():
        other = viaray[rid]
        assert (other.text, other.metadata) == (rec.text, rec.metadata), rid
        np.testing.assert_allclose(other.vector, rec.vector, atol=1e-5, err_msg=rid)
    assert sorted(ray_rejects_file.read_text().splitlines()) == sorted(local_rejects)
    assert any(line.startswith(f"{files[1]}:") for line in local_rejects)  # file:line

    # Another source into the same collection; then the CLI (a driver process of its own, joining the
    # cluster) with --cleanup full of the glob after one of its files lost rows: those records go, the
    # other source's stay.
    with VectorSeam() as vs:
        other = vs.ingest_file(write_jsonl(tmp_path / "other.jsonl", make_rows(5, start=500)), "viaray",
                               options=IngestOptions(engine="ray"))
    assert other.added == 5
    write_jsonl(files[0], make_rows(60)[0::3][:5])  # part-0 keeps 5 of its 21 rows
    result = subprocess.run([sys.executable, "-m", "vectorseam.cli", "ingest", str(corpus / "part-*.jsonl"),
                             "--collection", "viaray", "--engine", "ray", "--ray-address", ray_address,
                             "--cleanup", "full", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deleted 16" in result.stdout and "rejected 2" in result.stdout, result.stdout
    with VectorSeam() as vs:
        after = {rid.split("#")[0] for rid in _records(vs.store, "viaray")}
    gone = {r["id"] for r in make_rows(60)[0::3][5:]} | {"long-0"}
    added = {r["id"] for r in make_rows(5, start=500)}
    assert after == {rid.split("#")[0] for rid in viaray} - gone | added


# -- the PostgreSQL record manager's locks and claims (no Ray needed) ----------------------------------

def test_record_manager_claims_lock_and_fence(pg_server: Any) -> None:
    from vectorseam.errors import VectorseamError
    from vectorseam.ingest.ray_record_manager import PgRecordManager, SupersededError
    from vectorseam.ingest.record_manager import Mark

    schema = f"rm_{uuid.uuid4().hex[:8]}"
    driver = PgRecordManager(pg_server.dsn(), "memory:/x", "c", schema)
    other_driver = PgRecordManager(pg_server.dsn(), "memory:/x", "c", schema)
    worker = PgRecordManager(pg_server.dsn(), "memory:/x", "c", schema)
    try:
        driver.create_schema()
        assert driver.try_job_lock()
        assert not other_driver.try_job_lock(), "a second job on the same collection must be refused"
        driver.begin_run("run1")
        with worker.fenced("run1"):
            before, clashes = worker.claim("run1", "a.jsonl", ["d1", "d2"])
            assert before == {} and clashes == {}
            worker.mark_pending([Mark("d1", "a.jsonl", "h1", ["d1"])])
            worker.mark_done([Mark("d1", "a.jsonl", "h1", ["d1"])])
            # the same id from another source of the same run is refused; a retried claim is not
            assert worker.claim("run1", "b.jsonl", ["d1", "d3"])[1] == {"d1": "a.jsonl"}
            assert worker.claim("run1", "a.jsonl", ["d1"])[1] == {}
        # d2 was claimed but never written: absent to planning, and never listed as written
        assert set(worker.lookup(["d1", "d2"])) == {"d1"}
        assert [e.doc_id for e in worker.entries("a.jsonl")] == ["d1"]
        driver.release_job_lock()
        assert other_driver.try_job_lock()
        other_driver.begin_run("run2")  # waits for nothing: no batch of run1 is in flight
        with pytest.raises(SupersededError), worker.fenced("run1"):
            pass
        with worker.fenced("run2"):
            before, _ = worker.claim("run2", "a.jsonl", ["d1"])
        assert before["d1"].content_hash == "h1" and before["d1"].done
        assert [e.doc_id for e in worker.unseen("a.jsonl", "run2")] == []
        assert [e.doc_id for e in worker.unseen("a.jsonl", "run3")] == ["d1"]
        # a glob's files are keyed <glob>|<file>: its cleanup scope finds them, and only them
        with worker.fenced("run2"):
            worker.claim("run2", "glob:/c/*.jsonl|/c/x.jsonl", ["g1"])
            worker.mark_done([Mark("g1", "glob:/c/*.jsonl|/c/x.jsonl", "h", ["g1"])])
        assert worker.unseen_sources("glob:/c/*.jsonl", "run3") == ["glob:/c/*.jsonl|/c/x.jsonl"]
        assert worker.unseen_sources("glob:/c/*.jsonl", "run2") == []
        assert worker.unseen_sources("a.jsonl", "run3") == ["a.jsonl"]
        assert isinstance(SupersededError("x"), VectorseamError)
    finally:
        for rm in (driver, other_driver, worker):
            rm.close()
