"""The search backend API on the memory store (issue 23): what ``group_by``, ``facets`` and ``scroll`` cost.

Targets, at 1M records: a grouped search and a search with facet counts cost at most 2x a plain filtered
search (the named alternative, timed in the same run, alternating with them); a scroll reads at least
100k records/s (beside ``scan``, the store's own one-pass read, in the same run).

The collection: ``n`` chunks of ``n / 5`` documents (``source_id``), each chunk its document's vector
plus noise (chunks of one text are near each other, as real chunks are), the documents synthesized
from real AG News and SciFact embeddings (:func:`benchmarks.common.synthesize`); ``bucket`` (10 values:
the filter, admitting 10%), ``category`` (20 values) and ``lang`` (3 values) to count. Every query goes
through :class:`vectorseam.retrieval.engine.QueryRunner` (the facade's path) with a real query vector
and a filter drawn afresh each time:

* ``plain``: the top 10 under the filter;
* ``group_by``: the top 10 documents under the filter, 3 chunks each (``group_size=3``);
* ``facets``: the plain search plus the counts of ``category`` and ``lang`` among every record the
  filter admits (``facet_scope="filter"``), and among the hits (``"hits"``);
* ``scroll``: every record, 1,000 a page, by cursor (with ``--quick``, and at 1M, the first pages only
  when the store has no keyset scroll of its own: each emulated page reads the whole collection).

``python -m benchmarks.run --only search_api`` (1M records, about 3 GB of memory), ``--quick`` (100k).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.common import Matrix, Result, latency_stats, log, md_table, real_embeddings, synthesize
from vectorseam.query import Query
from vectorseam.retrieval.engine import QueryRunner
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.retrieval.scroll import scroll
from vectorseam.store import Scrollable
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec, Record

K = 10
CHUNKS = 5
QUERIES = 40
SCROLL_PAGE = 1000


def build(n: int, seed: int = 0) -> tuple[MemoryStore, Matrix]:
    real = real_embeddings(quick=True)
    docs = synthesize(real.base, n // CHUNKS, seed=seed)
    rng = np.random.default_rng(seed)
    store = MemoryStore()
    store.ensure_collection(CollectionSpec("bench", docs.shape[1], "cosine"))
    step = 50_000
    for s in range(0, n, step):
        e = min(n, s + step)
        doc = np.arange(s, e) // CHUNKS
        noise = rng.standard_normal((e - s, docs.shape[1])).astype(np.float32) * 0.02
        vectors = docs[doc] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        bucket, category, lang = (rng.integers(0, 10, e - s).tolist(), rng.integers(0, 20, e - s).tolist(),
                                  rng.integers(0, 3, e - s).tolist())
        store.upsert("bench", [
            Record(f"d{doc[i]:07d}#{(s + i) % CHUNKS}", vectors[i], "",
                   {"source_id": f"d{doc[i]:07d}", "bucket": bucket[i], "category": f"c{category[i]}",
                    "lang": ("en", "de", "fr")[lang[i]]})
            for i in range(e - s)])
        log(f"  {e:,} records")
    store.count("bench", {"bucket": 0})  # the store builds its metadata columns on the first filter
    return store, real.queries


class _VectorsOnly:
    """The searcher's embedder where every query brings its vector (no text is embedded here)."""

    fingerprint = ""
    max_tokens = 512

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    def embed_query(self, text: str) -> Any:
        raise AssertionError("the benchmark's queries are vectors")

    embed_documents = token_spans = count_tokens = embed_query


