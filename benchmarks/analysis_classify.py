"""Zero-shot sentiment on the fine food reviews, the Cookbook's protocol: 1-2 stars negative,
4-5 positive, 3 dropped; bare labels vs descriptive labels, through classify_collection."""

from __future__ import annotations

import json

from analysis_common import RESULTS, combined, embed_cached, embedder, fine_food

from vectorseam.analysis.classify import LabelSpec, classify_collection
from vectorseam.embedding import collection_spec
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import Record

LABEL_SETS = {
    "bare": [LabelSpec("negative", "negative"), LabelSpec("positive", "positive")],
    "descriptive": [LabelSpec("negative", "An Amazon review with a negative sentiment."),
                    LabelSpec("positive", "An Amazon review with a positive sentiment.")],
}

if __name__ == "__main__":
    rows = fine_food()
    texts = [combined(r) for r in rows]
    vectors = embed_cached("fine_food", texts)  # all 1,000, as cached by the other benchmarks
    store = MemoryStore()
    store.ensure_collection(collection_spec("reviews", embedder()))
    store.upsert("reviews", [
        Record(f"r{r['']}", v, t, {"Score": int(r["Score"])})
        for r, v, t in zip(rows, vectors, texts, strict=True) if r["Score"] != "3"
    ])
    gold = {f"r{r['']}": ("negative" if int(r["Score"]) <= 2 else "positive") for r in rows if r["Score"] != "3"}
    results: dict[str, object] = {"model": embedder().fingerprint, "records": len(gold),
                                  "negatives": sum(1 for g in gold.values() if g == "negative")}
    for name, labels in LABEL_SETS.items():
        result = classify_collection(store, embedder(), "reviews", labels)
        correct = sum(1 for rid, lab in zip(result.ids, result.predicted, strict=True) if gold[rid] == lab)
        per_class = {}
        for cls in ("negative", "positive"):
            tp = sum(1 for rid, lab in zip(result.ids, result.predicted, strict=True) if lab == cls and gold[rid] == cls)
            predicted = sum(1 for lab in result.predicted if lab == cls)
            actual = sum(1 for g in gold.values() if g == cls)
            per_class[cls] = {"precision": round(tp / predicted, 4) if predicted else 0.0,
                              "recall": round(tp / actual, 4)}
        results[name] = {"labels": {lab.name: lab.description for lab in labels},
                         "accuracy": round(correct / len(gold), 4), "per_class": per_class}
    results["cookbook_openai"] = {"bare": 0.87, "descriptive": 0.95}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analysis_classify.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
