"""Aliases are read through the state database's ``PRAGMA data_version`` (every search resolves its
collection's name): what another process or connection commits is seen on the next read, what this
connection writes is seen at once, and an unchanged database is not read again. The last test switches
an alias with the CLI, in its own process, while a real server answers searches through it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import numpy as np

from tests.test_service_support import ADMIN_KEY, build_service
from vectorseam.datadir import DataDir
from vectorseam.state import StateDB


def state(root: Path) -> StateDB:
    return StateDB(DataDir.at(root))


def test_an_unchanged_database_is_asked_only_whether_it_changed(tmp_path: Path) -> None:
    db = state(tmp_path)
    db.set_alias("s", "live", "blue")
    assert db.aliases("s") == {"live": "blue"}
    statements: list[str] = []
    assert db._conn is not None
    db._conn.set_trace_callback(statements.append)
    assert db.aliases("s") == {"live": "blue"}
    assert statements == ["PRAGMA data_version"]
    db.aliases("s")["live"] = "changed by a caller"  # a copy: the next read is not affected
    assert db.aliases("s") == {"live": "blue"}


def test_writes_through_the_same_connection_are_seen_at_once(tmp_path: Path) -> None:
    db = state(tmp_path)
    assert db.aliases("s") == {}
    db.set_alias("s", "live", "blue")
    assert db.aliases("s") == {"live": "blue"}
    db.set_alias("s", "live", "green")
    assert db.aliases("s") == {"live": "green"}
    db.set_alias("s", "live", None)
    assert db.aliases("s") == {}
    db.close()
    db.set_alias("t", "other", "x")  # a new connection after close starts counting afresh
    assert db.aliases("s") == {} and db.aliases("t") == {"other": "x"}


def test_another_connections_commit_is_seen_on_the_next_read(tmp_path: Path) -> None:
    reader, writer = state(tmp_path), state(tmp_path)
    assert reader.aliases("s") == {}
    writer.set_alias("s", "live", "blue")
    assert reader.aliases("s") == {"live": "blue"}
    writer.set_alias("s", "live", "green")
    writer.set_alias("other-store", "live", "red")
    assert reader.aliases("s") == {"live": "green"}
    assert reader.aliases("other-store") == {"live": "red"}
    writer.set_alias("s", "live", None)
    assert reader.aliases("s") == {}


def test_another_processs_commit_is_seen_on_the_next_read(tmp_path: Path) -> None:
    reader = state(tmp_path)
    assert reader.aliases("s") == {}
    script = textwrap.dedent(f"""
        import sys
        from vectorseam.datadir import DataDir
        from vectorseam.state import StateDB
        StateDB(DataDir.at({str(tmp_path)!r})).set_alias("s", "live", sys.argv[1] or None)
    """)
    for target in ("blue", "green", ""):
        subprocess.run([sys.executable, "-c", script, target], check=True, timeout=120)
        assert reader.aliases("s") == ({"live": target} if target else {})


def test_a_served_search_follows_an_alias_switched_by_the_cli(local_embedder) -> None:  # type: ignore[no-untyped-def]
    svc = build_service(local_embedder)
    try:
        with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60) as admin:
            vector = [float(x) for x in np.eye(local_embedder.dimension, dtype=np.float32)[0]]
            for name, rid in (("blue", "b1"), ("green", "g1")):
                assert admin.put(f"/v1/collections/{name}", json={}).status_code == 201
                stored = admin.post(f"/v1/collections/{name}/records",
                                    json={"records": [{"id": rid, "vector": vector, "text": name}]})
                assert stored.status_code == 200, stored.text
            env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
            env.update(VECTORSEAM_DATA_DIR=str(svc.data_dir), VECTORSEAM_STORE__NAME="memory")

            def switch(target: str) -> None:
                done = subprocess.run([sys.executable, "-m", "vectorseam.cli.__main__", "alias", "set", "live",
                                       target], env=env, capture_output=True, text=True, timeout=300)
                assert done.returncode == 0, done.stderr

            for target, rid in (("blue", "b1"), ("green", "g1"), ("blue", "b1")):
                switch(target)
                answer = admin.post("/v1/collections/live/search", json={"vector": vector, "k": 1}).json()
                assert answer["collection"] == target and [h["id"] for h in answer["hits"]] == [rid]
    finally:
        svc.server.stop()
