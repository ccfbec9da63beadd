"""Near-duplicates: exact repeats in the fine food reviews, and precision/recall/F1 on MRPC.

MRPC ships here as its train split only, so it is split 50/50 (stratified, seed 123): the cosine
threshold is chosen on one half (best F1) and precision/recall/F1 are measured on the other.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from analysis_common import RESULTS, combined, embed_cached, embedder, fine_food, mrpc

from vectorseam.analysis.dedup import find_duplicates
from vectorseam.embedding import collection_spec
from vectorseam.similarity import unit_rows_f32 as unit_rows
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import Record


def fine_food_repeats() -> dict[str, object]:
    rows = fine_food()
    texts = [combined(r) for r in rows]
    vectors = embed_cached("fine_food", texts)
    store = MemoryStore()
    store.ensure_collection(collection_spec("reviews", embedder()))
    store.upsert("reviews", [Record(f"r{r['']}", v, t, {}) for r, v, t in zip(rows, vectors, texts, strict=True)])
    counts = Counter(texts)
    expected_pairs = {
        frozenset((f"r{a['']}", f"r{b['']}"))
        for t in counts if counts[t] > 1
        for i, a in enumerate(rows) if texts[i] == t
        for j, b in enumerate(rows) if texts[j] == t and i < j
    }
    out: dict[str, object] = {
        "records": len(rows),
        "repeated_texts": sum(1 for n in counts.values() if n > 1),
        "extra_rows": sum(n - 1 for n in counts.values() if n > 1),
        "identical_pairs": len(expected_pairs),
    }
    for threshold in (0.999, 0.98, 0.95):
        result = find_duplicates(store, "reviews", threshold=threshold, method="exact")
        found = {frozenset((p.a, p.b)) for p in result.pairs}
        near = [p for p in result.pairs if result.texts[p.a] != result.texts[p.b]]
        out[f"threshold_{threshold}"] = {
            "pairs": len(result.pairs), "groups": len(result.groups), "extra_records": result.extra_records,
            "identical_pairs_found": len(expected_pairs & found),
            "near_identical_pairs": len(near),
            "near_identical_examples": [
                {"score": round(p.score, 4), "a": result.texts[p.a][:200], "b": result.texts[p.b][:200]}
                for p in near[:5]
            ],
        }
    return out


def _prf(pred: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    tp = int((pred & gold).sum())
    fp = int((pred & ~gold).sum())
    fn = int((~pred & gold).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "n": len(gold)}


def mrpc_prf() -> dict[str, object]:
    from sklearn.model_selection import train_test_split

    data = mrpc()
    n = len(data)
    vectors = unit_rows(embed_cached("mrpc", [a for _, a, _ in data] + [b for _, _, b in data]))
    scores = np.sum(vectors[:n] * vectors[n:], axis=1)
    gold = np.array([q == 1 for q, _, _ in data])
    tune, held = train_test_split(np.arange(n), test_size=0.5, stratify=gold, random_state=123)
    grid = np.round(np.arange(0.50, 1.0, 0.005), 3)
    f1s = [_prf(scores[tune] >= t, gold[tune])["f1"] for t in grid]
    best = float(grid[int(np.argmax(f1s))])
    return {
        "pairs": n, "paraphrases": int(gold.sum()), "threshold_chosen_on_tune_half": best,
        "tune_half": _prf(scores[tune] >= best, gold[tune]),
        "held_out_half": _prf(scores[held] >= best, gold[held]),
        "held_out_at_0.95": _prf(scores[held] >= 0.95, gold[held]),
        "baseline_all_paraphrase_held_out": _prf(np.ones(len(held), dtype=bool), gold[held]),
    }


if __name__ == "__main__":
    results = {"model": embedder().fingerprint, "fine_food": fine_food_repeats(), "mrpc": mrpc_prf()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analysis_dedup.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=1, ensure_ascii=False))
