"""Small shared state in one SQLite database (``DATA_DIR/state.sqlite3``): aliases and migration progress.

Why SQLite and not JSON files: an alias switch must be atomic for every process at once, two
processes setting aliases must not lose each other's change (a read-modify-write of one JSON file
did), and a migration's progress must survive a kill. One transaction gives all three.

Files written by releases before this database (``aliases.json``, ``migrations/*.json``) are imported
on first open and renamed ``*.imported``, so nothing is lost and nothing is imported twice.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from vectorseam.datadir import DataDir
from vectorseam.durable import connect, move, transaction
from vectorseam.errors import StoreUnavailableError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS aliases (
    store TEXT NOT NULL,
    alias TEXT NOT NULL,
    collection TEXT NOT NULL,
    PRIMARY KEY (store, alias)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS migrations (
    key TEXT PRIMARY KEY,
    copied INTEGER NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
"""


class StateDB:
    """The data directory's state database; one connection per instance, shared by its threads."""

    def __init__(self, data_dir: DataDir) -> None:
        self.data_dir = data_dir
        self.path = data_dir.state_db
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # store -> (data_version when read, its aliases): see aliases()
        self._aliases: dict[str, tuple[int, dict[str, str]]] = {}

    @contextlib.contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                if self._conn is None:
                    conn = connect(self.path)
                    conn.executescript(_SCHEMA)
                    self._conn = conn
                    self._import_legacy(conn)
                if write:
                    self._aliases.clear()  # this connection's own commits leave data_version as it is
                    with transaction(self._conn):
                        yield self._conn
                else:
                    yield self._conn
            except sqlite3.Error as exc:
                raise StoreUnavailableError(
                    f"the state database {self.path} cannot be used ({exc}); the data directory must be writable "
                    "(`vectorseam doctor` checks it)") from exc

    def close(self) -> None:
        with self._lock:
            self._aliases.clear()  # a new connection counts data_version afresh
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- aliases ----------------------------------------------------------------------------------
    def aliases(self, store: str) -> dict[str, str]:
        """The aliases of ``store``, read again only when another connection (another process, or another
        StateDB) has committed since the last read: ``PRAGMA data_version`` tells, without reading a table,
        and every search resolves its collection's name through here. Writes through this connection
        forget what was read (SQLite does not count them in data_version)."""
        with self._db() as db:
            version = int(db.execute("PRAGMA data_version").fetchone()[0])
            known = self._aliases.get(store)
            if known is None or known[0] != version:
                rows = dict(db.execute("SELECT alias, collection FROM aliases WHERE store = ?", (store,)).fetchall())
                known = self._aliases[store] = (version, rows)
            return dict(known[1])

    def set_alias(self, store: str, alias: str, collection: str | None) -> None:
        """Point ``alias`` at ``collection`` (None removes it), in one transaction."""
        with self._db(write=True) as db:
            if collection is None:
                db.execute("DELETE FROM aliases WHERE store = ? AND alias = ?", (store, alias))
            else:
                db.execute("INSERT OR REPLACE INTO aliases (store, alias, collection) VALUES (?, ?, ?)",
                           (store, alias, collection))

    # -- migrations -------------------------------------------------------------------------------
    def migration_progress(self, key: str) -> int:
        with self._db() as db:
            row = db.execute("SELECT copied FROM migrations WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def save_migration_progress(self, key: str, copied: int | None) -> None:
        """Record how many records of the migration ``key`` are copied (None: it is finished)."""
        with self._db(write=True) as db:
            if copied is None:
                db.execute("DELETE FROM migrations WHERE key = ?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO migrations (key, copied, updated_at) VALUES (?, ?, ?)",
                           (key, copied, time.time()))

    # -- files of older releases ------------------------------------------------------------------
    def _import_legacy(self, conn: sqlite3.Connection) -> None:
        """Move ``aliases.json`` and ``migrations/*.json`` in (once); a damaged file is left in place
        and reported, never dropped."""
        aliases = self.data_dir.legacy_aliases
        if aliases.is_file():
            try:
                data = json.loads(aliases.read_text(encoding="utf-8"))
                rows = [(str(store), str(alias), str(target)) for store, mine in data.items()
                        for alias, target in mine.items()]
            except (OSError, ValueError, AttributeError) as exc:
                raise StoreUnavailableError(f"cannot import the alias map {aliases} ({exc}); fix or remove the "
                                            "file") from None
            with transaction(conn):
                conn.executemany("INSERT OR IGNORE INTO aliases (store, alias, collection) VALUES (?, ?, ?)", rows)
            move(aliases, aliases.with_name(aliases.name + ".imported"))
        folder = self.data_dir.legacy_migrations
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                _import_migration(conn, path)


def _import_migration(conn: sqlite3.Connection, path: Path) -> None:
    try:
        data = json.loads(path.read_text())
        key, copied = str(data["key"]), int(data["copied"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # progress only: a damaged file means the migration starts over (it is idempotent)
    with transaction(conn):
        conn.execute("INSERT OR IGNORE INTO migrations (key, copied, updated_at) VALUES (?, ?, ?)",
                     (key, copied, time.time()))
    move(path, path.with_name(path.name + ".imported"))


class MigrationState:
    """One migration's progress (records copied, in scan order) in the state database."""

    def __init__(self, db: StateDB, key: str) -> None:
        self.db, self.key = db, key

    def load(self) -> int:
        return self.db.migration_progress(self.key)

    def save(self, copied: int) -> None:
        self.db.save_migration_progress(self.key, copied)

    def clear(self) -> None:
        self.db.save_migration_progress(self.key, None)
