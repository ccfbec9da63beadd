"""Keyword (BM25) and hybrid search native to each store against the BM25 sidecar, same data, same run.

100,000 records (``--quick``: 20,000): texts of one or two sentences drawn from SciFact abstracts and
AG News (real words, real term statistics), random 64-d unit vectors for the dense half (the dense
search is the same on both paths; its cost is in the hybrid figures), metadata ``bucket = i % 100``
for the 1% filter. Queries are SciFact claims; k = 10, hybrid depth 100 per list, RRF k = 60.

Per backend (memory, pgvector with its default HNSW index, Qdrant local mode):

* **native**: the store's ``keyword_search`` / ``hybrid_search`` (one call; filter pushed down);
* **sidecar**: the fallback path of :class:`~vectorseam.stores.keyword_fallback.KeywordFallback` (for stores
  without native keyword search), :class:`~vectorseam.stores.bm25_sidecar.BM25Sidecar` ranking in the
  process and the store supplying the candidates' texts, filtered in Python; hybrid adds the store's dense
  query and fuses in Python. Its one-off build (a scan of every
  text) is reported apart.

For pgvector the measured alternative is also timed: PostgreSQL full-text search (``tsvector`` with
a GIN index, ``ts_rank_cd``, the query's words OR-ed as BM25 does, the same filter), with its top-10 overlap with BM25 here and its nDCG@10
on SciFact's train judgements next to BM25's (``ts_rank_cd`` is not BM25: the reason pgvector uses
sparse vectors with BM25 weights instead).

Qdrant's local mode is a pure-Python engine (every sparse query loops over all points), so it gets
fewer queries; a Qdrant server answers from its inverted index.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import DATA, Result, ag_news, latency_stats, log, md_table, scifact_abstracts, scifact_queries
from vectorseam.filters import parse_filter
from vectorseam.keywords import fuse_hits
from vectorseam.retrieval.evaluation import load_beir, score_run
from vectorseam.store import BulkLoading, NativeKeywordSearch, VectorStore
from vectorseam.stores.keyword_fallback import KeywordFallback
from vectorseam.types import CollectionSpec, Record

K = 10
DEPTH = 100
DIM = 64
FILTER = {"bucket": 7}  # 1% of the records


def corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` texts of one or two real sentences."""
    sentences = [s.strip() for text in scifact_abstracts() + [t for _, t in ag_news()]
                 for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sentences), size=(n, 2))
    two = rng.random(n) < 0.5
    return [sentences[a] + (" " + sentences[b] if t else "") for (a, b), t in zip(picks.tolist(), two, strict=True)]


def records(texts: list[str], seed: int = 1) -> list[Record]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [Record(f"d{i:06d}", vectors[i], t, {"bucket": i % 100}) for i, t in enumerate(texts)]


def _open(backend: str, pg_dsn: str | None) -> VectorStore:
    if backend == "memory":
        from vectorseam.stores.memory import MemoryStore

        return MemoryStore()
    if backend == "pgvector":
        from vectorseam_pgvector import create_store

        return create_store(dsn=pg_dsn, schema="bench_keywords")
    from vectorseam_qdrant.store import create_store as create_qdrant

    return create_qdrant(location=":memory:")


def _timed(fn: Callable[[int], object], calls: int) -> dict[str, float]:
    fn(0)  # warm up (and build what a first query builds)
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return latency_stats(samples, 1)


