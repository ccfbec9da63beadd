"""LangChain relevance scores are (1 + cosine) / 2, and users are told so where they look: the store's
docstring (the API reference) and the frameworks guide. A threshold of 0.6 keeps cosine >= 0.2."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("langchain_core", reason="the LangChain extra (langchain-core) is not installed")

from vectorseam.client import VectorSeam
from vectorseam.config import Settings, StoreSettings
from vectorseam.integrations import langchain as lc

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["whole wheat pasta with a nutty taste", "spaghetti that turned gummy", "fast delivery, well packed",
         "rancid nuts, old stock", "jasmine green tea", "dog treats my puppy loves"]


def test_relevance_is_one_plus_cosine_over_two_and_thresholds_follow(isolated_env: Path, local_embedder) -> None:  # type: ignore[no-untyped-def]
    vs = VectorSeam(settings=Settings(data_dir=isolated_env / "data", store=StoreSettings(name="memory")))
    vs.embedder = local_embedder
    store = lc.VectorSeamVectorStore(vs, "lc_relevance")
    store.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
    raw = {d.id: s for d, s in store.similarity_search_with_score("pasta", k=len(TEXTS))}
    rel = {d.id: r for d, r in store.similarity_search_with_relevance_scores("pasta", k=len(TEXTS))}
    assert raw.keys() == rel.keys() and len(raw) == len(TEXTS)
    for rid, cosine in raw.items():
        assert rel[rid] == pytest.approx((1 + cosine) / 2, abs=1e-6)
    assert min(raw.values()) < 0.2 < max(raw.values())  # the threshold below splits these texts
    kept = store.as_retriever(search_type="similarity_score_threshold",
                              search_kwargs={"score_threshold": 0.6, "k": len(TEXTS)}).invoke("pasta")
    assert {d.id for d in kept} == {rid for rid, cosine in raw.items() if cosine >= 0.2}
    vs.close()


def test_the_formula_is_documented_where_users_look() -> None:
    assert "(1 + s) / 2" in (lc.VectorSeamVectorStore.__doc__ or "")
    assert "keeps hits with cosine >= 0.2" in (lc.VectorSeamVectorStore.__doc__ or "")
    assert "(1 + cosine) / 2" in (lc.__doc__ or "")
    guide = REPO / "docs" / "guides" / "frameworks.md"
    text = guide.read_text(encoding="utf-8")
    assert "(1 + cosine) / 2" in text and "0.6" in text and "cosine 0.2" in text
