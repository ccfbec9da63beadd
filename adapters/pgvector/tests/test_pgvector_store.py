"""pgvector-specific behaviour: bulk COPY, transactions, index modes, SQL layout, options, outages."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr
from vectorseam_pgvector import PgVectorStore, create_store
from vectorseam_pgvector.connection import Connector, PgVectorError, is_transient
from vectorseam_pgvector.options import parse_options
from vectorseam_pgvector.store import CATALOG, TIE_SLACK, distance_to_score
from vectorseam_pgvector.testing import PostgresServer, free_port

from vectorseam.errors import (
    CollectionNotFoundError,
    ConfigError,
    DimensionMismatchError,
    StoreUnavailableError,
    ValidationError,
)
from vectorseam.stores.registry import available_stores, open_store
from vectorseam.testing import (
    assert_ranking,
    make_records,
    random_vectors,
    reference_candidates,
    reference_top_k,
)
from vectorseam.types import CollectionSpec, Metadata, Record

MakeStore = Callable[..., PgVectorStore]


def raw(pg_server: PostgresServer, statement: Any, params: Any = None) -> list[Any]:
    """A direct SQL look at what the store wrote, outside the adapter."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


# -- bulk writes ----------------------------------------------------------------------------------


def test_copy_bulk_upsert_of_10k_records(make_store: MakeStore, pg_server: PostgresServer) -> None:
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("bulk", 64, "cosine"))
    vectors = random_vectors(10_000, 64, seed=1)
    records = make_records(vectors, metadata=lambda i: {"bucket": i % 7, "tags": [f"t{i % 3}"], "x": i / 4})
    started = time.perf_counter()
    assert store.upsert("bulk", records) == 10_000
    elapsed = time.perf_counter() - started
    print(f"\nCOPY upsert of 10k x 64d records: {elapsed:.2f} s ({10_000 / elapsed:.0f} records/s)")
    assert store.count("bulk") == 10_000
    assert store.count("bulk", filter={"bucket": 3}) == len([i for i in range(10_000) if i % 7 == 3])
    # Every row reached the table as written (spot-check through SQL, not the adapter).
    rows = raw(
        pg_server,
        sql.SQL("SELECT id, text, metadata FROM {} WHERE id = ANY(%s) ORDER BY id").format(
            sql.Identifier(store.options.schema, "bulk")
        ),
        [["r0000", "r4321", "r9999"]],
    )
    assert [(r[0], r[1], r[2]["bucket"], r[2]["x"]) for r in rows] == [
        ("r0000", "text of r0000", 0, 0.0),
        ("r4321", "text of r4321", 4321 % 7, 4321 / 4),
        ("r9999", "text of r9999", 9999 % 7, 9999 / 4),
    ]
    # A second COPY over the same ids updates in place.
    changed = [Record(r.id, r.vector, "v2", {"bucket": -1}) for r in records[:5000]]
    assert store.upsert("bulk", changed) == 5000
    assert store.count("bulk") == 10_000
    assert store.count("bulk", filter={"bucket": -1}) == 5000
    q = vectors[17]
    hits = store.query("bulk", q, k=5)[0]
    want = reference_top_k(reference_candidates(records, q, "cosine"), 5)
    assert [h.id for h in hits] == [i for i, _ in want]


def test_batch_is_all_or_nothing_when_the_server_rejects_a_row(
    make_store: MakeStore, pg_server: PostgresServer
) -> None:
    """A failure inside the INSERT (here a CHECK constraint) rolls the whole COPY batch back."""
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("atomic", 8, "dot"))
    originals = make_records(random_vectors(3, 8, seed=2))
    store.upsert("atomic", originals)
    table = sql.Identifier(store.options.schema, "atomic")
    raw(pg_server, sql.SQL("ALTER TABLE {} ADD CONSTRAINT no_poison CHECK (id <> 'poison')").format(table))
    batch = [
        Record("r0000", random_vectors(1, 8, seed=3)[0], "changed"),
        *make_records(random_vectors(2000, 8, seed=4), prefix="new"),
        Record("poison", random_vectors(1, 8, seed=5)[0]),
    ]
    with pytest.raises(PgVectorError, match="no_poison"):
        store.upsert("atomic", batch)
    assert store.count("atomic") == 3
    (kept,) = store.fetch("atomic", ["r0000"])
    assert kept.text == "text of r0000"
    assert store.fetch("atomic", ["new0000", "poison"]) == []


