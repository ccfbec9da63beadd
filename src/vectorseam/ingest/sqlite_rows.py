"""SQLite plumbing shared by the record manager and the embedding cache (both beside the data).

Many rows go into one statement: Python's sqlite3 lets go of the GIL at every step, and in a load
job each step then waits for the embedding and reading threads to hand it back, so a statement per
row cost milliseconds per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

MAX_PARAMETERS = 999  # SQLite's limit on host parameters in older builds


@contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """One explicit transaction on an autocommit (``isolation_level=None``) connection."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[object]]) -> None:
    """``head`` (e.g. ``INSERT OR REPLACE INTO t (a, b) VALUES``) with as many rows per statement as
    the parameter limit allows."""
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, MAX_PARAMETERS // width)
    row_marks = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        conn.execute(f"{head} {','.join([row_marks] * len(part))}", [value for row in part for value in row])
