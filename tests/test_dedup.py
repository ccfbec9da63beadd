"""Near-duplicate detection on real reviews (exact repeats and near-identical ones), its outputs,
its bad input, and the ingest-time duplicate screen."""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.analysis_support import (
    combined,
    embed,
    fine_food_collection,
    fine_food_rows,
    memory_store_at,
)
from vectorseam.analysis.dedup import find_duplicates, similar_pairs
from vectorseam.analysis.unionfind import UnionFind
from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.ingest.dedup_screen import DUPLICATE_FIELD, DuplicateScreen
from vectorseam.ingest.sources import Document
from vectorseam.similarity import unit_rows_f32 as unit_rows
from vectorseam.stores.memory import MemoryStore


def test_fine_food_repeat_figures_depend_on_the_text_field() -> None:
    """The data README's "103 texts, 238 extra rows" holds for the Cookbook's combined text; the Text
    column alone has one more extra row (one review text appears under two different summaries)."""
    rows = fine_food_rows()
    for text_of, extra in ((combined, 238), (lambda r: r["Text"], 239)):
        counts = Counter(text_of(r) for r in rows)
        assert sum(1 for n in counts.values() if n > 1) == 103
        assert sum(n - 1 for n in counts.values() if n > 1) == extra


@pytest.fixture(scope="module")
def reviews(local_embedder):  # type: ignore[no-untyped-def]
    store = MemoryStore()
    rows = fine_food_collection(store, "reviews", local_embedder)
    return store, rows


def _expected_groups(rows: list[dict[str, str]]) -> list[set[str]]:
    by_text: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_text[combined(r)].add(f"r{r['']}")
    return [g for g in by_text.values() if len(g) > 1]


def test_every_exact_repeat_is_found_with_a_score_of_one(reviews) -> None:  # type: ignore[no-untyped-def]
    store, rows = reviews
    expected = _expected_groups(rows)
    assert len(expected) == 12
    result = find_duplicates(store, "reviews", threshold=0.99, method="exact")
    found = {frozenset((p.a, p.b)): p.score for p in result.pairs}
    for group in expected:
        for a, b in itertools.combinations(sorted(group), 2):
            assert found[frozenset((a, b))] == pytest.approx(1.0, abs=1e-4)
    groups = [set(g) for g in result.groups]
    for group in expected:  # each repeat group is (contained in) one found group
        assert any(group <= g for g in groups)
    assert result.records == 120


