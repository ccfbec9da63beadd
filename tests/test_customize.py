"""Customized embeddings: pairs files, reproducible training, the wrapped embedder, applying a matrix to
a collection and querying it through the configuration, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.analysis_support import embed, fill_collection, memory_store_at
from tests.conftest import shared_data
from vectorseam.analysis.customize import TrainingOptions, apply_matrix, train_matrix
from vectorseam.analysis.pairs import Pair, complete_negatives, read_pairs
from vectorseam.embedders.custom_matrix import CustomizedEmbedder, CustomMatrix
from vectorseam.errors import DimensionMismatchError, EmbedderMismatchError, ValidationError
from vectorseam.stores.memory import MemoryStore


@pytest.fixture(scope="module")
def snli_pairs() -> list[Pair]:
    with open(shared_data("cookbook/snli_1.0_train_2k.csv"), encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["gold_label"] == "entailment"][:80]
    return [Pair(r["sentence1"].strip(), r["sentence2"].strip(), 1) for r in rows]


@pytest.fixture(scope="module")
def embed_fn(local_embedder, snli_pairs):  # type: ignore[no-untyped-def]
    texts = sorted({p.text_1 for p in snli_pairs} | {p.text_2 for p in snli_pairs})
    table = dict(zip(texts, embed("snli", texts, local_embedder), strict=True))
    return lambda batch: np.stack([table[t] for t in batch])


def _options(seed: int = 7) -> TrainingOptions:
    return TrainingOptions(seed=seed, epochs=5, test_fraction=0.5)


def test_training_is_reproducible_from_a_seed(snli_pairs, embed_fn, local_embedder) -> None:  # type: ignore[no-untyped-def]
    a, report = train_matrix(snli_pairs, embed_fn, local_embedder.fingerprint, _options())
    b, _ = train_matrix(snli_pairs, embed_fn, local_embedder.fingerprint, _options())
    c, _ = train_matrix(snli_pairs, embed_fn, local_embedder.fingerprint, _options(seed=8))
    assert np.array_equal(a.matrix, b.matrix) and a.digest == b.digest
    assert a.digest != c.digest
    assert report.synthesized_negatives
    assert report.train_pairs == 80 and report.train_positives == 40  # 40 positives + 40 negatives
    assert report.losses[-1] < report.losses[0]
    assert report.before_train_threshold is not None and report.after_train_threshold is not None
    assert report.after_train_threshold.n == report.test_pairs == 80
    assert report.after_train_threshold.accuracy > 0.5
    assert 0 <= report.after_train_threshold.ci95 < 0.2


def test_the_customized_embedder_maps_and_fingerprints(snli_pairs, embed_fn, local_embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    custom, _ = train_matrix(snli_pairs, embed_fn, local_embedder.fingerprint, _options())
    loaded = CustomMatrix.load(custom.save(tmp_path / "m.npz"))
    assert np.array_equal(loaded.matrix, custom.matrix) and loaded.digest == custom.digest
    wrapped = CustomizedEmbedder(local_embedder, loaded)
    assert wrapped.fingerprint == f"{local_embedder.fingerprint}+custom:{custom.digest}"
    assert wrapped.fingerprint.startswith("local:sentence-transformers/all-MiniLM-L6-v2:384:normalized+custom:")
    text = snli_pairs[0].text_1
    expected = local_embedder.embed_query(text) @ custom.matrix
    np.testing.assert_allclose(wrapped.embed_query(text), expected / np.linalg.norm(expected), atol=1e-5)
    assert wrapped.embed_documents([text, "another"]).shape == (2, 384)


def test_a_matrix_for_another_space_is_refused(local_embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    small = CustomMatrix(np.eye(10, dtype=np.float32), local_embedder.fingerprint)
    with pytest.raises(DimensionMismatchError, match="10-d"):
        CustomizedEmbedder(local_embedder, small)
    other = CustomMatrix(np.eye(384, dtype=np.float32), "openai:text-embedding-3-small:1536")
    with pytest.raises(EmbedderMismatchError, match="trained on"):
        CustomizedEmbedder(local_embedder, other)
    store = MemoryStore()
    fill_collection(store, "docs", local_embedder, ["a", "b"], ["red apples", "green pears"], [{}, {}])
    with pytest.raises(DimensionMismatchError, match="holds 384-d vectors"):
        apply_matrix(store, "docs", "docs_custom", CustomMatrix(np.eye(10, dtype=np.float32), local_embedder.fingerprint))
    with pytest.raises(ValidationError, match="in place"):
        apply_matrix(store, "docs", "docs", CustomMatrix(np.eye(384, dtype=np.float32), local_embedder.fingerprint))


def _write_pairs(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_bad_pairs_files_are_refused(tmp_path: Path) -> None:
    missing = _write_pairs(tmp_path / "m.csv", ["text_1", "label"], [["a", "1"]])
    with pytest.raises(ValidationError, match=r"missing column\(s\) text_2"):
        read_pairs(missing)
    weird = _write_pairs(tmp_path / "w.csv", ["text_1", "text_2", "label"], [["a", "b", "maybe"]])
    with pytest.raises(ValidationError, match="--positive"):
        read_pairs(weird)
    negatives = _write_pairs(tmp_path / "n.csv", ["text_1", "text_2", "label"], [["a", "b", "-1"], ["c", "d", "0"]])
    pairs, _ = read_pairs(negatives)
    with pytest.raises(ValidationError, match="no positive"):
        complete_negatives(pairs, 1, 0)
    lonely = _write_pairs(tmp_path / "p.csv", ["text_1", "text_2", "label"], [["a", "b", "1"]])
    pairs, _ = read_pairs(lonely)
    with pytest.raises(ValidationError, match="too few distinct texts"):
        complete_negatives(pairs, 1, 0)
    with pytest.raises(ValidationError, match="no way to make negatives"):
        complete_negatives(pairs, 0, 0)
    snli = _write_pairs(tmp_path / "s.csv", ["sentence1", "sentence2", "gold_label"],
                        [["a", "b", "entailment"], ["c", "d", "neutral"], ["e", "f", "contradiction"]])
    pairs, skipped = read_pairs(snli, "sentence1", "sentence2", "gold_label", positive="entailment",
                                negative=["contradiction"])
    assert [p.label for p in pairs] == [1, -1] and skipped == 1


def test_cli_train_apply_and_query_through_the_configuration(  # type: ignore[no-untyped-def]
    snli_pairs, embed_fn, local_embedder, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vectorseam.cli import _register, app

    _register()
    pairs_file = _write_pairs(isolated_env / "pairs.csv", ["text_1", "text_2", "label"],
                              [[p.text_1, p.text_2, "1"] for p in snli_pairs[:40]])
    texts = sorted({p.text_2 for p in snli_pairs})
    store = memory_store_at(isolated_env / "data")
    fill_collection(store, "hyp", local_embedder, [f"h{i}" for i in range(len(texts))], texts,
                    [{}] * len(texts), embed_fn(texts))
    store.close()
    runner = CliRunner()
    out = runner.invoke(app, ["customize", "train", str(pairs_file), "-o", "m.npz", "--epochs", "3",
                              "--seed", "5", "--report", "report.json"])
    assert out.exit_code == 0, out.output
    assert "accuracy before" in out.output and "synthesized" in out.output
    report = json.loads((isolated_env / "report.json").read_text())
    assert report["seed"] == 5 and len(report["losses"]) == 3
    out = runner.invoke(app, ["customize", "apply", "hyp", "--matrix", "m.npz", "--into", "hyp_custom"])
    assert out.exit_code == 0, out.output
    custom = CustomMatrix.load(isolated_env / "m.npz")
    check = memory_store_at(isolated_env / "data")
    info = {i.name: i for i in check.collections()}
    assert info["hyp_custom"].metadata["embedder"] == custom.fingerprint
    assert info["hyp_custom"].count == len(texts)
    stored = check.fetch("hyp_custom", ["h0"])[0].vector
    original = check.fetch("hyp", ["h0"])[0].vector
    check.close()
    mapped = original @ custom.matrix
    np.testing.assert_allclose(stored, mapped / np.linalg.norm(mapped), atol=1e-5)
    # Queries use the matrix once the configuration names it; the original collection is then refused.
    monkeypatch.setenv("VECTORSEAM_EMBEDDER__CUSTOM_MATRIX", str(isolated_env / "m.npz"))
    out = runner.invoke(app, ["search", texts[0], "--collection", "hyp_custom", "-k", "1", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["id"] == "h0"
    refused = runner.invoke(app, ["search", texts[0], "--collection", "hyp", "-k", "1"])
    assert refused.exit_code != 0 and "custom:" in str(refused.exception)
    bad = _write_pairs(isolated_env / "bad.csv", ["a", "b"], [["x", "y"]])
    out = runner.invoke(app, ["customize", "train", str(bad)])
    assert out.exit_code != 0 and "missing column" in str(out.exception)
