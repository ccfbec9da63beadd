"""Scroll, group_by and facets in SQL: the :class:`~vectorseam.store.Scrollable`,
:class:`~vectorseam.store.NativeGrouping` and :class:`~vectorseam.store.NativeFacets` methods of
:class:`~vectorseam_pgvector.PgVectorStore`, each one statement.

* **scroll**: ``WHERE id > $after ORDER BY id`` on the primary key (``COLLATE "C"``: code point order,
  as Python compares ids), so a page is one index range scan and a position is just the last id.
* **group_by**: every admitted row's distance, a ``row_number()`` per group (``PARTITION BY`` the field's
  JSONB value, so ``1`` and ``1.0`` are one group and ``true`` another; a row without the field is a
  group of its own), groups ranked by their best (distance, id). Exact: it reads every admitted row,
  as the exact index mode does (no HNSW graph walk can rank groups).
* **facets**: ``GROUP BY`` the JSONB value of each element (a list counts each distinct element once
  per row), ordered by count and then by vectorseam's value order (booleans, numbers, strings by code
  point), so ties break as in every other store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from vectorseam.contract import check_k
from vectorseam.errors import ValidationError
from vectorseam.filters import Filter, FilterLike
from vectorseam.types import Hit, Metric, Record, Scalar, as_query_matrix
from vectorseam.values import plain, value_key
from vectorseam_pgvector.filter_sql import where_clause

if TYPE_CHECKING:
    from vectorseam_pgvector.connection import Connector

_VALUE_ORDER = sql.SQL(
    "CASE jsonb_typeof(v) WHEN 'boolean' THEN 0 WHEN 'number' THEN 1 ELSE 2 END, "
    "CASE WHEN jsonb_typeof(v) = 'boolean' THEN (v #>> '{}')::boolean END, "
    "CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::numeric END, "
    "CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' END COLLATE \"C\""
)


class PgSearchApi:
    """Scroll, grouping and facets of :class:`~vectorseam_pgvector.PgVectorStore` (see the module docstring)."""

    if TYPE_CHECKING:
        _connector: Connector

        def _spec(self, conn: psycopg.Connection[Any], collection: str) -> tuple[int, Metric]: ...
        def _table(self, collection: str) -> sql.Identifier: ...
        def _filter(self, filter: FilterLike) -> Filter | None: ...
        @staticmethod
        def _columns(include_vectors: bool) -> sql.Composable: ...

    def scroll(self, collection: str, limit: int, after: str | None = None, filter: FilterLike = None,
               include_vectors: bool = True) -> tuple[list[Record], str | None]:
        from vectorseam_pgvector.store import _record

        check_k(limit)
        where, params = where_clause(self._filter(filter))
        columns, table = self._columns(include_vectors), self._table(collection)
        if after is None:
            statement = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id LIMIT %s").format(columns, table, where)
            args: list[object] = [*params, limit + 1]
        else:
            statement = sql.SQL('SELECT {} FROM {} WHERE {} AND id > %s COLLATE "C" ORDER BY id LIMIT %s').format(
                columns, table, where)
            args = [*params, after, limit + 1]

        def page(conn: psycopg.Connection[Any]) -> list[Any]:
            with conn.transaction():
                self._spec(conn, collection)
                return conn.execute(statement, args).fetchall()

        rows = self._connector.run(f"scrolling {collection!r}", page)
        records = [_record(row, include_vectors) for row in rows[:limit]]
        return records, (records[-1].id if len(rows) > limit else None)

    def query_groups(self, collection: str, vector: npt.ArrayLike, k: int, group_by: str, group_size: int,
                     filter: FilterLike = None) -> list[list[Hit]]:
        from vectorseam_pgvector.store import _OPERATORS, distance_to_score

        check_k(k)
        check_k(group_size)
        where, params = where_clause(self._filter(filter))
        table = self._table(collection)

        def search(conn: psycopg.Connection[Any]) -> list[Any]:
            with conn.transaction():
                dimension, metric = self._spec(conn, collection)
                q = as_query_matrix(vector, dimension)[0]
                zero = metric == "cosine" and not np.any(q)  # no direction: every similarity is 0
                distance = sql.SQL("1.0::float8") if zero else sql.SQL("embedding {} %s").format(
                    sql.SQL(_OPERATORS[metric][0]))
                statement = sql.SQL(
                    "SELECT id, text, metadata, distance, {metric_name} FROM ("
                    " SELECT *, dense_rank() OVER (ORDER BY best_distance, best_id) AS group_rank FROM ("
                    "  SELECT *, row_number() OVER g AS member, first_value(distance) OVER g AS best_distance,"
                    "   first_value(id) OVER g AS best_id FROM ("
                    "   SELECT id, text, metadata, {distance} AS distance,"
                    "    CASE WHEN jsonb_typeof(metadata -> %s) IS NULL OR jsonb_typeof(metadata -> %s) = 'null'"
                    "     THEN jsonb_build_array('own', id) ELSE metadata -> %s END AS grp"
                    "   FROM {table} WHERE {where}) AS scored"
                    "  WINDOW g AS (PARTITION BY grp ORDER BY distance, id)) AS ranked"
                    " WHERE member <= %s) AS kept"
                    " WHERE group_rank <= %s ORDER BY group_rank, member"
                ).format(metric_name=sql.Literal(metric), distance=distance, table=table, where=where)
                args: list[object] = [] if zero else [q]
                args += [group_by, group_by, group_by, *params, group_size, k]
                return conn.execute(statement, args).fetchall()

        rows = self._connector.run(f"grouping a query of {collection!r}", search)
        groups: list[list[Hit]] = []
        last: object = object()
        for rid, text, metadata, dist, metric in rows:
            meta = dict(metadata)
            if isinstance(meta.get(group_by), list):
                raise ValidationError(f"group_by {group_by!r}: record {rid!r} holds a list, so it belongs to no "
                                      "single group; group by a field with one value per record")
            hit = Hit(rid, distance_to_score(metric, float(dist)), text, meta)
            key = (rid, "own") if meta.get(group_by) is None else ("value", value_key(meta[group_by]))
            if not groups or key != last:
                groups.append([])
                last = key
            groups[-1].append(hit)
        return groups

    def facet_counts(self, collection: str, fields: Sequence[str], filter: FilterLike = None,
                     limit: int = 10) -> dict[str, list[tuple[Scalar, int]]]:
        check_k(limit)
        where, params = where_clause(self._filter(filter))
        table = self._table(collection)
        statement = sql.SQL(
            "SELECT v, count(*) AS n FROM ("
            " SELECT DISTINCT t.id, e.v FROM {table} AS t CROSS JOIN LATERAL jsonb_array_elements("
            "  CASE jsonb_typeof(t.metadata -> %s) WHEN 'array' THEN t.metadata -> %s"
            "  ELSE jsonb_build_array(t.metadata -> %s) END) AS e(v)"
            " WHERE ({where}) AND t.metadata ? %s AND jsonb_typeof(e.v) <> 'null') AS d"
            " GROUP BY v ORDER BY n DESC, {order} LIMIT %s"
        ).format(table=table, where=where, order=_VALUE_ORDER)

        def count(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Scalar, int]]]:
            with conn.transaction():
                self._spec(conn, collection)
                return {name: [(plain(value), int(n)) for value, n in conn.execute(
                    statement, [name, name, name, *params, name, limit]).fetchall()] for name in fields}

        return self._connector.run(f"counting facets of {collection!r}", count)

