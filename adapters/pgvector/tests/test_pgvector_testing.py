"""The test-server helper: it must fail loudly (pointing at the install script) when it cannot run."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest
from vectorseam_pgvector.testing import INSTALL_HINT, PostgresServer, PostgresUnavailable, find_postgres


def test_missing_postgres_names_the_install_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    with pytest.raises(PostgresUnavailable, match="install-pgvector.sh") as info:
        find_postgres(search=(str(tmp_path),), use_path=False)
    assert "no PostgreSQL installation was found" in str(info.value)
    assert "install-pgvector.sh" in INSTALL_HINT


def test_postgres_without_pgvector_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server without the extension is not good enough, and the message says what is missing."""
    bindir = tmp_path / "15" / "bin"
    bindir.mkdir(parents=True)
    sharedir = tmp_path / "share"
    (sharedir / "extension").mkdir(parents=True)
    for name in ("postgres", "initdb", "pg_ctl"):
        (bindir / name).write_text("#!/bin/sh\n")
    pg_config = bindir / "pg_config"
    pg_config.write_text(f'#!/bin/sh\ncase "$1" in --bindir) echo {bindir};; --sharedir) echo {sharedir};; esac\n')
    pg_config.chmod(pg_config.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.delenv("PG_BINDIR", raising=False)
    with pytest.raises(PostgresUnavailable, match="no pgvector extension") as info:
        find_postgres(search=(str(tmp_path),), use_path=False)
    assert "install-pgvector.sh" in str(info.value)


def test_server_runs_with_vector_and_cleans_up(pg_server: PostgresServer) -> None:
    """The session server: on 127.0.0.1, password auth, pgvector created, data dir removed on stop."""
    assert pg_server.host == "127.0.0.1" and pg_server.port > 0
    with psycopg.connect(pg_server.dsn()) as conn:
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert row is not None
        assert conn.execute("SELECT '[1,2]'::vector <-> '[1,3]'::vector").fetchone() == (1.0,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_server.dsn().replace(pg_server.password, "wrong"), connect_timeout=3)


def test_private_server_lifecycle() -> None:
    server = PostgresServer().start()
    root = server._root
    assert root is not None and root.exists()
    dsn = server.create_database("other db")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("other db",)
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() == (1,)
    server.stop()
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
