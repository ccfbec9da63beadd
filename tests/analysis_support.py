"""Small real corpora for the analysis tests, embedded once per session with the real model.

Only subsets of the shared data sets are embedded (a few hundred texts at most): the full sets are
measured by benchmarks/analysis_*.py, which cache their embeddings.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.conftest import shared_data
from vectorseam.embedding import collection_spec
from vectorseam.store import VectorStore
from vectorseam.types import Record


def combined(row: dict[str, str]) -> str:
    """The Cookbook's text for a review."""
    return f"Title: {row['Summary'].strip()}; Content: {row['Text'].strip()}"


def fine_food_rows() -> list[dict[str, str]]:
    with open(shared_data("cookbook/fine_food_reviews_1k.csv"), encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=1)
def fine_food_subset_rows() -> tuple[dict[str, str], ...]:
    """120 reviews: every copy of the first 12 repeated texts, plus the first unrepeated reviews."""
    rows = fine_food_rows()
    by_text: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_text[combined(row)].append(row)
    repeated = [group for group in by_text.values() if len(group) > 1][:12]
    chosen = [r for group in repeated for r in group]
    singles = [g[0] for g in by_text.values() if len(g) == 1]
    chosen += singles[: 120 - len(chosen)]
    chosen.sort(key=lambda r: int(r[""]))
    return tuple(chosen)


_EMBEDDED: dict[tuple[str, tuple[str, ...]], npt.NDArray[np.float32]] = {}


def embed(key: str, texts: list[str], embedder: Any) -> npt.NDArray[np.float32]:
    """Embeddings cached for the test session (the model is deterministic), one entry per text list."""
    entry = (key, tuple(texts))
    if entry not in _EMBEDDED:
        _EMBEDDED[entry] = embedder.embed_documents(list(texts))
    return _EMBEDDED[entry]


def fill_collection(
    store: VectorStore, name: str, embedder: Any, ids: list[str], texts: list[str],
    metadata: list[dict[str, Any]], vectors: npt.NDArray[np.float32] | None = None,
) -> None:
    """A collection as ingest makes it: the embedder's spec and fingerprint, then the records."""
    store.ensure_collection(collection_spec(name, embedder))
    vecs = vectors if vectors is not None else embed(name, texts, embedder)
    store.upsert(name, [Record(i, v, t, m) for i, v, t, m in zip(ids, vecs, texts, metadata, strict=True)])


def fine_food_collection(store: VectorStore, name: str, embedder: Any) -> list[dict[str, str]]:
    rows = list(fine_food_subset_rows())
    texts = [combined(r) for r in rows]
    fill_collection(
        store, name, embedder, [f"r{r['']}" for r in rows], texts,
        [{"Score": int(r["Score"]), "ProductId": r["ProductId"]} for r in rows],
        embed("fine_food", texts, embedder),
    )
    return rows


def ag_news_subset(per_class: int = 50) -> tuple[list[str], list[int]]:
    """The first ``per_class`` items of each class of the AG News test split, in file order."""
    texts: list[str] = []
    labels: list[int] = []
    taken: dict[int, int] = defaultdict(int)
    with open(shared_data("ag_news/test.csv"), encoding="utf-8", newline="") as fh:
        for cls, title, desc in csv.reader(fh):
            c = int(cls) - 1
            if taken[c] < per_class:
                taken[c] += 1
                texts.append(f"{title}. {desc}".replace("\\", " "))
                labels.append(c)
    return texts, labels


def memory_store_at(data_dir: Path) -> VectorStore:
    """The embedded default store the CLI opens for ``VECTORSEAM_DATA_DIR=data_dir``."""
    from vectorseam.stores.memory import MemoryStore

    return MemoryStore(data_dir / "memory")