def test_unstorable_text_is_refused_before_writing(make_store: MakeStore) -> None:
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("nul", 4, "dot"))
    v = random_vectors(3, 4, seed=6)
    for bad in (
        Record("a", v[1], "nul \x00 inside"),
        Record("b", v[1], "", {"k": "nul\x00"}),
        Record("c", v[1], "", {"tags": ["ok", "\ud800"]}),
        Record("d", v[1], "", {"k\x00": 1}),
    ):
        with pytest.raises(ValidationError, match=repr(bad.id)):
            store.upsert("nul", [Record("fine", v[0]), bad])
    assert store.count("nul") == 0


def test_zero_vector_refused_for_cosine(make_store: MakeStore) -> None:
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("zero", 4, "cosine"))
    with pytest.raises(ValidationError, match="zero vector"):
        store.upsert("zero", [Record("ok", np.ones(4, np.float32)), Record("z", np.zeros(4, np.float32))])
    assert store.count("zero") == 0
    store.upsert("zero", [Record("b", np.ones(4, np.float32)), Record("a", -np.ones(4, np.float32))])
    # A zero *query* has no direction: every similarity is 0, and ties go by id.
    hits = store.query("zero", np.zeros(4, np.float32), k=2)[0]
    assert [(h.id, h.score) for h in hits] == [("a", 0.0), ("b", 0.0)]


def test_metadata_numbers_keep_their_type(make_store: MakeStore) -> None:
    """JSONB prints numerics without exponents; floats must still come back as floats."""
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("nums", 4, "dot"))
    meta: Metadata = {
        "big_float": 1e16,
        "huge": 1e300,
        "tiny": 5e-324,
        "neg": -2.5e-7,
        "whole": 3.0,
        "int": 10**20,
        "small_int": -3,
        "flag": True,
        "none": None,
        "mixed": [1, 1.0, 1e22, "x", False],
    }
    store.upsert("nums", [Record("n", np.ones(4, np.float32), "", meta)])
    (got,) = store.fetch("nums", ["n"], include_vectors=False)
    assert got.metadata == meta
    assert {k: type(v) for k, v in got.metadata.items()} == {k: type(v) for k, v in meta.items()}
    assert [type(v) for v in got.metadata["mixed"]] == [int, float, float, str, bool]  # type: ignore[union-attr]


# -- layout and SQL -------------------------------------------------------------------------------


