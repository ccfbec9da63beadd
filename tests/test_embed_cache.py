"""The on-disk embedding cache: keyed by (fingerprint, text), survives reopening, upgrades version 1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from vectorseam.embedders.local import LocalEmbedder
from vectorseam.ingest.embed_cache import CachingEmbedder, EmbeddingCache, text_hash


def _unit(seed: int, dim: int = 8) -> np.ndarray:
    vec = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vec / np.linalg.norm(vec)


def test_entries_are_per_fingerprint_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = EmbeddingCache(path)
    cache.put_many("model-a:8", [(text_hash("apple"), _unit(1)), (text_hash("pear"), _unit(2))])
    cache.put_many("model-b:8", [(text_hash("apple"), _unit(3))])
    cache.close()
    cache = EmbeddingCache(path)
    try:
        a = cache.get_many("model-a:8", [text_hash("apple"), text_hash("pear"), text_hash("plum")], 8)
        b = cache.get_many("model-b:8", [text_hash("apple"), text_hash("pear")], 8)
        assert set(a) == {text_hash("apple"), text_hash("pear")}
        np.testing.assert_array_equal(a[text_hash("pear")], _unit(2))
        np.testing.assert_array_equal(b[text_hash("apple")], _unit(3))
        assert text_hash("pear") not in b
        # A vector of another length (a model whose fingerprint did not change its dimension) is a miss.
        assert cache.get_many("model-a:8", [text_hash("apple")], 16) == {}
    finally:
        cache.close()


def test_version_1_cache_is_moved_to_the_current_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE embeddings (fingerprint TEXT NOT NULL, text_hash BLOB NOT NULL, "
                       "vector BLOB NOT NULL, PRIMARY KEY (fingerprint, text_hash)) WITHOUT ROWID;")
    conn.executemany("INSERT INTO embeddings VALUES (?, ?, ?)",
                     [("m:8", text_hash(f"t{i}"), _unit(i).tobytes()) for i in range(1200)])
    conn.commit()
    conn.close()
    cache = EmbeddingCache(path)
    try:
        found = cache.get_many("m:8", [text_hash(f"t{i}") for i in range(1200)], 8)
        assert len(found) == 1200
        np.testing.assert_array_equal(found[text_hash("t700")], _unit(700))
    finally:
        cache.close()
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert "embeddings" not in tables


def test_caching_embedder_embeds_each_text_once(tmp_path: Path, local_embedder: LocalEmbedder) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    try:
        first = CachingEmbedder(local_embedder, cache)
        texts = ["a cat on a mat", "a dog in fog", "a cat on a mat"]
        vecs = first.embed(texts)
        assert (first.embedded, first.cached) == (2, 0)  # the repeat inside one call is embedded once
        np.testing.assert_array_equal(vecs[0], vecs[2])
        again = CachingEmbedder(local_embedder, cache)
        np.testing.assert_allclose(again.embed(texts[:2]), vecs[:2], atol=1e-6)
        assert (again.embedded, again.cached) == (0, 2)
    finally:
        cache.close()


def test_empty_lookup_and_empty_put_do_nothing(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    try:
        cache.put_many("m", [])
        assert cache.get_many("m", [], 8) == {}
    finally:
        cache.close()
