"""Zero-shot classification of real reviews by label descriptions (the Cookbook's method)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.analysis_support import fine_food_collection, memory_store_at
from vectorseam.analysis.classify import LabelSpec, classify_collection
from vectorseam.embedding import collection_spec
from vectorseam.errors import EmbedderMismatchError, ValidationError
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

DESCRIPTIVE = [LabelSpec("negative", "An Amazon review with a negative sentiment."),
               LabelSpec("positive", "An Amazon review with a positive sentiment.")]


@pytest.fixture(scope="module")
def reviews(local_embedder):  # type: ignore[no-untyped-def]
    store = MemoryStore()
    rows = fine_food_collection(store, "reviews", local_embedder)
    return store, rows


def _accuracy(result, rows) -> float:  # type: ignore[no-untyped-def]
    gold = {f"r{r['']}": ("negative" if int(r["Score"]) <= 2 else "positive") for r in rows if r["Score"] != "3"}
    pairs = [(gold[i], p) for i, p in zip(result.ids, result.predicted, strict=True) if i in gold]
    return sum(g == p for g, p in pairs) / len(pairs)


def test_descriptive_labels_classify_sentiment_well(reviews, local_embedder) -> None:  # type: ignore[no-untyped-def]
    store, rows = reviews
    result = classify_collection(store, local_embedder, "reviews", DESCRIPTIVE, filter={"Score": {"$ne": 3}})
    assert len(result.ids) == sum(1 for r in rows if r["Score"] != "3")
    assert _accuracy(result, rows) >= 0.8
    assert result.scores.shape == (len(result.ids), 2)
    assert sum(result.counts().values()) == len(result.ids)


def test_labels_are_written_to_metadata(reviews, local_embedder) -> None:  # type: ignore[no-untyped-def]
    store, _ = reviews
    result = classify_collection(store, local_embedder, "reviews", DESCRIPTIVE, write_field="sentiment")
    stored = {r.id: r.metadata for batch in store.scan("reviews") for r in batch}
    assert {i: stored[i]["sentiment"] for i in result.ids} == dict(zip(result.ids, result.predicted, strict=True))
    assert all("Score" in m for m in stored.values())


def test_label_parsing() -> None:
    assert LabelSpec.parse('pos="A happy review"') == LabelSpec("pos", "A happy review")
    assert LabelSpec.parse("neg") == LabelSpec("neg", "neg")
    for bad, message in (("=x", "no name"), ("pos=", "empty description")):
        with pytest.raises(ValidationError, match=message):
            LabelSpec.parse(bad)


def test_bad_label_sets_are_refused(reviews, local_embedder) -> None:  # type: ignore[no-untyped-def]
    store, _ = reviews
    with pytest.raises(ValidationError, match="at least two labels"):
        classify_collection(store, local_embedder, "reviews", [LabelSpec("only", "only")])
    with pytest.raises(ValidationError, match="repeated: a"):
        classify_collection(store, local_embedder, "reviews", [LabelSpec("a", "x"), LabelSpec("a", "y")])


def test_a_collection_from_another_embedder_is_refused(local_embedder) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore()
    store.ensure_collection(CollectionSpec("other", 384, "cosine", {"embedder": "openai:some-model:384"}))
    store.upsert("other", [Record("x", [1.0] + [0.0] * 383, "x")])
    with pytest.raises(EmbedderMismatchError, match="openai:some-model"):
        classify_collection(store, local_embedder, "other", DESCRIPTIVE)
    empty = MemoryStore()
    empty.ensure_collection(collection_spec("empty", local_embedder))
    with pytest.raises(ValidationError, match="no records"):
        classify_collection(empty, local_embedder, "empty", DESCRIPTIVE)


def test_cli_classify_on_the_embedded_default(reviews, isolated_env: Path) -> None:  # type: ignore[no-untyped-def]
    from vectorseam.cli import _register, app

    _register()
    source, rows = reviews
    store = memory_store_at(isolated_env / "data")
    info = next(i for i in source.collections() if i.name == "reviews")
    store.ensure_collection(CollectionSpec("reviews", info.dimension, info.metric, info.metadata))
    store.upsert("reviews", [r for batch in source.scan("reviews") for r in batch])
    store.close()
    runner = CliRunner()
    out = runner.invoke(app, ["classify", "reviews", "--label", 'negative="An Amazon review with a negative sentiment."',
                              "--label", 'positive="An Amazon review with a positive sentiment."', "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert len(payload["records"]) == len(rows)
    assert set(payload["counts"]) == {"negative", "positive"}
    bad = runner.invoke(app, ["classify", "reviews", "--label", "lonely"])
    assert bad.exit_code != 0 and "at least two labels" in str(bad.exception) + bad.output