def test_tables_indexes_and_catalog(make_store: MakeStore, pg_server: PostgresServer) -> None:
    store = make_store(index="hnsw", hnsw_m=8, hnsw_ef_construction=32)
    store.ensure_collection(CollectionSpec("Mixed-Case_1", 5, "euclidean", {"embedder": "fp-1"}))
    store.ensure_collection(CollectionSpec("mixed-case_1", 3, "dot"))
    schema = store.options.schema
    tables = raw(
        pg_server,
        'SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name COLLATE "C"',
        [schema],
    )
    assert [t[0] for t in tables] == ["Mixed-Case_1", "_vectorseam_blobs", CATALOG, "_vectorseam_keywords",
                                      "_vectorseam_terms", "mixed-case_1"]
    catalog = raw(
        pg_server,
        sql.SQL("SELECT name, dimension, metric, metadata FROM {} ORDER BY name").format(
            sql.Identifier(schema, CATALOG)
        ),
    )
    assert catalog == [("Mixed-Case_1", 5, "euclidean", {"embedder": "fp-1"}), ("mixed-case_1", 3, "dot", {})]
    indexes = dict(
        raw(
            pg_server,
            "SELECT tablename, string_agg(indexdef, ' | ') FROM pg_indexes WHERE schemaname = %s GROUP BY tablename",
            [schema],
        )
    )
    assert "USING hnsw (embedding vector_l2_ops) WITH (m='8', ef_construction='32')" in indexes["Mixed-Case_1"]
    assert "vector_ip_ops" in indexes["mixed-case_1"]
    assert "USING gin (metadata jsonb_path_ops)" in indexes["Mixed-Case_1"]
    columns = raw(
        pg_server,
        "SELECT column_name, format_type(atttypid, atttypmod), collation_name "
        "FROM information_schema.columns c JOIN pg_attribute a ON a.attname = c.column_name "
        "AND a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
        "WHERE table_schema = %s AND table_name = 'Mixed-Case_1' ORDER BY ordinal_position",
        [schema],
    )
    assert columns == [
        ("id", "text", "C"),
        ("embedding", "vector(5)", None),
        ("text", "text", None),
        ("metadata", "jsonb", None),
        ("kw_terms", "integer[]", None),
        ("kw_tfs", "integer[]", None),
        ("kw", "sparsevec", None),
        ("kw_len", "integer", None),
    ]
    assert "USING gin (kw_terms)" in indexes["Mixed-Case_1"]


def test_exact_mode_builds_no_vector_index(make_store: MakeStore, pg_server: PostgresServer) -> None:
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("plain", 4, "cosine"))
    defs = [
        r[0] for r in raw(pg_server, "SELECT indexdef FROM pg_indexes WHERE schemaname = %s", [store.options.schema])
    ]
    assert not any("hnsw" in d for d in defs)
    store.upsert("plain", make_records(random_vectors(50, 4, seed=7)))
    plan = store.explain_query("plain", np.ones(4, np.float32), k=3)
    assert "Seq Scan" in plan and "hnsw" not in plan


def test_hnsw_index_answers_queries(make_store: MakeStore) -> None:
    """On a table large enough for the planner to prefer it, queries go through the HNSW index."""
    store = make_store(index="hnsw", ef_search=64)
    store.ensure_collection(CollectionSpec("ann", 16, "cosine"))
    vectors = random_vectors(3000, 16, seed=8)
    records = make_records(vectors, metadata=lambda i: {"bucket": i % 4})
    store.upsert("ann", records)  # a first load this large builds the index after the COPY
    queries = random_vectors(20, 16, seed=9)
    plan = store.explain_query("ann", queries[0], k=10)
    assert "Index Scan using vs_" in plan and "_hnsw" in plan, plan
    recall = []
    for q, hits in zip(queries, store.query("ann", queries, k=10), strict=True):
        want = {i for i, _ in reference_top_k(reference_candidates(records, q, "cosine"), 10)}
        recall.append(len(want & {h.id for h in hits}) / 10)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert np.mean(recall) >= 0.95, recall
    # Filtered ANN queries still fill k thanks to the iterative index scan.
    filtered = store.query("ann", queries[0], k=10, filter={"bucket": 2})[0]
    assert len(filtered) == 10 and all(h.metadata["bucket"] == 2 for h in filtered)
    # A k beyond what pgvector's HNSW search can return (ef_search <= 1000) is answered exactly.
    assert "hnsw" not in store.explain_query("ann", queries[1], k=1500)
    big = store.query("ann", queries[1], k=1500)[0]
    assert_ranking(big, reference_candidates(records, queries[1], "cosine"), 1500)


