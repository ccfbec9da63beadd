"""One private PostgreSQL + pgvector server for the whole test session, and stores on it.

The server is real (initdb + pg_ctl on a free 127.0.0.1 port, see ``vectorseam_pgvector.testing``).
When PostgreSQL or pgvector is not installed the tests fail (they do not skip): CI must have them,
and the message says to run ``scripts/install-pgvector.sh``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from vectorseam_pgvector import PgVectorStore, create_store
from vectorseam_pgvector.testing import PostgresServer, session_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with session_server() as server:
        yield server


@pytest.fixture
def make_store(pg_server: PostgresServer) -> Iterator[Callable[..., PgVectorStore]]:
    """Stores in a schema of their own (fresh and empty per test), dropped afterwards."""
    opened: list[PgVectorStore] = []
    schemas: set[str] = set()

    def make(**options: Any) -> PgVectorStore:
        options.setdefault("dsn", pg_server.dsn())
        options.setdefault("schema", f"t_{uuid.uuid4().hex[:12]}")
        options.setdefault("retries", 1)
        options.setdefault("retry_backoff", 0.05)
        store = create_store(**options)
        opened.append(store)
        schemas.add(options["schema"])
        return store

    yield make
    for store in opened:
        store.close()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
