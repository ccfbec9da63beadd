"""Clustering AG News test (7,600 items, 4 classes): V-measure and adjusted Rand index of k-means
clusters (k = 4, and k chosen by silhouette) against the labels, plus a map of the collection."""

from __future__ import annotations

import json
import sys
import time

from analysis_common import RESULTS, ag_news, embed_cached, embedder
from sklearn.metrics import adjusted_rand_score, homogeneity_completeness_v_measure

from vectorseam.analysis.clustering import cluster_collection, map_categories
from vectorseam.analysis.maps import write_map
from vectorseam.embedding import collection_spec
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import Record

if __name__ == "__main__":
    texts, labels, classes = ag_news()
    vectors = embed_cached("ag_news", texts)
    store = MemoryStore()
    store.ensure_collection(collection_spec("ag_news", embedder()))
    store.upsert("ag_news", [Record(f"n{i}", v, t, {"label": classes[lab]})
                             for i, (v, t, lab) in enumerate(zip(vectors, texts, labels, strict=True))])
    gold = {f"n{i}": lab for i, lab in enumerate(labels)}
    results: dict[str, object] = {"model": embedder().fingerprint, "records": len(texts)}
    runs = {"k=4": {"k": 4}, "k by silhouette (2..8)": {"k": None, "k_range": (2, 8)}}
    for name, kwargs in runs.items():
        start = time.perf_counter()
        result = cluster_collection(store, "ag_news", seed=0, **kwargs)  # type: ignore[arg-type]
        truth = [gold[i] for i in result.data.ids]
        h, c, v = homogeneity_completeness_v_measure(truth, result.labels)
        results[name] = {
            "k": result.k, "v_measure": round(v, 4), "homogeneity": round(h, 4), "completeness": round(c, 4),
            "adjusted_rand": round(adjusted_rand_score(truth, result.labels), 4),
            "silhouette": round(result.silhouette or 0.0, 4),
            "silhouette_by_k": {str(k): round(s, 4) for k, s in result.silhouette_by_k.items()},
            "seconds": round(time.perf_counter() - start, 1),
            "clusters": [{"size": cl.size, "terms": cl.terms[:6]} for cl in result.clusters],
        }
        print(name, results[name]["v_measure"], results[name]["adjusted_rand"], file=sys.stderr)
        if result.k == 4:
            start = time.perf_counter()
            png, _ = write_map(RESULTS / "analysis_ag_news_map", result.data.vectors, result.data.ids,
                               result.data.texts, map_categories(result, "label"), "tsne",
                               "AG News test, coloured by label", 0)
            (RESULTS / "analysis_ag_news_map.html").unlink(missing_ok=True)  # 7,600 points: 3 MB, not committed
            results["map_seconds"] = round(time.perf_counter() - start, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analysis_cluster.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
