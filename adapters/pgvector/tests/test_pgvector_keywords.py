"""BM25 inside PostgreSQL: statistics kept in the writes' transactions, shared by every connection, built
for collections that predate it; agreement with the reference BM25 is the conformance suite's."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql
from vectorseam_pgvector import PgVectorStore
from vectorseam_pgvector import keywords as kw
from vectorseam_pgvector.testing import PostgresServer

from vectorseam.keywords import tokenize_all
from vectorseam.testing.conformance.keywords import assert_keyword_ranking, keyword_records, reference_bm25
from vectorseam.types import CollectionSpec, Record

MakeStore = Callable[..., PgVectorStore]
DIM = 8


def _stats(pg: PostgresServer, schema: str, collection: str) -> tuple[dict[str, int], tuple[int, int]]:
    """The stored document frequencies (terms with df > 0) and (docs, tokens) of a collection."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        df: dict[str, int] = dict(conn.execute(sql.SQL("SELECT term, df FROM {} WHERE collection = %s AND df > 0").format(
            sql.Identifier(schema, kw.TERMS)), [collection]).fetchall())
        row = conn.execute(sql.SQL("SELECT docs, tokens FROM {} WHERE collection = %s").format(
            sql.Identifier(schema, kw.STATS)), [collection]).fetchone()
    assert row is not None
    return df, (int(row[0]), int(row[1]))


def _expected_stats(records: list[Record]) -> tuple[dict[str, int], tuple[int, int]]:
    tokens = tokenize_all([r.text for r in records])
    df: Counter[str] = Counter()
    for t in tokens:
        df.update(set(t))
    return dict(df), (len(records), sum(map(len, tokens)))


def test_statistics_follow_upserts_overwrites_and_deletes(make_store: MakeStore, pg_server: PostgresServer) -> None:
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("docs", DIM))
    records = keyword_records(dimension=DIM)
    store.upsert("docs", records[:40])
    store.upsert("docs", records[30:])  # 10 overwritten with the same text, 20 new
    changed = [Record(r.id, r.vector, "zebra " * (i + 1), r.metadata) for i, r in enumerate(records[:5])]
    store.upsert("docs", changed)
    store.delete("docs", ["k010", "k011", "missing"])
    store.delete("docs", filter={"group": 2})
    current = {r.id: r for r in records} | {r.id: r for r in changed}
    for rid in ("k010", "k011"):
        current.pop(rid)
    now = sorted((r for r in current.values() if r.metadata["group"] != 2), key=lambda r: r.id)
    assert _stats(pg_server, store.options.schema, "docs") == _expected_stats(now)
    for query in ("zebra", "apple river", "solar wind"):
        assert_keyword_ranking(store.keyword_search("docs", query, 10), reference_bm25(now, query), 10, 1e-6, query)
    store.drop_collection("docs")
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        left = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(store.options.schema, kw.TERMS))).fetchone()
    assert left == (0,)


def test_another_connection_sees_each_write_on_its_next_search(make_store: MakeStore) -> None:
    """Two stores (two pools, as two service replicas have) over one schema: no state outside the database."""
    writer = make_store(index="hnsw")
    reader = make_store(index="hnsw", schema=writer.options.schema)
    writer.ensure_collection(CollectionSpec("docs", DIM))
    records = keyword_records(dimension=DIM)
    writer.upsert("docs", records)
    assert reader.keyword_search("docs", "zebra", 5) == []
    writer.upsert("docs", [Record("k005", records[5].vector, "a zebra on the river bank", records[5].metadata)])
    hits = reader.keyword_search("docs", "zebra", 5)  # same record count, new text
    assert [h.id for h in hits] == ["k005"] and hits[0].text == "a zebra on the river bank"
    query_vector = np.asarray(records[5].vector)
    assert reader.hybrid_search("docs", "zebra", query_vector, 1)[0].id == "k005"
    writer.delete("docs", ["k005"])
    assert reader.keyword_search("docs", "zebra", 5) == []


def test_concurrent_writers_keep_exact_statistics(make_store: MakeStore, pg_server: PostgresServer) -> None:
    schema = make_store().options.schema
    stores = [make_store(schema=schema, retries=5) for _ in range(3)]
    stores[0].ensure_collection(CollectionSpec("docs", DIM))
    records = keyword_records(90, DIM, seed=21)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            mine = records[i::3]
            for start in range(0, len(mine), 5):
                stores[i].upsert("docs", mine[start : start + 5])
                stores[i].upsert("docs", records[start : start + 2])  # overlapping overwrites of shared ids
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert _stats(pg_server, schema, "docs") == _expected_stats(records)


def test_a_collection_from_before_keyword_search_is_indexed_on_first_use(make_store: MakeStore,
                                                                          pg_server: PostgresServer) -> None:
    store = make_store(index="exact")
    schema = store.options.schema
    store.ensure_collection(CollectionSpec("old", DIM))
    records = keyword_records(dimension=DIM)
    store.upsert("old", records[:30])
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:  # as an earlier vectorseam left it
        conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN kw_terms, DROP COLUMN kw_tfs, DROP COLUMN kw, "
                             "DROP COLUMN kw_len").format(sql.Identifier(schema, "old")))
        kw.drop(conn, schema, "old")
    store.upsert("old", records[30:])  # written without keyword columns
    store.delete("old", ["k000"])
    assert store.build_keyword_index("old") is True
    assert store.build_keyword_index("old") is False  # already built
    now = records[1:]
    assert _stats(pg_server, schema, "old") == _expected_stats(now)
    store.upsert("old", [Record("k001", records[1].vector, "zebra", {})])
    now = [Record("k001", records[1].vector, "zebra", {}), *records[2:]]
    for query in ("zebra", "apple river"):
        assert_keyword_ranking(store.keyword_search("old", query, 10), reference_bm25(now, query), 10, 1e-6, query)


def test_first_keyword_search_builds_the_index_itself(make_store: MakeStore, pg_server: PostgresServer) -> None:
    store = make_store(index="exact")
    schema = store.options.schema
    store.ensure_collection(CollectionSpec("old", DIM))
    records = keyword_records(dimension=DIM)
    store.upsert("old", records)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN kw_terms, DROP COLUMN kw_tfs, DROP COLUMN kw, "
                             "DROP COLUMN kw_len").format(sql.Identifier(schema, "old")))
        kw.drop(conn, schema, "old")
    other = make_store(index="exact", schema=schema)
    hits = other.hybrid_search("old", "apple river", np.ones(DIM, np.float32), 5, {"group": 1})
    assert len(hits) == 5
    assert_keyword_ranking(store.keyword_search("old", "apple river", 10, {"group": 1}),
                           reference_bm25(records, "apple river", {"group": 1}), 10, 1e-6, "built on first use")


def test_a_search_is_one_statement(make_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """BM25 (filter included) is one statement; hybrid one besides the spec look-up and search settings."""
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("docs", DIM))
    store.upsert("docs", keyword_records(dimension=DIM))
    statements: list[str] = []
    original = psycopg.Connection.execute

    def counting(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
        if text.strip():  # the pool's connection check sends an empty query
            statements.append(text)
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counting)
    store.keyword_search("docs", "apple river", 5, {"group": 1})
    assert len(statements) == 1 and "sparsevec" in statements[0]
    statements.clear()
    store.hybrid_search("docs", "apple river", np.ones(DIM, np.float32), 5, {"group": 1})
    assert len([s for s in statements if "UNION ALL" in s]) == 1
    assert not any(s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for s in statements)