def test_ef_search_and_scan_mode_are_set_per_transaction(make_store: MakeStore) -> None:
    store = make_store(index="hnsw", ef_search=64)

    def settings(k: int) -> Callable[[psycopg.Connection[Any]], tuple[Any, ...]]:
        def read(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
            with conn.transaction():
                store._set_search_options(conn, k)
                row = conn.execute(
                    "SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')"
                ).fetchone()
            assert row is not None
            # SET LOCAL: back to the server default ('' before pgvector's library is loaded) afterwards.
            after = conn.execute("SELECT current_setting('hnsw.ef_search', true)").fetchone()
            assert after is not None and after[0] in ("", "40"), after
            return tuple(row)

        return read

    assert store._connector.run("test", settings(5)) == ("64", "strict_order")
    assert store._connector.run("test", settings(500)) == (str(500 + TIE_SLACK), "strict_order")
    assert store._connector.run("test", settings(968)) == ("1000", "strict_order")


def test_distance_to_score_convention() -> None:
    assert distance_to_score("cosine", 0.25) == 0.75
    assert distance_to_score("dot", -3.5) == 3.5
    assert distance_to_score("euclidean", 2.0) == -2.0


def test_existing_foreign_table_is_not_taken_over(make_store: MakeStore, pg_server: PostgresServer) -> None:
    store = make_store(index="exact")
    raw(pg_server, sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(store.options.schema, "theirs")))
    with pytest.raises(ValidationError, match="not a vectorseam collection"):
        store.ensure_collection(CollectionSpec("theirs", 4))
    assert "theirs" not in {c.name for c in store.collections()}


def test_dimension_limits(make_store: MakeStore) -> None:
    with pytest.raises(ValidationError, match="HNSW index takes at most 2000"):
        make_store(index="hnsw").ensure_collection(CollectionSpec("wide", 3072))
    exact = make_store(index="exact")
    assert exact.ensure_collection(CollectionSpec("wide", 3072)).dimension == 3072
    exact.upsert("wide", [Record("a", np.ones(3072, np.float32))])
    with pytest.raises(DimensionMismatchError):
        exact.upsert("wide", [Record("b", np.ones(3071, np.float32))])


def test_existing_exact_collection_gains_hnsw_index(make_store: MakeStore, pg_server: PostgresServer) -> None:
    exact = make_store(index="exact")
    exact.ensure_collection(CollectionSpec("later", 4, "dot"))
    exact.upsert("later", make_records(random_vectors(20, 4, seed=10)))
    hnsw = make_store(index="hnsw", schema=exact.options.schema)
    assert hnsw.ensure_collection(CollectionSpec("later", 4, "dot")).count == 20
    defs = [
        r[0]
        for r in raw(
            pg_server,
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'later'",
            [exact.options.schema],
        )
    ]
    assert any("USING hnsw (embedding vector_ip_ops)" in d for d in defs)


def _hnsw_indexes(pg_server: PostgresServer, schema: str, table: str) -> list[str]:
    return [r[0] for r in raw(pg_server, "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
                                         "AND indexdef LIKE '%%USING hnsw%%'", [schema, table])]


def test_bulk_load_defers_the_hnsw_index_of_an_empty_collection(
    make_store: MakeStore, pg_server: PostgresServer
) -> None:
    store = make_store(index="hnsw", index_build_memory="64MB")
    store.ensure_collection(CollectionSpec("bulk", 16, "cosine"))
    schema = store.options.schema
    records = make_records(random_vectors(1300, 16, seed=21))
    with store.bulk_load("bulk"):
        assert _hnsw_indexes(pg_server, schema, "bulk") == []
        store.upsert("bulk", records[:1000])  # large enough for upsert's own build-after path...
        assert _hnsw_indexes(pg_server, schema, "bulk") == []  # ...which leaves the index to bulk_load
        for start in range(1000, 1300, 64):  # small batches, as the load job writes them
            store.upsert("bulk", records[start : start + 64])
        q = records[5].vector
        want = reference_top_k(reference_candidates(records, q, "cosine"), 5)
        assert [h.id for h in store.query("bulk", q, k=5)[0]] == [i for i, _ in want]  # exact meanwhile
    (index,) = _hnsw_indexes(pg_server, schema, "bulk")
    assert "vector_cosine_ops" in index
    assert [h.id for h in store.query("bulk", q, k=5)[0]] == [i for i, _ in want]


