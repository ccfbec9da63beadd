"""The PostgreSQL + pgvector store: one table per collection, a catalog table for their specs.

Layout (in the configured schema, ``vectorseam`` by default)::

    _vectorseam_collections (name, dimension, metric, metadata jsonb)     -- the catalog
    "<collection>" (id text COLLATE "C" PRIMARY KEY, embedding vector(n), text, metadata jsonb,
                    kw_terms, kw_tfs, kw sparsevec, kw_len)               -- BM25, see .keywords

Design choices, and why:

* **ids sort in code-point order** (``COLLATE "C"``) so that ties broken by id, and scan pages, come
  out in the same order as the in-memory store and every other backend, whatever the database's locale.
* **Two index modes.** ``hnsw`` builds an HNSW index for the collection's metric and queries it
  with ``hnsw.ef_search`` set per transaction (and pgvector 0.8's iterative scan, so a selective
  filter still yields k hits). An ordered index scan can only sort by distance, so the index picks
  ``k + TIE_SLACK`` candidates and an outer query orders them by (distance, id). ``exact`` builds no
  vector index and disables index scans for the query: a sequential scan with an exact top-k sort.
* **Filters are SQL over JSONB with bound parameters only** (see :mod:`.filter_sql`); a GIN index on
  ``metadata`` serves the containment tests that ``eq``/``in`` compile to.
* **Bulk upsert is COPY into a temporary table, then one INSERT ... ON CONFLICT**, in a single
  transaction: all of a batch is written or none of it, and a retry after a lost connection simply
  writes the same batch again.
* **The catalog and the tables are changed under an advisory lock** so that two processes creating
  the same collection at once do not collide.
* **Keyword (BM25) and hybrid search run in PostgreSQL** (:mod:`.keywords`): document weights in a
  ``sparsevec`` column, document frequencies updated in each write's transaction, the filter in the
  same statement. Every process over the database answers alike on its next query; no sidecar.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg import sql
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb

from vectorseam.contract import (
    check_batch_size,
    check_compatible,
    check_delete_args,
    check_k,
    collection_not_found,
)
from vectorseam.errors import (
    CollectionNotFoundError,
    ConfigError,
    ValidationError,
)
from vectorseam.filters import Filter, FilterLike, parse_filter, require_operators
from vectorseam.keywords import check_depth, check_rrf, fuse_hits, query_terms
from vectorseam.types import (
    Capabilities,
    CollectionInfo,
    CollectionSpec,
    Hit,
    Metadata,
    Metric,
    Record,
    as_query_matrix,
    ids_list,
    validate_records,
)
from vectorseam_pgvector import blobs, keywords
from vectorseam_pgvector.connection import Connector, PgVectorError
from vectorseam_pgvector.filter_sql import where_clause
from vectorseam_pgvector.jsontext import encode_object, unstorable
from vectorseam_pgvector.options import EF_SEARCH_RANGE, PgVectorOptions
from vectorseam_pgvector.search_api import PgSearchApi

_log = logging.getLogger(__name__)
CATALOG = "_vectorseam_collections"
TIE_SLACK = 32  # extra HNSW candidates so that ties at the k-th place are still broken by id
MAX_DIMENSION = 16000  # pgvector's vector type
MAX_HNSW_DIMENSION = 2000  # pgvector's HNSW index on the vector type
BULK_BUILD_MIN = 1000  # a first load at least this large builds the HNSW index after the rows are in

# metric -> (distance operator, HNSW operator class)
_OPERATORS: dict[str, tuple[str, str]] = {
    "cosine": ("<=>", "vector_cosine_ops"),
    "dot": ("<#>", "vector_ip_ops"),
    "euclidean": ("<->", "vector_l2_ops"),
}


def distance_to_score(metric: str, distance: float) -> float:
    """pgvector distances to vectorseam's higher-is-more-similar scores (see vectorseam.types)."""
    if metric == "cosine":
        return 1.0 - distance  # <=> is 1 - cosine similarity
    return -distance  # <#> is the negated inner product; <-> the L2 distance, negated by convention