def run(quick: bool) -> Result:
    n = 100_000 if quick else 1_000_000
    log(f"building {n:,} records")
    store, queries = build(n)
    dimension = queries.shape[1]
    runner = QueryRunner(RetrievalSearcher(store, _VectorsOnly(dimension)))
    rng = np.random.default_rng(1)
    shapes: dict[str, dict[str, Any]] = {
        "plain": {},
        "group_by": {"group_by": "source_id", "group_size": 3},
        "facets (filter)": {"facets": ("category", "lang")},
        "facets (hits)": {"facets": ("category", "lang"), "facet_scope": "hits"},
    }
    samples: dict[str, list[float]] = {name: [] for name in shapes}
    names = list(shapes)
    last = -1
    for i in range(QUERIES + 2):  # the shapes alternate, in turn first, so load hits them alike
        vector = tuple(float(x) for x in queries[i % len(queries)])
        for name in names[i % len(names):] + names[: i % len(names)]:
            extra = shapes[name]
            bucket = int(rng.integers(0, 9))
            bucket = last = bucket + (bucket >= last)  # never the previous filter: no filter cache helps
            flt = {"bucket": bucket}
            start = time.perf_counter()
            result = runner.run("bench", Query(vector=vector, k=K, filter=flt, **extra))
            if i >= 2:  # two warm-up rounds
                samples[name].append(time.perf_counter() - start)
            assert len(result.hits) == K, (name, len(result.hits))
    stats = {name: latency_stats(s, 1) for name, s in samples.items()}
    plain = stats["plain"]["p50_ms"]
    rows = [[name, s["p50_ms"], s["p99_ms"], round(s["p50_ms"] / plain, 2),
             "" if name == "plain" else ("yes" if s["p50_ms"] <= 2 * plain else "no")]
            for name, s in stats.items()]

    log("scrolling")
    native = isinstance(store, Scrollable)
    pages = None if native else (20 if quick else 5)
    scroll_rate, read = scroll_speed(store, pages)
    log("scanning")
    start = time.perf_counter()
    scanned = sum(len(p) for p in store.scan("bench", batch_size=SCROLL_PAGE, include_vectors=False))
    scan_rate = scanned / (time.perf_counter() - start)
    store.close()
    markdown = (
        f"{n:,} records ({n // CHUNKS:,} documents of {CHUNKS} chunks), 384-d, memory store, k={K}, a 10% filter "
        f"drawn per query (never the previous one), {QUERIES} queries per shape (alternating); ratio = p50 / plain "
        "p50 (target <= 2).\n\n"
        + md_table(["query", "p50 ms", "p99 ms", "ratio to plain", "<= 2x"], rows)
        + "\n\n" + md_table(["read", "records/s", "records read", "target"], [
            [f"scroll by cursor ({'keyset, native' if native else 'emulated: one pass per page'}), "
             f"{SCROLL_PAGE:,} a page", round(scroll_rate), read, ">= 100,000/s"],
            [f"scan (the store's one-pass read), {SCROLL_PAGE:,} a page", round(scan_rate), scanned, "-"]])
        + ("\n\nThe memory store has no keyset scroll of its own yet (`Scrollable`), so each page is one pass "
           "over the collection's ids (vectorseam.retrieval.scroll); the scroll rate is that of the first "
           f"{pages} pages." if pages else "")
        + ("" if hasattr(store, "facet_counts") else
           "\n\nFacet counts under a filter are emulated on the memory store (one scan of the admitted records: "
           "`NativeFacets` would count from its metadata columns).")
        + ("" if hasattr(store, "query_groups") else
           "\n\n`group_by` is emulated on the memory store (a deeper query, then one query over every group that "
           "may miss chunks: vectorseam.retrieval.grouping).")
    )
    return Result("search_api", "Search API: group_by, facets and scroll on the memory store", markdown, {
        "records": n, "documents": n // CHUNKS, "k": K, "queries": QUERIES,
        "latency": stats, "ratio_to_plain": {name: s["p50_ms"] / plain for name, s in stats.items()},
        "scroll_records_per_s": scroll_rate, "scroll_records_read": read, "scroll_native": native,
        "scan_records_per_s": scan_rate})


def scroll_speed(store: MemoryStore, pages: int | None) -> tuple[float, int]:
    """Records per second of a cursor scroll (every page, or the first ``pages``)."""
    cursor: str | None = None
    read, done = 0, 0
    start = time.perf_counter()
    while True:
        page = scroll(store, "bench", SCROLL_PAGE, cursor)
        read += len(page.records)
        done += 1
        cursor = page.next_cursor
        if cursor is None or (pages is not None and done >= pages):
            break
    return read / (time.perf_counter() - start), read