def test_bulk_load_keeps_the_index_of_a_collection_with_rows(
    make_store: MakeStore, pg_server: PostgresServer
) -> None:
    store = make_store(index="hnsw")
    store.ensure_collection(CollectionSpec("busy", 8, "dot"))
    store.upsert("busy", make_records(random_vectors(10, 8, seed=22)))
    with store.bulk_load("busy"):
        assert len(_hnsw_indexes(pg_server, store.options.schema, "busy")) == 1  # readers keep it
        store.upsert("busy", make_records(random_vectors(10, 8, seed=23), prefix="more"))
    assert len(_hnsw_indexes(pg_server, store.options.schema, "busy")) == 1
    assert store.count("busy") == 20


def test_bulk_load_rebuilds_the_index_when_the_job_fails(make_store: MakeStore, pg_server: PostgresServer) -> None:
    store = make_store(index="hnsw")
    store.ensure_collection(CollectionSpec("failing", 8, "dot"))
    with pytest.raises(RuntimeError, match="job failed"), store.bulk_load("failing"):
        store.upsert("failing", make_records(random_vectors(10, 8, seed=24)))
        raise RuntimeError("job failed")
    assert len(_hnsw_indexes(pg_server, store.options.schema, "failing")) == 1


def test_index_dropped_by_a_killed_bulk_load_comes_back_with_ensure_collection(
    make_store: MakeStore, pg_server: PostgresServer
) -> None:
    store = make_store(index="hnsw")
    store.ensure_collection(CollectionSpec("killed", 8, "dot"))
    loading = store.bulk_load("killed")
    loading.__enter__()  # a process killed inside the load never runs __exit__
    store.upsert("killed", make_records(random_vectors(10, 8, seed=25)))
    assert _hnsw_indexes(pg_server, store.options.schema, "killed") == []
    again = make_store(index="hnsw", schema=store.options.schema)  # the next run
    assert again.ensure_collection(CollectionSpec("killed", 8, "dot")).count == 10
    assert len(_hnsw_indexes(pg_server, store.options.schema, "killed")) == 1


def test_scan_survives_concurrent_deletes(make_store: MakeStore) -> None:
    """Keyset pages hold no transaction open; rows deleted between pages are simply not seen."""
    store = make_store(index="exact")
    store.ensure_collection(CollectionSpec("scan", 4, "dot"))
    store.upsert("scan", make_records(random_vectors(100, 4, seed=11)))
    seen: list[str] = []
    for n, page in enumerate(store.scan("scan", batch_size=10, include_vectors=False)):
        seen += [r.id for r in page]
        if n == 2:
            store.delete("scan", ids=[f"r{i:04d}" for i in range(50, 60)])
    assert seen == [f"r{i:04d}" for i in range(100) if not 50 <= i < 60]