def test_near_identical_pairs_are_reported_apart_from_identical_ones(reviews) -> None:  # type: ignore[no-untyped-def]
    store, rows = reviews
    result = find_duplicates(store, "reviews", threshold=0.9, method="exact")
    table = result.pair_rows()
    identical = [r for r in table if r["identical_text"]]
    near = [r for r in table if not r["identical_text"]]
    assert len(identical) == sum(len(g) * (len(g) - 1) // 2 for g in _expected_groups(rows))
    assert all(0.9 <= float(str(r["score"])) < 0.9999 for r in near)
    assert all(r["text_a"] != r["text_b"] for r in near)


def test_blockwise_products_find_the_same_pairs_as_one_block(reviews, local_embedder) -> None:  # type: ignore[no-untyped-def]
    _, rows = reviews
    x = unit_rows(embed("fine_food", [combined(r) for r in rows], local_embedder))
    whole = {(i, j) for i, j, _ in similar_pairs(x, 0.6, block=10_000)}
    tiles = {(i, j) for i, j, _ in similar_pairs(x, 0.6, block=7)}
    brute = {(i, j) for i in range(len(x)) for j in range(i + 1, len(x)) if x[i] @ x[j] >= 0.6}
    assert whole == tiles == brute
    assert len(brute) > sum(len(g) * (len(g) - 1) // 2 for g in _expected_groups(rows))


def test_the_store_self_join_agrees_with_the_exact_method(reviews) -> None:  # type: ignore[no-untyped-def]
    store, _ = reviews
    exact = find_duplicates(store, "reviews", threshold=0.95, method="exact")
    approx = find_duplicates(store, "reviews", threshold=0.95, method="approximate", neighbours=10)
    assert {frozenset(g) for g in approx.groups} == {frozenset(g) for g in exact.groups}
    assert {(p.a, p.b) for p in approx.pairs} == {(p.a, p.b) for p in exact.pairs}


def test_pairs_are_written_as_csv_and_json(reviews, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, _ = reviews
    result = find_duplicates(store, "reviews", threshold=0.99)
    with open(result.write(tmp_path / "pairs.csv"), encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(result.pairs) > 0
    assert {"group", "id_a", "id_b", "score", "text_a", "text_b"} <= set(rows[0])
    payload = json.loads(result.write(tmp_path / "pairs.json").read_text(encoding="utf-8"))
    assert payload["group_count"] == len(result.groups)
    assert payload["extra_records"] == sum(len(g) - 1 for g in result.groups)


@pytest.mark.parametrize("bad", [1.5, -1.01, float("nan"), "0.9", True])
def test_a_threshold_outside_minus_one_to_one_is_refused(reviews, bad) -> None:  # type: ignore[no-untyped-def]
    store, _ = reviews
    with pytest.raises(ValidationError, match="threshold"):
        find_duplicates(store, "reviews", threshold=bad)


def test_too_low_a_threshold_fails_instead_of_exhausting_memory(reviews) -> None:  # type: ignore[no-untyped-def]
    store, _ = reviews
    with pytest.raises(ValidationError, match="raise it"):
        find_duplicates(store, "reviews", threshold=-1.0, method="exact", max_pairs=500)


def test_an_unknown_collection_is_named(reviews) -> None:  # type: ignore[no-untyped-def]
    store, _ = reviews
    with pytest.raises(CollectionNotFoundError, match="nope"):
        find_duplicates(store, "nope")


def test_union_find_groups_transitively() -> None:
    uf = UnionFind()
    for a, b in [("a", "b"), ("c", "d"), ("b", "c"), ("x", "y")]:
        uf.union(a, b)
    uf.find("lonely")
    assert uf.groups() == [["a", "b", "c", "d"], ["x", "y"]]


@pytest.mark.parametrize("mode", ["tag", "drop"])
def test_duplicates_are_tagged_or_dropped_as_they_arrive(local_embedder, mode) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore()
    from tests.analysis_support import fill_collection

    old = ["The coffee arrived stale and bitter.", "My dog loves these chicken treats."]
    fill_collection(store, "inbox", local_embedder, ["old1", "old2"], old, [{}, {}])
    new_texts = ["My dog loves these chicken treats.",  # repeats a stored record
                 "Great tea, smooth and fragrant.",
                 "Great tea, smooth and fragrant.",  # repeats an earlier one of its batch
                 "The old1 text is stored again under its own id."]
    docs = [Document(f"new{i}", t, {}, f"batch.csv:{i + 2}") for i, t in enumerate(new_texts)]
    docs[3] = Document("old1", old[0], {}, "batch.csv:5")  # re-ingesting an id is not a duplicate of itself
    vectors = local_embedder.embed_documents([d.text for d in docs])
    screen = DuplicateScreen(store, "inbox", threshold=0.98, mode=mode)
    kept, kept_vectors = screen(docs, vectors)
    assert {(n.id, n.duplicate_of) for n in screen.notes} == {("new0", "old2"), ("new2", "new1")}
    assert all(n.score > 0.98 and n.action == mode for n in screen.notes)
    assert "batch.csv:2" in str(screen.notes[0]) or "batch.csv:2" in str(screen.notes[1])
    if mode == "drop":
        assert [d.id for d in kept] == ["new1", "old1"]
    else:
        assert [d.id for d in kept] == ["new0", "new1", "new2", "old1"]
        assert kept[0].metadata[DUPLICATE_FIELD] == "old2"
        assert kept[2].metadata[DUPLICATE_FIELD] == "new1"
        assert DUPLICATE_FIELD not in kept[1].metadata and DUPLICATE_FIELD not in kept[3].metadata
    assert len(kept_vectors) == len(kept)
    np.testing.assert_array_equal(kept_vectors[-1], vectors[3])


def test_the_screen_accepts_a_collection_that_does_not_exist_yet(local_embedder) -> None:  # type: ignore[no-untyped-def]
    screen = DuplicateScreen(MemoryStore(), "fresh", threshold=0.99, mode="drop")
    docs = [Document("a", "same text"), Document("b", "same text")]
    kept, _ = screen(docs, local_embedder.embed_documents(["same text", "same text"]))
    assert [d.id for d in kept] == ["a"]
    with pytest.raises(ValidationError, match="threshold"):
        DuplicateScreen(MemoryStore(), "fresh", threshold=2.0)


def test_cli_dedup_on_the_embedded_default(reviews, isolated_env: Path) -> None:  # type: ignore[no-untyped-def]
    from vectorseam.cli import _register, app

    _register()
    source, rows = reviews
    store = memory_store_at(isolated_env / "data")
    info = next(i for i in source.collections() if i.name == "reviews")
    from vectorseam.types import CollectionSpec

    store.ensure_collection(CollectionSpec("reviews", info.dimension, info.metric, info.metadata))
    store.upsert("reviews", [r for batch in source.scan("reviews") for r in batch])
    store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["dedup", "reviews", "--threshold", "0.99", "-o", "pairs.json"])
    assert result.exit_code == 0, result.output
    assert "120 records" in result.output
    payload = json.loads((isolated_env / "pairs.json").read_text(encoding="utf-8"))
    assert {frozenset(g) for g in payload["groups"]} >= {frozenset(g) for g in _expected_groups(rows)}
    bad = runner.invoke(app, ["dedup", "reviews", "--threshold", "1.5"])
    assert bad.exit_code != 0
    assert "outside [-1, 1]" in str(bad.exception) + bad.output