def _storable(checked: list[Record], metric: str) -> list[Record]:
    """``checked`` when PostgreSQL can store every record (no NUL characters) and, for a cosine collection,
    no vector is zero (its direction, and so its similarity, is undefined); else ValidationError naming it."""
    for record in checked:
        problem = unstorable(record.text, record.metadata)
        if problem:
            raise ValidationError(
                f"record {record.id!r}: {problem}, which PostgreSQL cannot store; remove those characters"
            )
    if metric == "cosine" and checked:
        # float64: float32 squares overflow (3.4e38) or underflow (1e-23) and would misreport zero
        norms = np.linalg.norm(np.stack([np.asarray(r.vector, dtype=np.float64) for r in checked]), axis=1)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValidationError(
                f"record {checked[int(zero[0])].id!r}: a zero vector has no direction, so cosine similarity "
                "is undefined; use the 'dot' or 'euclidean' metric or drop the record"
            )
    return checked


def _index_name(collection: str, kind: str) -> str:
    # Collection names may use all 63 bytes PostgreSQL allows, so derived names are hashed instead.
    return f"vs_{hashlib.sha1(collection.encode()).hexdigest()[:20]}_{kind}"


def _version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


class PgVectorStore(blobs.PgBlobs, PgSearchApi):
    """A :class:`~vectorseam.store.VectorStore` on PostgreSQL with the pgvector extension."""

    def __init__(self, options: PgVectorOptions) -> None:
        self.options = options
        self._vector_info: TypeInfo | None = None
        self.pgvector_version = ""
        self._connector = Connector(options, configure=self._configure)
        self._catalog = sql.Identifier(options.schema, CATALOG)
        self._bulk_loading: set[str] = set()  # collections whose HNSW index a bulk_load() defers
        self._connector.run("setting up the schema", self._setup, pooled=False)
        self._connector.open_pool()

    def __repr__(self) -> str:
        return (
            f"PgVectorStore({self._connector.endpoint}/{self._connector.endpoint.dbname}, "
            f"schema={self.options.schema!r}, index={self.options.index!r})"
        )

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="pgvector",
            persistent=True,
            approximate=self.options.index == "hnsw",
            native_keywords=True,
            database_option="dsn",
            notes=(
                f"index={self.options.index}"
                + (
                    f" (HNSW m={self.options.hnsw_m}, ef_construction={self.options.hnsw_ef_construction}, "
                    f"ef_search={self.options.ef_search})"
                    if self.options.index == "hnsw"
                    else " (exact scan)"
                ),
                "filters run in PostgreSQL as SQL over the JSONB metadata column",
                "keyword_search/hybrid_search: BM25 in PostgreSQL (sparsevec + transactional document "
                "frequencies), exact Lucene BM25 after a rescoring stage; hybrid is RRF of two pushed-down lists",
            ),
        )

    # -- setup ------------------------------------------------------------------------------------
    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        schema = self.options.schema
        with conn.transaction():
            self._lock(conn)
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            if row is None:
                try:
                    with conn.transaction():
                        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except (
                    psycopg.errors.InsufficientPrivilege,
                    psycopg.errors.UndefinedFile,
                    psycopg.errors.FeatureNotSupported,
                ) as exc:
                    raise ConfigError(
                        f"the pgvector extension is not installed in database "
                        f"{self._connector.endpoint.dbname!r} at {self._connector.endpoint} and cannot be "
                        f"created ({exc.diag.message_primary}); have an administrator install pgvector on the "
                        "server and run CREATE EXTENSION vector in that database"
                    ) from None
                row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            assert row is not None
            self.pgvector_version = str(row[0])
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    ' name text COLLATE "C" PRIMARY KEY,'
                    " dimension integer NOT NULL,"
                    " metric text NOT NULL,"
                    " metadata jsonb NOT NULL DEFAULT '{{}}',"
                    " created_at timestamptz NOT NULL DEFAULT now())"
                ).format(self._catalog)
            )
            keywords.setup(conn, schema)
            blobs.setup(conn, schema, CATALOG)  # collection blobs (a tuned profile), see .blobs
            self._vector_info = TypeInfo.fetch(conn, "vector")
        if self._vector_info is None:
            raise ConfigError("the pgvector 'vector' type is not visible on the connection's search_path")

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Teach each pooled connection the vector type (numpy arrays in, Vector objects out)."""
        register_vector_info(conn, self._vector_info)

    def _lock(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"vectorseam:{self.options.schema}"])

    @property
    def _iterative_scan(self) -> bool:
        return _version_tuple(self.pgvector_version) >= (0, 8, 0)

    # -- catalog ----------------------------------------------------------------------------------
    def _table(self, collection: str) -> sql.Identifier:
        return sql.Identifier(self.options.schema, collection)

    def _spec(self, conn: psycopg.Connection[Any], collection: str) -> tuple[int, Metric]:
        row = None
        if isinstance(collection, str) and "\x00" not in collection:
            row = conn.execute(
                sql.SQL("SELECT dimension, metric FROM {} WHERE name = %s").format(self._catalog), [collection]
            ).fetchone()
        if row is None:
            names = [r[0] for r in conn.execute(sql.SQL("SELECT name FROM {} ORDER BY name").format(self._catalog))]
            raise CollectionNotFoundError(
                f"collection {collection!r} does not exist in the pgvector store (schema {self.options.schema!r} "
                f"at {self._connector.endpoint}; existing: {', '.join(names) or 'none'})"
            )
        return int(row[0]), row[1]

    def _count(
        self,
        conn: psycopg.Connection[Any],
        collection: str,
        where: sql.Composable = sql.SQL("TRUE"),
        params: Sequence[object] = (),
    ) -> int:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}").format(self._table(collection), where), params
        ).fetchone()
        return int(row[0]) if row else 0

    # -- collections ------------------------------------------------------------------------------
    def ensure_collection(self, spec: CollectionSpec) -> CollectionInfo:
        if spec.dimension > MAX_DIMENSION:
            raise ValidationError(
                f"collection {spec.name!r}: pgvector stores at most {MAX_DIMENSION} dimensions, "
                f"{spec.dimension} were requested"
            )
        if self.options.index == "hnsw" and spec.dimension > MAX_HNSW_DIMENSION:
            raise ValidationError(
                f"collection {spec.name!r}: pgvector's HNSW index takes at most {MAX_HNSW_DIMENSION} dimensions, "
                f'{spec.dimension} were requested; set the store option index = "exact" or use a smaller model'
            )

        def ensure(conn: psycopg.Connection[Any]) -> CollectionInfo:
            with conn.transaction():
                self._lock(conn)
                row = conn.execute(
                    sql.SQL("SELECT dimension, metric, metadata FROM {} WHERE name = %s").format(self._catalog),
                    [spec.name],
                ).fetchone()
                if row is None:
                    return self._create(conn, spec)
                existing = CollectionInfo(spec.name, int(row[0]), row[1], dict(row[2]), 0)
                check_compatible(existing, spec)
                if self.options.index == "hnsw":
                    self._create_hnsw_index(conn, spec.name, existing.metric)
                return replace(existing, count=self._count(conn, spec.name))

        return self._connector.run(f"creating collection {spec.name!r}", ensure)

    def _create(self, conn: psycopg.Connection[Any], spec: CollectionSpec) -> CollectionInfo:
        """The collection's table, its metadata, vector and keyword indexes, and its catalog row (in the
        caller's transaction, under the catalog lock)."""
        table = self._table(spec.name)
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} ("
                        ' id text COLLATE "C" PRIMARY KEY,'
                        " embedding vector({}) NOT NULL,"
                        " text text NOT NULL DEFAULT '',"
                        " metadata jsonb NOT NULL DEFAULT '{{}}', {})"
                    ).format(table, sql.Literal(spec.dimension), keywords.column_definitions())
                )
        except psycopg.errors.DuplicateTable:
            raise ValidationError(
                f"a table named {spec.name!r} already exists in schema {self.options.schema!r} but is not a "
                "vectorseam collection; choose another collection name or set the store option 'schema'"
            ) from None
        conn.execute(
            sql.SQL("CREATE INDEX {} ON {} USING gin (metadata jsonb_path_ops)").format(
                sql.Identifier(_index_name(spec.name, "meta")), table
            )
        )
        if self.options.index == "hnsw":
            self._create_hnsw_index(conn, spec.name, spec.metric)
        keywords.create(conn, self.options.schema, spec.name, table, _index_name(spec.name, "kw"),
                        add_columns=False)
        conn.execute(
            sql.SQL("INSERT INTO {} (name, dimension, metric, metadata) VALUES (%s, %s, %s, %s)").format(
                self._catalog
            ),
            [spec.name, spec.dimension, spec.metric, Jsonb(dict(spec.metadata))],
        )
        return CollectionInfo(spec.name, spec.dimension, spec.metric, dict(spec.metadata), 0)

    def _create_hnsw_index(self, conn: psycopg.Connection[Any], collection: str, metric: str) -> None:
        # A graph that outgrows maintenance_work_mem (64 MB by default, about 30k 384-d rows) makes the
        # build page to disk and run many times slower; raise it for this transaction only.
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", [self.options.index_build_memory])
        conn.execute(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding {}) WITH (m = {}, ef_construction = {})"
            ).format(
                sql.Identifier(_index_name(collection, "hnsw")),
                self._table(collection),
                sql.SQL(_OPERATORS[metric][1]),
                sql.Literal(self.options.hnsw_m),
                sql.Literal(self.options.hnsw_ef_construction),
            )
        )

    @contextmanager
    def bulk_load(self, collection: str) -> Iterator[None]:
        """Defer the HNSW index while a load job fills an empty collection; build it once at the end.

        Inserting rows one batch at a time into the HNSW graph costs milliseconds per row; building
        the graph over all rows afterwards is several times faster (pgvector's own advice). Queries
        in between are exact and correct, only slower. If the job is killed, the next
        ``ensure_collection`` builds the missing index over the rows already there. A collection that
        already holds rows keeps its index: its readers must not lose it.
        """
        if self.options.index != "hnsw":
            yield
            return

        def drop_if_empty(conn: psycopg.Connection[Any]) -> tuple[bool, str]:
            with conn.transaction():
                _, metric = self._spec(conn, collection)
                return self._drop_hnsw_if_empty(conn, collection), metric

        deferred, metric = self._connector.run(f"preparing {collection!r} for a bulk load", drop_if_empty)

        def build(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                self._create_hnsw_index(conn, collection, metric)

        if deferred:
            self._bulk_loading.add(collection)
        try:
            yield
        except Exception:
            # Readers should not be left without the index after a failed job. (An interrupt skips
            # this: the next ensure_collection builds it.) The job's own error matters more.
            if deferred:
                with suppress(Exception):
                    self._connector.run(f"building the HNSW index of {collection!r}", build)
            raise
        finally:
            self._bulk_loading.discard(collection)
        if deferred:
            self._connector.run(f"building the HNSW index of {collection!r}", build)

    def collections(self) -> list[CollectionInfo]:
        def list_all(conn: psycopg.Connection[Any]) -> list[CollectionInfo]:
            with conn.transaction():
                rows = conn.execute(
                    sql.SQL("SELECT name, dimension, metric, metadata FROM {} ORDER BY name").format(self._catalog)
                ).fetchall()
                return [
                    CollectionInfo(name, int(dim), metric, dict(meta), self._count(conn, name))
                    for name, dim, metric, meta in rows
                ]

        return self._connector.run("listing collections", list_all)

    def collection_info(self, collection: str) -> CollectionInfo:
        """One catalog row and a count of this collection's table only (never of the others)."""

        def lookup(conn: psycopg.Connection[Any]) -> CollectionInfo:
            with conn.transaction():
                row = None
                if isinstance(collection, str) and "\x00" not in collection:
                    row = conn.execute(
                        sql.SQL("SELECT dimension, metric, metadata FROM {} WHERE name = %s").format(self._catalog),
                        [collection],
                    ).fetchone()
                if row is None:
                    names = [r[0] for r in conn.execute(sql.SQL("SELECT name FROM {}").format(self._catalog))]
                    raise collection_not_found("pgvector", collection, names)
                dim, metric, meta = row
                return CollectionInfo(collection, int(dim), metric, dict(meta), self._count(conn, collection))

        return self._connector.run(f"reading collection {collection!r}", lookup)

    def drop_collection(self, collection: str) -> bool:
        def drop(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                self._lock(conn)
                row = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE name = %s RETURNING name").format(self._catalog), [collection]
                ).fetchone()
                if row is None:
                    return False
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table(collection)))
                keywords.drop(conn, self.options.schema, collection)
                return True

        if not isinstance(collection, str) or "\x00" in collection:
            return False
        return self._connector.run(f"dropping collection {collection!r}", drop)

    # -- writes -----------------------------------------------------------------------------------
    def upsert(self, collection: str, records: Iterable[Record]) -> int:
        dimension, metric = self._connector.run(
            f"looking up collection {collection!r}", lambda conn: self._spec(conn, collection)
        )
        checked = _storable(validate_records(records, dimension), metric)
        if not checked:
            return 0
        counts = keywords.token_counts([r.text for r in checked])  # before the transaction: it holds locks

        def write(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                self._spec(conn, collection)  # it may have been dropped since the look-up
                return self._write(conn, collection, metric, checked, counts)

        return self._connector.run(f"writing {len(checked)} records to {collection!r}", write)

    def _write(self, conn: psycopg.Connection[Any], collection: str, metric: str, checked: list[Record],
               counts: list[Counter[str]]) -> int:
        """Stage the records by binary COPY, then insert or update them from the stage with their keyword
        columns, in the caller's transaction; returns how many rows were written."""
        table = self._table(collection)
        # The table lock first, then the keyword statistics (see keywords.prepare_upsert).
        conn.execute(sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(table))
        pending = keywords.prepare_upsert(conn, self.options.schema, collection, table, [r.id for r in checked], counts)
        conn.execute(
            "CREATE TEMP TABLE vectorseam_stage (id text, embedding vector, text text, "
            "metadata jsonb, kw_terms integer[], kw_tfs integer[], kw text, kw_len integer) ON COMMIT DROP"
        )
        with conn.cursor() as cur:
            with cur.copy(
                "COPY vectorseam_stage (id, embedding, text, metadata, kw_terms, kw_tfs, kw, kw_len)"
                " FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "vector", "text", "jsonb", "int4[]", "int4[]", "text", "int4"])
                for i, r in enumerate(checked):
                    kw = pending.rows[i] if pending is not None else (None, None, None, None)
                    copy.write_row([r.id, r.vector, r.text, Jsonb(r.metadata, dumps=encode_object), *kw])
            # A large first batch builds the graph once after the rows are in, unless a
            # bulk_load() defers the index to its own end.
            rebuild = (len(checked) >= BULK_BUILD_MIN and collection not in self._bulk_loading
                       and self._drop_hnsw_if_empty(conn, collection))
            with_kw = pending is not None
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} (id, embedding, text, metadata{})"
                    " SELECT id, embedding, text, metadata{} FROM vectorseam_stage"
                    " ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, text = EXCLUDED.text,"
                    " metadata = EXCLUDED.metadata{}"
                ).format(
                    table,
                    sql.SQL(", kw_terms, kw_tfs, kw, kw_len" if with_kw else ""),
                    sql.SQL(", kw_terms, kw_tfs, kw::sparsevec, kw_len" if with_kw else ""),
                    sql.SQL(", kw_terms = EXCLUDED.kw_terms, kw_tfs = EXCLUDED.kw_tfs, kw = EXCLUDED.kw,"
                            " kw_len = EXCLUDED.kw_len" if with_kw else ""),
                )
            )
            written = cur.rowcount
            if pending is not None:
                keywords.finish(conn, self.options.schema, collection, pending)
            if rebuild:
                self._create_hnsw_index(conn, collection, metric)
            return written

    def _drop_hnsw_if_empty(self, conn: psycopg.Connection[Any], collection: str) -> bool:
        """Drop the HNSW index of an empty collection before a first load; True if dropped.

        Building the graph once over all rows is several times faster than inserting rows into it
        one by one. The table is locked until the transaction ends, which only delays readers of a
        collection that is still empty; the caller builds the index again (in the same transaction
        for a large upsert, at the end of the load for bulk_load()).
        """
        if self.options.index != "hnsw":
            return False
        table = self._table(collection)
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table)).fetchone() != (False,):
            return False
        conn.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(
                sql.Identifier(self.options.schema, _index_name(collection, "hnsw"))
            )
        )
        return True

    def delete(self, collection: str, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        check_delete_args(ids, filter)
        table = self._table(collection)
        if ids is not None:
            wanted = ids_list(ids)
            where: sql.Composable = sql.SQL("id = ANY(%s)")
            params: list[object] = [wanted]
        else:
            where, params = where_clause(self._filter(filter))

        def remove(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                self._spec(conn, collection)
                return keywords.delete_rows(conn, self.options.schema, collection, table, where, params)

        return self._connector.run(f"deleting from {collection!r}", remove)

    # -- reads ------------------------------------------------------------------------------------
    def _filter(self, filter: FilterLike) -> Filter | None:
        f = parse_filter(filter)
        require_operators(f, self.capabilities.filter_operators, "pgvector")
        return f

    def count(self, collection: str, filter: FilterLike = None) -> int:
        where, params = where_clause(self._filter(filter))

        def count(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                self._spec(conn, collection)
                return self._count(conn, collection, where, params)

        return self._connector.run(f"counting {collection!r}", count)

    def fetch(self, collection: str, ids: Sequence[str], include_vectors: bool = True) -> list[Record]:
        wanted = ids_list(ids)
        columns = self._columns(include_vectors)

        def fetch(conn: psycopg.Connection[Any]) -> list[Record]:
            with conn.transaction():
                self._spec(conn, collection)
                if not wanted:
                    return []
                rows = conn.execute(
                    sql.SQL("SELECT {} FROM {} WHERE id = ANY(%s)").format(columns, self._table(collection)), [wanted]
                ).fetchall()
            found = {row[0]: _record(row, include_vectors) for row in rows}
            return [found[i] for i in wanted if i in found]

        return self._connector.run(f"fetching from {collection!r}", fetch)

    def scan(
        self,
        collection: str,
        batch_size: int = 1000,
        filter: FilterLike = None,
        include_vectors: bool = True,
    ) -> Iterator[list[Record]]:
        """Keyset pages ordered by id: each page is its own short query, so no transaction stays open."""
        check_batch_size(batch_size)
        where, params = where_clause(self._filter(filter))
        self._connector.run(f"looking up collection {collection!r}", lambda conn: self._spec(conn, collection))
        return self._pages(collection, batch_size, where, params, include_vectors)

    def _pages(
        self, collection: str, batch_size: int, where: sql.Composable, params: list[object], include_vectors: bool
    ) -> Iterator[list[Record]]:
        columns = self._columns(include_vectors)
        table = self._table(collection)
        first = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id LIMIT %s").format(columns, table, where)
        after = sql.SQL('SELECT {} FROM {} WHERE {} AND id > %s COLLATE "C" ORDER BY id LIMIT %s').format(
            columns, table, where
        )
        last: str | None = None
        while True:

            def page(conn: psycopg.Connection[Any], last: str | None = last) -> list[Any]:
                with conn.transaction():
                    self._spec(conn, collection)
                    if last is None:
                        return conn.execute(first, [*params, batch_size]).fetchall()
                    return conn.execute(after, [*params, last, batch_size]).fetchall()

            rows = self._connector.run(f"scanning {collection!r}", page)
            if rows:
                yield [_record(row, include_vectors) for row in rows]
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    @staticmethod
    def _columns(include_vectors: bool) -> sql.Composable:
        return sql.SQL("id, text, metadata, embedding" if include_vectors else "id, text, metadata")

    def query(
        self,
        collection: str,
        vectors: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        include_vectors: bool = False,
    ) -> list[list[Hit]]:
        check_k(k)
        where, where_params = where_clause(self._filter(filter))

        def search(conn: psycopg.Connection[Any]) -> list[list[Hit]]:
            with conn.transaction():
                dimension, metric = self._spec(conn, collection)
                queries = as_query_matrix(vectors, dimension)
                self._set_search_options(conn, k)
                out: list[list[Hit]] = []
                for q in queries:
                    statement, params = self._query_sql(collection, metric, q, k, where, where_params, include_vectors)
                    rows = conn.execute(statement, params).fetchall()
                    out.append(
                        [
                            Hit(
                                id=row[0],
                                score=distance_to_score(metric, float(row[-1])),
                                text=row[1],
                                metadata=dict(row[2]),
                                vector=row[3].to_numpy() if include_vectors else None,
                            )
                            for row in rows
                        ]
                    )
                return out

        return self._connector.run(f"querying {collection!r}", search)

    def explain_query(self, collection: str, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None) -> str:
        """PostgreSQL's plan for one query, e.g. to check that the HNSW index is used."""
        check_k(k)
        where, where_params = where_clause(self._filter(filter))

        def explain(conn: psycopg.Connection[Any]) -> str:
            with conn.transaction():
                dimension, metric = self._spec(conn, collection)
                q = as_query_matrix(vector, dimension)[0]
                self._set_search_options(conn, k)
                statement, params = self._query_sql(collection, metric, q, k, where, where_params, False)
                rows = conn.execute(sql.SQL("EXPLAIN {}").format(statement), params).fetchall()
                return "\n".join(str(r[0]) for r in rows)

        return self._connector.run(f"explaining a query on {collection!r}", explain)

    def _exact_search(self, k: int) -> bool:
        """Exact mode, or a k the HNSW search cannot serve: pgvector caps ef_search at 1000 and an
        iterative scan at hnsw.max_scan_tuples, so a larger k would silently return fewer rows."""
        return self.options.index == "exact" or k + TIE_SLACK > EF_SEARCH_RANGE[1]

    def _set_search_options(self, conn: psycopg.Connection[Any], k: int) -> None:
        if self._exact_search(k):
            conn.execute("SET LOCAL enable_indexscan = off")
            return
        ef_search = max(self.options.ef_search, k + TIE_SLACK)
        conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
        if self._iterative_scan:  # keep scanning the graph until k rows pass the filter
            conn.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")

    def _query_sql(
        self,
        collection: str,
        metric: str,
        q: npt.NDArray[np.float32],
        k: int,
        where: sql.Composable,
        where_params: list[object],
        include_vectors: bool,
    ) -> tuple[sql.Composed, list[object]]:
        table = self._table(collection)
        columns = self._columns(include_vectors)
        if metric == "cosine" and not np.any(q):
            # A zero query has no direction: every cosine similarity is 0 (as in the memory store), so
            # the order is by id alone; pgvector would return NaN distances.
            return (
                sql.SQL("SELECT {}, 1.0::float8 AS distance FROM {} WHERE {} ORDER BY id LIMIT %s").format(
                    columns, table, where
                ),
                [*where_params, k],
            )
        operator = sql.SQL(_OPERATORS[metric][0])
        if self._exact_search(k):
            return (
                sql.SQL(
                    "SELECT {}, embedding {} %s AS distance FROM {} WHERE {} ORDER BY distance, id LIMIT %s"
                ).format(columns, operator, table, where),
                [q, *where_params, k],
            )
        # The HNSW index can only produce rows ordered by distance alone: take a few more than k in that
        # order, then break ties by id outside.
        return (
            sql.SQL(
                "SELECT {}, distance FROM (SELECT {}, embedding {} %s AS distance FROM {} WHERE {} "
                "ORDER BY distance LIMIT %s) AS candidates ORDER BY distance, id LIMIT %s"
            ).format(columns, columns, operator, table, where),
            [q, *where_params, k + TIE_SLACK, k],
        )

    # -- keyword and hybrid search (see .keywords) --------------------------------------------------
    def keyword_search(self, collection: str, query: str, k: int = 10, filter: FilterLike = None) -> list[Hit]:
        """The BM25 top ``k`` under ``filter``, in one statement (the index is built first if the collection
        predates it)."""
        check_k(k)
        where, where_params = where_clause(self._filter(filter))
        terms = query_terms(query)
        table = self._table(collection)

        def search(conn: psycopg.Connection[Any]) -> list[Any]:
            statement, params = keywords.search_sql(self.options.schema, collection, table, terms, k, where,
                                                    where_params)
            return conn.execute(statement, params).fetchall()

        rows = self._keyword_rows(collection, search) if terms else self._no_terms(collection)
        rows.sort(key=lambda row: (-float(row[3]), row[0]))
        return [Hit(id=row[0], score=float(row[3]), text=row[1], metadata=dict(row[2])) for row in rows]

    def hybrid_search(
        self,
        collection: str,
        query: str,
        vector: npt.ArrayLike,
        k: int = 10,
        filter: FilterLike = None,
        rrf_k: float = 60,
        weights: Sequence[float] = (1.0, 1.0),
        depth: int = 100,
    ) -> list[Hit]:
        """RRF of the dense and the BM25 top ``depth``, both computed (filter included) in one statement."""
        check_k(k)
        d = check_depth(depth, k)
        check_rrf(rrf_k, weights, 2)
        where, where_params = where_clause(self._filter(filter))
        terms = query_terms(query)
        table = self._table(collection)
        metric_of: list[str] = []

        def search(conn: psycopg.Connection[Any]) -> list[Any]:
            dimension, metric = self._spec(conn, collection)
            metric_of[:] = [metric]
            q = as_query_matrix(vector, dimension)
            if q.shape[0] != 1:
                raise ValidationError(f"hybrid_search takes one query vector, got {q.shape[0]}")
            self._set_search_options(conn, d)
            dense, dense_params = self._query_sql(collection, metric, q[0], d, where, where_params, False)
            parts = [sql.SQL("SELECT 'd', id, text, metadata, distance FROM ({}) AS dense").format(dense)]
            params = list(dense_params)
            if terms:
                kw, kw_params = keywords.search_sql(self.options.schema, collection, table, terms, d, where,
                                                    where_params)
                parts.append(sql.SQL("SELECT 'k', id, text, metadata, score FROM ({}) AS kw").format(kw))
                params.extend(kw_params)
            return conn.execute(sql.SQL(" UNION ALL ").join(parts), params).fetchall()

        rows = self._keyword_rows(collection, search, id_column=1)
        metric = metric_of[0]
        dense_rows = sorted((r for r in rows if r[0] == "d"), key=lambda r: (float(r[4]), r[1]))
        kw_rows = sorted((r for r in rows if r[0] == "k"), key=lambda r: (-float(r[4]), r[1]))
        return fuse_hits(
            [Hit(r[1], distance_to_score(metric, float(r[4])), r[2], dict(r[3])) for r in dense_rows],
            [Hit(r[1], float(r[4]), r[2], dict(r[3])) for r in kw_rows],
            k, rrf_k, weights,
        )

    def build_keyword_index(self, collection: str) -> bool:
        """Index a collection created before keyword search existed (False: it already is indexed).

        Runs in one transaction that blocks the collection's writers, not its readers; the first keyword
        search of such a collection calls it. Tokenizing costs about 0.3 ms per record on one core."""

        def build(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                self._spec(conn, collection)
                return keywords.build(conn, self.options.schema, collection, self._table(collection),
                                      _index_name(collection, "kw"))

        started = time.perf_counter()
        built = self._connector.run(f"building the keyword index of {collection!r}", build)
        if built:
            _log.info("built the BM25 keyword index of pgvector collection %r in %.1f s", collection,
                      time.perf_counter() - started)
        return built

    def _keyword_rows(self, collection: str, fn: Callable[[psycopg.Connection[Any]], list[Any]],
                      id_column: int = 0) -> list[Any]:
        """Rows of a statement over the keyword index (its sentinel row, NULL id, dropped), building the
        index once if the collection has none yet."""
        for _ in range(2):

            def run(conn: psycopg.Connection[Any]) -> list[Any] | None:
                try:
                    with conn.transaction():
                        return fn(conn)
                except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable):
                    pass  # no such table, or one without the keyword columns
                with conn.transaction():
                    self._spec(conn, collection)  # CollectionNotFoundError if it is not a collection
                return None

            rows = self._connector.run(f"searching {collection!r} by keywords", run)
            if rows is not None and all(row[id_column] is not None for row in rows):
                return rows
            self.build_keyword_index(collection)
        raise PgVectorError(f"the keyword index of collection {collection!r} could not be built; see the log")

    def _no_terms(self, collection: str) -> list[Any]:
        """A query without a token matches nothing; the collection must still exist."""

        def check(conn: psycopg.Connection[Any]) -> list[Any]:
            with conn.transaction():
                self._spec(conn, collection)
            return []

        return self._connector.run(f"looking up collection {collection!r}", check)

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        self._connector.close()

    def __enter__(self) -> PgVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record(row: Sequence[Any], include_vectors: bool) -> Record:
    metadata: Metadata = dict(row[2])
    return Record(id=row[0], vector=row[3].to_numpy() if include_vectors else None, text=row[1], metadata=metadata)