def measure(backend: str, recs: list[Record], queries: list[str], calls: int, workdir: Path,
            pg_dsn: str | None) -> dict[str, Any]:
    store = _open(backend, pg_dsn)
    out: dict[str, Any] = {"backend": backend, "records": len(recs), "queries": calls}
    try:
        if backend == "pgvector":
            store.drop_collection("bench")
        store.ensure_collection(CollectionSpec("bench", DIM, "cosine"))
        start = time.perf_counter()
        with store.bulk_load("bench") if isinstance(store, BulkLoading) else contextlib.nullcontext():
            for s in range(0, len(recs), 5000):
                store.upsert("bench", recs[s : s + 5000])
        out["load_s"] = round(time.perf_counter() - start, 1)
        log(f"{backend}: loaded {len(recs)} records in {out['load_s']} s")
        assert isinstance(store, NativeKeywordSearch)
        rng = np.random.default_rng(5)
        qvecs = rng.normal(size=(max(calls, 1) + 1, DIM)).astype(np.float32)
        fallback = KeywordFallback(store, workdir / "bm25")
        sidecar = fallback._index("bench")
        start = time.perf_counter()
        sidecar.model()  # the one-off build: a scan of every text, tokenized
        out["sidecar_build_s"] = round(time.perf_counter() - start, 1)
        f = parse_filter(FILTER)

        def q(i: int) -> str:
            return queries[i % len(queries)]

        cases: dict[str, Callable[[int], object]] = {
            "native bm25": lambda i: store.keyword_search("bench", q(i), K),
            "native bm25, 1% filter": lambda i: store.keyword_search("bench", q(i), K, FILTER),
            "native hybrid": lambda i: store.hybrid_search("bench", q(i), qvecs[i], K, depth=DEPTH),
            "native hybrid, 1% filter": lambda i: store.hybrid_search("bench", q(i), qvecs[i], K, FILTER, depth=DEPTH),
            "sidecar bm25": lambda i: fallback._sidecar_hits("bench", q(i), K, None),
            "sidecar bm25, 1% filter": lambda i: fallback._sidecar_hits("bench", q(i), K, f),
            "sidecar hybrid": lambda i: fuse_hits(store.query("bench", qvecs[i], DEPTH)[0],
                                                  fallback._sidecar_hits("bench", q(i), DEPTH, None), K),
            "sidecar hybrid, 1% filter": lambda i: fuse_hits(store.query("bench", qvecs[i], DEPTH, FILTER)[0],
                                                             fallback._sidecar_hits("bench", q(i), DEPTH, f), K),
        }
        if backend == "pgvector":
            cases.update(_fts_cases(store, queries))
        for name, fn in cases.items():
            out[name] = _timed(fn, calls)
            log(f"{backend} {name}: {out[name]['qps']} QPS, p50 {out[name]['p50_ms']} ms")
        agree = [len({h.id for h in store.keyword_search("bench", qq, K)}
                     & {rid for rid, _ in sidecar.search(qq, K)}) / K for qq in queries[: min(20, calls)]]
        out["native_vs_sidecar_top10_overlap"] = round(float(np.mean(agree)), 4)
        if backend == "pgvector":
            out["fts_vs_bm25_top10_overlap"] = _fts_overlap(store, queries[:20])
    finally:
        store.close()
    return out


def _fts_sql(store: Any, table: str, with_filter: bool) -> Any:
    from psycopg import sql

    # OR of the query's words (plainto_tsquery ANDs them, which matches few records): BM25's semantics
    where = sql.SQL(" AND metadata @> %s::jsonb") if with_filter else sql.SQL("")
    return sql.SQL("WITH q AS (SELECT replace(plainto_tsquery('english', %s)::text, ' & ', ' | ')::tsquery AS q) "
                   "SELECT id FROM {}, q WHERE fts @@ q.q{} ORDER BY ts_rank_cd(fts, q.q) DESC, id LIMIT %s").format(
        sql.Identifier(store.options.schema, table), where)


def _prepare_fts(store: Any, table: str) -> float:
    """A generated tsvector column and its GIN index (PostgreSQL's own parser, stemmer and stop words)."""
    from psycopg import sql

    start = time.perf_counter()
    ident = sql.Identifier(store.options.schema, table)

    def run(conn: Any) -> None:
        with conn.transaction():
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS fts tsvector GENERATED ALWAYS AS "
                                 "(to_tsvector('english', text)) STORED").format(ident))
            conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (fts)").format(
                sql.Identifier(f"{table}_fts"), ident))

    store._connector.run("adding full-text search", run)
    return round(time.perf_counter() - start, 1)


def _fts_ids(store: Any, table: str, query: str, k: int, with_filter: bool = False) -> list[str]:
    import json

    statement = _fts_sql(store, table, with_filter)
    params: list[Any] = [query, *([json.dumps(FILTER)] if with_filter else []), k]
    return [r[0] for r in store._connector.run("fts", lambda conn: conn.execute(statement, params).fetchall())]


def _fts_cases(store: Any, queries: list[str]) -> dict[str, Callable[[int], object]]:
    log(f"pgvector: full-text search column and index built in {_prepare_fts(store, 'bench')} s")
    return {
        "postgres fts (ts_rank_cd)": lambda i: _fts_ids(store, "bench", queries[i % len(queries)], K),
        "postgres fts, 1% filter": lambda i: _fts_ids(store, "bench", queries[i % len(queries)], K, True),
    }


