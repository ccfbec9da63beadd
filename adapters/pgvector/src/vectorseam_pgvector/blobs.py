"""Collection blobs (:class:`vectorseam.store.CollectionBlobs`) in PostgreSQL: small named byte strings kept
with a collection, such as its tuned retrieval profile.

One table in the store's schema, ``_vectorseam_blobs (collection, name, data bytea)``, whose
``collection`` references the catalog row with ``ON DELETE CASCADE``: dropping a collection removes
its blobs in the same transaction, and a blob can never outlive or precede its collection. Every
process and replica over the database reads the same row, so a profile saved through one ``serve``
is applied by another on its next request; a write is one upsert, committed when the call returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from vectorseam.contract import check_blob_name
from vectorseam.errors import CollectionNotFoundError, ValidationError

if TYPE_CHECKING:
    from vectorseam_pgvector.connection import Connector

BLOBS = "_vectorseam_blobs"
MAX_BLOB_BYTES = 256 * 1024 * 1024  # far above a profile (a 384 x 384 adapter is 0.6 MB); bytea holds 1 GB


def setup(conn: psycopg.Connection[Any], schema: str, catalog: str) -> None:
    """The blob table (inside the caller's transaction, under the store's schema lock)."""
    conn.execute(
        sql.SQL(
            'CREATE TABLE IF NOT EXISTS {} (collection text COLLATE "C" NOT NULL REFERENCES {} (name) '
            'ON DELETE CASCADE, name text COLLATE "C" NOT NULL, data bytea NOT NULL, '
            "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (collection, name))"
        ).format(sql.Identifier(schema, BLOBS), sql.Identifier(schema, catalog))
    )


class PgBlobs:
    """The :class:`~vectorseam.store.CollectionBlobs` methods of :class:`~vectorseam_pgvector.PgVectorStore`."""

    if TYPE_CHECKING:
        _connector: Connector
        options: Any

        def _spec(self, conn: psycopg.Connection[Any], collection: str) -> tuple[int, Any]: ...

    @property
    def _blobs(self) -> sql.Identifier:
        return sql.Identifier(self.options.schema, BLOBS)

    def get_blob(self, collection: str, name: str) -> bytes | None:
        key = check_blob_name(name)

        def read(conn: psycopg.Connection[Any]) -> bytes | None:
            with conn.transaction():
                row = conn.execute(sql.SQL("SELECT data FROM {} WHERE collection = %s AND name = %s").format(
                    self._blobs), [collection, key]).fetchone()
                if row is None:
                    self._spec(conn, collection)  # CollectionNotFoundError for an absent collection
                    return None
                return bytes(row[0])

        return self._connector.run(f"reading blob {key!r} of {collection!r}", read)

    def put_blob(self, collection: str, name: str, data: bytes) -> None:
        key = check_blob_name(name)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError(f"a blob is bytes, got {type(data).__name__}")
        payload = bytes(data)
        if len(payload) > MAX_BLOB_BYTES:
            raise ValidationError(f"blob {key!r}: {len(payload)} bytes, at most {MAX_BLOB_BYTES} are kept")

        def write(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                self._spec(conn, collection)
                try:
                    conn.execute(sql.SQL(
                        "INSERT INTO {} (collection, name, data) VALUES (%s, %s, %s) ON CONFLICT (collection, name) "
                        "DO UPDATE SET data = EXCLUDED.data, updated_at = now()").format(self._blobs),
                        [collection, key, payload])
                except psycopg.errors.ForeignKeyViolation:  # dropped since the look-up
                    raise CollectionNotFoundError(f"collection {collection!r} was dropped while writing blob "
                                                  f"{key!r}") from None

        self._connector.run(f"writing blob {key!r} of {collection!r}", write)

    def delete_blob(self, collection: str, name: str) -> bool:
        key = check_blob_name(name)

        def delete(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                self._spec(conn, collection)
                cur = conn.execute(sql.SQL("DELETE FROM {} WHERE collection = %s AND name = %s").format(self._blobs),
                                   [collection, key])
                return cur.rowcount > 0

        return self._connector.run(f"deleting blob {key!r} of {collection!r}", delete)
