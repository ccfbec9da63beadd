"""Near-duplicate screening in the ingest job: tag or drop repeats as they arrive, across batches, and
keep re-runs incremental (no flip-flopping tags, no "restoring" dropped rows). Real model, memory store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_ingest_helpers import write_jsonl
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.errors import ValidationError
from vectorseam.ingest.job import IngestOptions, IngestReport, JobState, ingest_file
from vectorseam.ingest.sources import RowSpec
from vectorseam.retrying import RetryPolicy
from vectorseam.stores.memory import MemoryStore

TEXTS = [
    "Fresh basil makes the tomato sauce taste bright.",
    "The train to Lisbon leaves at seven every morning.",
    "Our router drops the connection when the microwave runs.",
    "Fresh basil makes the tomato sauce taste bright.",  # exact repeat of r0, same batch
    "She planted tulips along the garden fence in autumn.",
    "Quarterly revenue grew by twelve percent this year.",
    "The violin concerto ended with a long quiet note.",
    "The train to Lisbon leaves at seven every morning.",  # exact repeat of r1, a later batch
    "Penguins huddle together to survive the polar winter.",
    "Our router keeps dropping the connection whenever the microwave runs.",  # near r2 (cosine ~0.92)
]
REPEATS = {"r3": "r0", "r7": "r1", "r9": "r2"}
THRESHOLD = 0.9  # the near-repeat scores ~0.92; every other pair of TEXTS is under 0.2


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "src.jsonl", [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS)])


@pytest.fixture
def state(tmp_path: Path) -> JobState:
    return JobState.under(tmp_path / "data", "memory:test")


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    return MemoryStore(tmp_path / "data" / "memory")


def run(store: MemoryStore, emb: LocalEmbedder, path: Path, state: JobState, **options: Any) -> IngestReport:
    options.setdefault("retry", RetryPolicy(attempts=2, backoff=0.01))
    options.setdefault("batch_size", 4)  # repeats inside one batch and across batches
    options.setdefault("duplicate_threshold", THRESHOLD)
    return ingest_file(store, emb, "docs", path, RowSpec(), state, IngestOptions(**options))


def stored(store: MemoryStore) -> dict[str, dict[str, Any]]:
    return {r.id: r.metadata for page in store.scan("docs") for r in page}


def test_tag_mode_tags_repeats_and_reruns_stay_unchanged(
    src: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    first = run(store, local_embedder, src, state, duplicates="tag")
    assert (first.added, first.duplicates, first.dropped) == (10, 3, 0)
    meta = stored(store)
    assert {k: m["duplicate_of"] for k, m in meta.items() if "duplicate_of" in m} == REPEATS
    assert meta["r3"]["duplicate_score"] == pytest.approx(1.0, abs=1e-4)
    assert THRESHOLD <= meta["r9"]["duplicate_score"] < 0.99
    assert {n.id for n in first.duplicate_notes} == set(REPEATS)

    for verify in (False, True):  # --verify must not mistake the tags for drift and rewrite them
        again = run(store, local_embedder, src, state, duplicates="tag", verify=verify)
        assert (again.unchanged, again.added, again.updated, again.restored) == (10, 0, 0, 0)
        assert (again.chunks_written, again.embedded, again.duplicates) == (0, 0, 0)
    assert stored(store) == meta


def test_drop_mode_drops_reports_and_never_restores(
    tmp_path: Path, src: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    rejects = tmp_path / "rejects.txt"
    first = run(store, local_embedder, src, state, duplicates="drop", rejects_path=rejects)
    assert (first.added, first.dropped, first.duplicates, first.processed) == (7, 3, 3, 10)
    assert set(stored(store)) == {f"r{i}" for i in range(10)} - set(REPEATS)
    assert not any("duplicate_of" in m for m in stored(store).values())
    lines = rejects.read_text().splitlines()
    assert len(lines) == 3
    for doc_id, original in REPEATS.items():
        line_no = int(doc_id[1:]) + 1
        assert any(line.startswith(f"{src}:{line_no}: dropped '{doc_id}' as a duplicate of '{original}'")
                   for line in lines), lines
    assert sorted(str(n) for n in first.duplicate_notes) == sorted(lines)

    for verify in (False, True):
        again = run(store, local_embedder, src, state, duplicates="drop", rejects_path=rejects, verify=verify)
        assert (again.unchanged, again.added, again.restored, again.dropped, again.duplicates) == (10, 0, 0, 0, 0)
        assert (again.chunks_written, again.embedded) == (0, 0)
    assert len(stored(store)) == 7

    # A dropped row whose text changes into something new is written as an update.
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS)]
    rows[7]["text"] = "Lighthouses guided ships along the rocky northern coast."
    write_jsonl(src, rows)
    changed = run(store, local_embedder, src, state, duplicates="drop", rejects_path=rejects)
    assert (changed.updated, changed.unchanged, changed.dropped) == (1, 9, 0)
    assert "r7" in stored(store)


def test_drop_mode_removes_the_old_record_of_a_row_that_became_a_duplicate(
    src: Path, store: MemoryStore, state: JobState, local_embedder: LocalEmbedder
) -> None:
    run(store, local_embedder, src, state)  # duplicates off: all 10 written
    assert len(stored(store)) == 10
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS)]
    rows[5]["text"] = TEXTS[8]  # r5 now repeats r8
    write_jsonl(src, rows)
    report = run(store, local_embedder, src, state, duplicates="drop")
    assert (report.updated, report.dropped, report.unchanged, report.chunks_deleted) == (0, 1, 9, 1)
    assert "r5" not in stored(store)
    again = run(store, local_embedder, src, state, duplicates="drop")
    assert (again.unchanged, again.restored, again.chunks_written) == (10, 0, 0)


@pytest.mark.parametrize("threshold", [1.5, -1.01, float("nan")])
def test_threshold_outside_cosine_range_is_a_clear_error(threshold: float) -> None:
    with pytest.raises(ValidationError, match=r"duplicate threshold.*\[-1, 1\]"):
        IngestOptions(duplicates="tag", duplicate_threshold=threshold)


def test_unknown_duplicates_mode_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="duplicates must be 'off', 'tag' or 'drop'"):
        IngestOptions(duplicates="keep")  # type: ignore[arg-type]