def test_concurrent_writers_and_collection_creation(make_store: MakeStore) -> None:
    store = make_store(index="exact", pool_max=4)
    other = make_store(index="exact", schema=store.options.schema)
    errors: list[BaseException] = []

    def work(s: PgVectorStore, n: int) -> None:
        try:
            s.ensure_collection(CollectionSpec("shared", 4, "dot"))
            s.upsert("shared", make_records(random_vectors(200, 4, seed=n), prefix=f"w{n}-"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(store if n % 2 else other, n)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count("shared") == 1200


# -- options and registration ---------------------------------------------------------------------


def test_registered_as_entry_point(pg_server: PostgresServer) -> None:
    assert available_stores()["pgvector"] == "vectorseam_pgvector:create_store"
    store = open_store("pgvector", {"dsn": pg_server.dsn(), "schema": "via_registry", "index": "exact"})
    try:
        assert isinstance(store, PgVectorStore)
        assert store.capabilities.name == "pgvector"
    finally:
        store.close()
        raw(pg_server, "DROP SCHEMA via_registry CASCADE")


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"unknown options for the pgvector store: 'dns' \(did you mean 'dsn'\?\)"):
        parse_options({"dns": "postgresql://x"})
    with pytest.raises(ConfigError, match="'index' must be 'hnsw' or 'exact'"):
        parse_options({"index": "ivfflat"})
    with pytest.raises(ConfigError, match=r"'ef_search' must be an integer between 1 and 1000 \(got 0\)"):
        parse_options({"ef_search": 0})
    with pytest.raises(ConfigError, match="ef_search"):
        parse_options({"ef_search": 1001})
    with pytest.raises(ConfigError, match="hnsw_ef_construction"):
        parse_options({"hnsw_m": 48, "hnsw_ef_construction": 64})
    with pytest.raises(ConfigError, match="pool_max"):
        parse_options({"pool_min": 5, "pool_max": 2})
    with pytest.raises(ConfigError, match="schema"):
        parse_options({"schema": "bad schema; --"})
    with pytest.raises(ConfigError, match="connect_timeout"):
        parse_options({"connect_timeout": "soon"})
    with pytest.raises(ConfigError, match="retries"):
        parse_options({"retries": True})
    with pytest.raises(ConfigError, match="retries"):
        parse_options({"retries": 21})
    for bad in ("lots", "512", "0MB", "512 MB", "1.5GB", True):
        with pytest.raises(ConfigError, match="index_build_memory"):
            parse_options({"index_build_memory": bad})
    assert parse_options({"index_build_memory": " 2GB"}).index_build_memory == "2GB"
    opts = parse_options(
        {"dsn": SecretStr("postgresql://u:hunter2@h/db"), "ef_search": "200", "statement_timeout": 0,
         "pool_timeout": "2.5", "schema": "app"}
    )
    assert (opts.dsn.get_secret_value(), opts.ef_search, opts.pool_timeout) == ("postgresql://u:hunter2@h/db", 200, 2.5)
    assert opts.schema == "app" and parse_options({}).schema == "vectorseam"
    assert "hunter2" not in repr(opts)
    policy = parse_options({"retries": 2, "retry_backoff": 0.5}).retry_policy
    assert (policy.attempts, policy.backoff, policy.jitter) == (3, 0.5, 0.5)  # equal jitter, as before


def test_invalid_dsn_is_a_config_error_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        create_store(dsn="host=h password=hunter2 = broken")
    assert "hunter2" not in str(info.value)


# -- outages ------------------------------------------------------------------------------------------


def test_server_down_raises_store_unavailable_quickly() -> None:
    port = free_port()  # nothing listens there
    started = time.perf_counter()
    with pytest.raises(StoreUnavailableError) as info:
        create_store(
            dsn=f"postgresql://app:hunter2@127.0.0.1:{port}/app", retries=2, retry_backoff=0.05, connect_timeout=1
        )
    elapsed = time.perf_counter() - started
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "pgvector" in message and "3 attempts" in message
    assert "hunter2" not in message
    assert info.value.__cause__ is None
    assert info.value.__context__ is None, "client internals (which hold the password) must not be chained"
    assert elapsed < 5, f"took {elapsed:.1f} s"


def test_connection_retries_follow_the_shared_policy() -> None:
    """The connector's loop is vectorseam.retrying's: retries + 1 attempts, waits doubling from
    retry_backoff with equal jitter (at least half of each step), then one scrubbed error."""
    port = free_port()
    waits: list[float] = []
    options = parse_options({"dsn": f"postgresql://app:hunter2@127.0.0.1:{port}/app", "retries": 3,
                             "retry_backoff": 0.1, "connect_timeout": 1})
    connector = Connector(options, sleep=waits.append)
    with pytest.raises(StoreUnavailableError, match=rf"127\.0\.0\.1:{port}\) is unavailable after 4 attempts while probing"):
        connector.run("probing", lambda conn: conn.execute("SELECT 1"), pooled=False)
    assert len(waits) == 3
    for wait, step in zip(waits, (0.1, 0.2, 0.4), strict=True):
        assert step / 2 <= wait <= step


def test_wrong_password_is_reported_at_once(pg_server: PostgresServer) -> None:
    dsn = pg_server.dsn().replace(pg_server.password, "not-the-password")
    started = time.perf_counter()
    with pytest.raises(StoreUnavailableError) as info:
        create_store(dsn=dsn, retries=5, retry_backoff=1.0)
    assert time.perf_counter() - started < 2, "an authentication failure must not be retried"
    message = str(info.value)
    assert "password authentication failed" in message and f"127.0.0.1:{pg_server.port}" in message
    assert "not-the-password" not in message


def test_store_recovers_after_a_restart_and_reports_an_outage(tmp_path: Any) -> None:
    """A private server is stopped under a live store: the outage is a clear error, and once the
    server is back the same store works again (dead pooled connections are replaced)."""
    with PostgresServer() as server:
        store = create_store(
            dsn=server.dsn(), index="exact", retries=1, retry_backoff=0.05, pool_timeout=1, connect_timeout=1
        )
        try:
            store.ensure_collection(CollectionSpec("c", 4, "dot"))
            store.upsert("c", make_records(random_vectors(5, 4, seed=12)))
            server.pause()
            started = time.perf_counter()
            with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{server.port}"):
                store.count("c")
            assert time.perf_counter() - started < 10
            server.resume()
            assert store.count("c") == 5
            hits = store.query("c", np.ones(4, np.float32), k=2)[0]
            assert len(hits) == 2 and not any(math.isnan(h.score) for h in hits)
        finally:
            store.close()


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.errors.SerializationFailure("could not serialize access"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.TooManyConnections("sorry, too many clients already"), True),
        (psycopg.InterfaceError("the connection is closed"), True),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (psycopg.errors.DiskFull("could not extend file"), False),
        (psycopg.errors.UndefinedTable("relation does not exist"), False),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
    ],
)
def test_transient_error_classification(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_statement_timeout_is_reported_without_retrying(make_store: MakeStore) -> None:
    store = make_store(index="exact", statement_timeout=0.2, retries=3, retry_backoff=1.0)
    started = time.perf_counter()
    with pytest.raises(PgVectorError, match="statement_timeout is 0.2 s"):
        store._connector.run("sleeping", lambda conn: conn.execute("SELECT pg_sleep(3)"))
    assert time.perf_counter() - started < 2.5


def test_collection_info_reads_one_collection_only(make_store: MakeStore, pg_server: PostgresServer) -> None:
    """Query paths call collection_info: it must not count every table (collections() does)."""
    store = make_store()
    store.ensure_collection(CollectionSpec("mine", 3, "dot", {"embedder": "fp-1"}))
    store.upsert("mine", [Record(f"r{i}", np.ones(3, np.float32), "") for i in range(5)])
    store.ensure_collection(CollectionSpec("other", 3, "dot"))
    raw(pg_server, sql.SQL("DROP TABLE {}").format(sql.Identifier(store.options.schema, "other")))
    info = store.collection_info("mine")  # the other collection's table is gone: counting it would fail
    assert (info.name, info.dimension, info.metric, dict(info.metadata), info.count) == (
        "mine", 3, "dot", {"embedder": "fp-1"}, 5)
    with pytest.raises(PgVectorError, match=r'relation ".*other" does not exist'):
        store.collections()
    with pytest.raises(CollectionNotFoundError) as err:
        store.collection_info("nope")
    assert str(err.value) == ("collection 'nope' does not exist in the pgvector store (existing: mine, other); "
                              "create it with `vectorseam ingest FILE --collection nope`")