def _fts_overlap(store: Any, queries: list[str]) -> float:
    shares = [len(set(_fts_ids(store, "bench", q, K)) & {h.id for h in store.keyword_search("bench", q, K)}) / K
              for q in queries]
    return round(float(np.mean(shares)), 4)


def fts_scifact(pg_dsn: str) -> dict[str, Any]:
    """nDCG@10 on SciFact (train judgements) of BM25 in pgvector and of PostgreSQL full-text search."""
    from vectorseam_pgvector import create_store

    data = load_beir(DATA / "scifact", "train")
    store = create_store(dsn=pg_dsn, schema="bench_keywords")
    try:
        store.drop_collection("scifact")
        store.ensure_collection(CollectionSpec("scifact", DIM, "cosine"))
        rng = np.random.default_rng(0)
        items = list(data.corpus.items())
        vectors = rng.normal(size=(len(items), DIM)).astype(np.float32)
        store.upsert("scifact", [Record(d, vectors[i], t, {}) for i, (d, t) in enumerate(items)])
        _prepare_fts(store, "scifact")
        qids = [q for q in data.qrels if data.queries.get(q, "").strip()]
        bm25 = {q: [h.id for h in store.keyword_search("scifact", data.queries[q], K)] for q in qids}
        fts = {q: _fts_ids(store, "scifact", data.queries[q], K) for q in qids}
        return {"bm25_ndcg@10": round(score_run(bm25, data.qrels)["ndcg@10"], 4),
                "fts_ndcg@10": round(score_run(fts, data.qrels)["ndcg@10"], 4), "queries": len(qids)}
    finally:
        store.close()


def run(quick: bool) -> Result:
    from vectorseam_pgvector.testing import PostgresServer

    n = 20_000 if quick else 100_000
    texts = corpus(n)
    recs = records(texts)
    queries = scifact_queries(200)
    data: dict[str, Any] = {"records": n, "dimension": DIM, "k": K, "depth": DEPTH, "filter": FILTER, "runs": []}
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as pg:
        workdir = Path(tmp)
        for backend, calls in (("memory", 50), ("pgvector", 30), ("qdrant", 2 if not quick else 5)):
            data["runs"].append(measure(backend, recs, queries, calls, workdir / backend, pg.dsn()))
        data["fts_scifact"] = fts_scifact(pg.dsn())
    return Result("keyword_native", f"Keyword and hybrid search: native vs the BM25 sidecar ({n:,} records)",
                  report(data), data)


def report(data: dict[str, Any]) -> str:
    rows = []
    for r in data["runs"]:
        for mode in ("bm25", "bm25, 1% filter", "hybrid", "hybrid, 1% filter"):
            native, side = r[f"native {mode}"], r[f"sidecar {mode}"]
            rows.append([r["backend"], mode, native["qps"], native["p50_ms"], side["qps"], side["p50_ms"],
                         f"{native['qps'] / side['qps']:.1f}x"])
    lines = [md_table(["backend", "query", "native QPS", "native p50 ms", "sidecar QPS", "sidecar p50 ms",
                       "native / sidecar"], rows), ""]
    for r in data["runs"]:
        lines.append(f"* {r['backend']}: load {r['load_s']} s (native index kept while writing); the sidecar's "
                     f"one-off build from a scan {r['sidecar_build_s']} s; top-10 overlap native vs sidecar "
                     f"{r['native_vs_sidecar_top10_overlap']:.3f}")
    pg = next((r for r in data["runs"] if r["backend"] == "pgvector"), None)
    if pg is not None and "postgres fts (ts_rank_cd)" in pg:
        fts, fts_f, sc = pg["postgres fts (ts_rank_cd)"], pg["postgres fts, 1% filter"], data["fts_scifact"]
        lines.append(f"* PostgreSQL full-text search (tsvector + GIN, `ts_rank_cd`), the measured alternative: "
                     f"{fts['qps']} QPS ({fts_f['qps']} with the 1% filter), top-10 overlap with BM25 "
                     f"{pg['fts_vs_bm25_top10_overlap']:.2f}; SciFact nDCG@10 {sc['fts_ndcg@10']:.3f} against "
                     f"BM25's {sc['bm25_ndcg@10']:.3f} (train judgements, {sc['queries']} queries)")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from benchmarks.run import main

    raise SystemExit(main(["--only", "keyword_native", *sys.argv[1:]]))
