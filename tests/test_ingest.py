"""The ingest job in process: incremental re-runs, repair of records missing from the store, --verify,
the embedding cache, rejects, chunking, retries and the embedder guard. Real model, real memory store."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_ingest_helpers import expected_records, make_rows, write_jsonl
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.errors import EmbedderMismatchError, StoreUnavailableError, ValidationError, VectorseamError
from vectorseam.ingest.job import IngestOptions, IngestReport, JobState, ingest_file
from vectorseam.ingest.sources import RowSpec
from vectorseam.retrying import RetryPolicy
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01)


def run(store: Any, emb: LocalEmbedder, path: Path, state: JobState, **options: Any) -> IngestReport:
    options.setdefault("retry", FAST_RETRY)
    return ingest_file(store, emb, "docs", path, RowSpec(), state, IngestOptions(**options))


def contents(store: MemoryStore, collection: str = "docs") -> dict[str, tuple[str, dict[str, Any]]]:
    return {r.id: (r.text, r.metadata) for page in store.scan(collection) for r in page}


@pytest.fixture
def state(tmp_path: Path) -> JobState:
    return JobState.under(tmp_path / "data", "memory:test")


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    return MemoryStore(tmp_path / "data" / "memory")


def test_rerun_is_incremental_and_cleanup_full_deletes_vanished_rows(
    tmp_path: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    rows = make_rows(12)
    src = write_jsonl(tmp_path / "src.jsonl", rows)
    first = run(store, local_embedder, src, state)
    assert (first.added, first.updated, first.unchanged, first.deleted, first.rejected) == (12, 0, 0, 0, 0)
    assert contents(store) == expected_records(rows)

    again = run(store, local_embedder, src, state)
    assert (again.added, again.updated, again.unchanged, again.embedded, again.chunks_written) == (0, 0, 12, 0, 0)

    rows2 = make_rows(2, start=0, variant=" v2") + rows[2:10] + make_rows(1, start=50)  # 2 changed, 2 gone, 1 new
    write_jsonl(src, rows2)
    kept = run(store, local_embedder, src, state)  # without cleanup, vanished rows stay
    assert (kept.added, kept.updated, kept.unchanged, kept.deleted) == (1, 2, 8, 0)
    assert set(contents(store)) == {r["id"] for r in rows2} | {"doc-0010", "doc-0011"}
    full = run(store, local_embedder, src, state, cleanup="full")
    assert (full.added, full.updated, full.unchanged, full.deleted) == (0, 0, 11, 2)
    assert contents(store) == expected_records(rows2)
    vec = store.fetch("docs", ["doc-0000"])[0].vector
    want = local_embedder.embed_documents([rows2[0]["text"]])[0]
    np.testing.assert_allclose(vec, want, atol=1e-5)


def test_records_missing_from_the_store_are_restored_and_verify_reconciles(
    tmp_path: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    rows = make_rows(10)
    src = write_jsonl(tmp_path / "src.jsonl", rows)
    run(store, local_embedder, src, state)
    # Someone deletes records behind the record manager's back: the next run notices and restores them.
    store.delete("docs", ids=["doc-0001", "doc-0005", "doc-0009"])
    report = run(store, local_embedder, src, state)
    assert (report.restored, report.unchanged, report.embedded) == (3, 7, 0)  # vectors from the cache
    assert contents(store) == expected_records(rows)
    # A record edited in the store and one nobody ingested: --verify finds both.
    vec = store.fetch("docs", ["doc-0002"])[0].vector
    store.upsert("docs", [Record("doc-0002", vec, "tampered", {}), Record("stray", vec, "stray", {})])
    plain = run(store, local_embedder, src, state)
    assert plain.restored == 0  # a plain run only checks presence
    checked = run(store, local_embedder, src, state, verify=True, cleanup="full")
    assert (checked.restored, checked.untracked) == (1, 1)
    # the tampered record is repaired; the stray one, which no load job wrote, is counted and left alone
    assert contents(store) == {**expected_records(rows), "stray": ("stray", {})}


def test_embedding_cache_is_shared_across_collections_and_runs(
    tmp_path: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    src = write_jsonl(tmp_path / "src.jsonl", make_rows(6))
    first = ingest_file(store, local_embedder, "one", src, RowSpec(), state)
    second = ingest_file(store, local_embedder, "two", src, RowSpec(), state)
    assert first.embedded + first.cached == 6
    assert (second.embedded, second.cached, second.added) == (0, 6, 6)


def test_bad_rows_go_to_the_rejects_file_and_the_job_goes_on(
    tmp_path: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    src = tmp_path / "bad.jsonl"
    huge = "x" * (10 * 1024 * 1024)
    src.write_bytes(b"\n".join([
        json.dumps({"id": "a", "text": "a fine row about tea"}).encode(),
        b'{"id": "b", "text": "broken',
        json.dumps({"id": "c", "title": "no text field"}).encode(),
        b'{"id": "d", "text": "bad \xff bytes"}',
        json.dumps({"id": "e", "text": "   "}).encode(),
        json.dumps({"id": "f", "text": huge}).encode(),
        json.dumps({"id": "g", "text": "another fine row about owls"}).encode(),
    ]) + b"\n")
    rejects = tmp_path / "rejects.txt"
    report = run(store, local_embedder, src, state, rejects_path=rejects)
    assert (report.added, report.rejected) == (2, 5)
    lines = rejects.read_text().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"{src}:{n}" for n in (2, 3, 4, 5, 6)]
    for line, reason in zip(lines, ["broken JSON", "missing text field 'text'", "undecodable bytes",
                                    "text is empty", "characters; the limit is"], strict=True):
        assert reason in line
    assert set(contents(store)) == {"a", "g"}
    with pytest.raises(ValidationError, match="--strict") as err:
        run(store, local_embedder, src, state, strict=True, cleanup="full")
    assert f"{src}:2" in str(err.value)


def test_long_texts_are_chunked_by_tokens_with_overlap_and_rechunked_on_change(
    tmp_path: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    words = [f"word{i}" for i in range(400)]
    src = write_jsonl(tmp_path / "src.jsonl", [{"id": "long", "text": " ".join(words), "kind": "essay"}])
    report = run(store, local_embedder, src, state, chunk_tokens=120, chunk_overlap=16)
    records = sorted(store.scan("docs"), key=len)[0]
    ids = sorted(r.id for r in records)
    assert report.added == 1 and len(ids) >= 4 and all(i.startswith("long#") for i in ids)
    tok = local_embedder._load().tokenizer
    by_chunk = sorted(records, key=lambda r: int(r.metadata["chunk"]))  # type: ignore[arg-type]
    for pos, rec in enumerate(by_chunk):
        assert rec.metadata == {"kind": "essay", "source_id": "long", "chunk": pos, "chunks": len(ids)}
        assert len(tok(rec.text, add_special_tokens=False)["input_ids"]) <= 120
    for left, right in itertools.pairwise(by_chunk):  # neighbours overlap, words stay whole
        assert left.text.split()[-1] in right.text.split()[:12]
    assert " ".join(dict.fromkeys(w for r in by_chunk for w in r.text.split())) == " ".join(words)
    write_jsonl(src, [{"id": "long", "text": "now a short text", "kind": "essay"}])
    report = run(store, local_embedder, src, state, chunk_tokens=120, chunk_overlap=16)
    assert report.updated == 1 and report.chunks_deleted == len(ids)
    assert contents(store) == {"long": ("now a short text", {"kind": "essay"})}


class FlakyStore:
    """A real memory store behind a link that fails: ``down`` calls raise before reaching it."""

    def __init__(self, inner: MemoryStore, fail_upserts: int = 0, always: bool = False) -> None:
        self.inner = inner
        self.fail_upserts = fail_upserts
        self.always = always
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        if self.always or self.failures < self.fail_upserts:
            self.failures += 1
            raise StoreUnavailableError("connection refused (simulated outage)")
        return self.inner.upsert(collection, records)

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        return self.inner.fetch(collection, ids, include_vectors)


def test_transient_store_errors_are_retried_and_a_dead_store_stops_the_job_resumably(
    tmp_path: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    rows = make_rows(9)
    src = write_jsonl(tmp_path / "src.jsonl", rows)
    flaky = FlakyStore(store, fail_upserts=2)
    report = run(flaky, local_embedder, src, state, batch_size=3, retry=RetryPolicy(attempts=3, backoff=0.01))
    assert report.added == 9 and flaky.failures == 2
    write_jsonl(src, make_rows(9, variant=" again"))
    with pytest.raises(StoreUnavailableError, match="failed 3 times.*running the same command again resumes"):
        run(FlakyStore(store, always=True), local_embedder, src, state, batch_size=3)
    report = run(store, local_embedder, src, state, batch_size=3)
    assert report.updated == 9
    assert contents(store) == expected_records(make_rows(9, variant=" again"))


def test_another_embedder_is_refused_with_the_way_out(
    tmp_path: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    store.ensure_collection(CollectionSpec("docs", 384, "cosine", {"embedder": "openai:text-embedding-3-small:384"}))
    src = write_jsonl(tmp_path / "src.jsonl", make_rows(2))
    with pytest.raises(EmbedderMismatchError, match="vectorseam reindex docs --embedder"):
        run(store, local_embedder, src, state)


def test_one_job_per_collection_at_a_time(
    tmp_path: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    src = write_jsonl(tmp_path / "src.jsonl", make_rows(2))
    with state.lock("docs"), \
            pytest.raises(VectorseamError, match="another job .* is writing to collection 'docs'"):
        run(store, local_embedder, src, state)
    assert run(store, local_embedder, src, state).added == 2
