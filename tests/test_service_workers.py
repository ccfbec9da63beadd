"""``vectorseam serve --workers 2`` on the embedded store: ingest jobs are found by whichever worker
process a poll lands on, and what one worker wrote the other answers with.

Before the job table moved to ``data_dir``, each worker kept its own jobs in memory: about half of
the polls for a job answered 404. The server is real (two uvicorn worker processes on 127.0.0.1) and
every request opens a new connection, so the kernel hands it to either worker.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve_process import ServeProcess, clean_env
from vectorseam.service.jobs import STALE_S, Job, JobBoard, PostgresJobBoard, SqliteJobBoard

WORKERS = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, ServeProcess]]:
    tmp = tmp_path_factory.mktemp("workers")
    served = ServeProcess.start(clean_env(tmp / "data"), tmp / "server.log", workers=WORKERS)
    # no keep-alive: every request is a new connection, accepted by either worker
    http = httpx.Client(base_url=served.url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))
    try:
        # several answers in a row: both workers have loaded the model
        served.wait_ready(time.monotonic() + 120, in_a_row=2 * WORKERS)
        yield http, served
    finally:
        http.close()
        served.stop()


def test_every_poll_finds_the_job_and_both_workers_see_its_records(
    server: tuple[httpx.Client, ServeProcess]
) -> None:
    http, served = server
    docs = [{"id": f"d{i}", "text": f"note {i}: {'apples' if i % 2 else 'bicycles'} in winter",
             "metadata": {"i": i}} for i in range(40)]
    resp = http.post("/v1/collections/notes/ingest", json={"documents": docs})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    assert resp.headers["location"] == f"/v1/jobs/{job_id}"

    polls: list[int] = []
    state = "queued"
    deadline = time.monotonic() + 120
    while state in ("queued", "running"):
        assert time.monotonic() < deadline, "the job did not finish in 120 s"
        got = http.get(f"/v1/jobs/{job_id}")
        polls.append(got.status_code)
        assert got.status_code == 200, got.text  # a 404 here: the poll hit the other worker
        state = got.json()["state"]
        time.sleep(0.05)
    for _ in range(12):  # after it finished too, on either worker
        got = http.get(f"/v1/jobs/{job_id}")
        polls.append(got.status_code)
        assert got.status_code == 200 and got.json()["state"] == "succeeded", got.text
        assert got.json()["written"] == 40
        assert job_id in [j["id"] for j in http.get("/v1/jobs").json()]
    assert set(polls) == {200}

    # Every record, from whichever worker answers (the one that did not run the job reads the log).
    for _ in range(8):
        fetched = http.post("/v1/collections/notes/records/fetch", json={"ids": [d["id"] for d in docs]})
        assert fetched.status_code == 200, fetched.text
        assert {r["id"]: r["metadata"]["i"] for r in fetched.json()["records"]} == {f"d{i}": i for i in range(40)}
        hits = http.post("/v1/collections/notes/search", json={"query": "bicycles", "k": 5,
                                                                 "filter": {"i": {"$lt": 10}}}).json()["hits"]
        assert [h["id"] for h in hits] and all(int(h["id"][1:]) % 2 == 0 and int(h["id"][1:]) < 10 for h in hits)
    assert len(served.serving_pids()) == WORKERS, "the requests did not reach both worker processes"



def _connections_by_process(parent: int, port: int) -> dict[int, int]:
    """Established TCP connections to ``port`` held by each child process of ``parent`` (Linux /proc)."""
    inodes: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != parent:
                continue
            pid = int(stat.parent.name)
            for fd in (stat.parent / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except (OSError, IndexError, ValueError):
            continue  # a process that exited meanwhile
    held: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local_port, state, inode = int(cols[1].rsplit(":", 1)[1], 16), cols[3], cols[9]
        if local_port == port and state == "01" and inode in inodes:  # 01: ESTABLISHED
            held[inodes[inode]] = held.get(inodes[inode], 0) + 1
    return held


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the connections from Linux's /proc")
def test_connections_opened_together_are_shared_by_the_workers(server: tuple[httpx.Client, ServeProcess]) -> None:
    """A client opening 8 keep-alive connections at once (a connection pool): uvicorn's workers share one
    listening socket and the first to wake used to accept all of them, so one worker served the 8 while
    the other idled. Each worker now accepts later the more connections it holds: both get some."""
    _, served = server
    port = int(served.url.rsplit(":", 1)[1])
    for _ in range(3):
        socks = [socket.socket() for _ in range(8)]
        try:
            for sock in socks:  # connected in one burst, as a pool opens them
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
            for sock in socks:  # one request on each: every connection is accepted and served
                sock.settimeout(30)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for sock in socks:
                assert sock.recv(4096).startswith(b"HTTP/1.1 200"), "a connection was not served"
            held = _connections_by_process(served.proc.pid, port)
            assert sum(held.values()) == 8, held
            assert len(held) == WORKERS and min(held.values()) >= 2, f"connections per worker: {held}"
        finally:
            for sock in socks:
                sock.close()
        time.sleep(0.2)  # the closed connections leave the workers


@pytest.fixture(params=["sqlite", "postgres"])
def board(request: pytest.FixtureRequest, tmp_path: Path) -> JobBoard:
    if request.param == "sqlite":
        return SqliteJobBoard(tmp_path / "jobs.sqlite3")
    pg_server = request.getfixturevalue("pg_server")
    return PostgresJobBoard(pg_server.dsn(), f"jobs_{uuid.uuid4().hex[:8]}")


def test_a_job_whose_process_died_is_reported_failed(board: JobBoard) -> None:
    """A worker killed mid-job leaves its row 'running'; the next reader says what happened: at once
    for a process of its own machine, once its heartbeat is STALE_S old for another machine's."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = time.time()
    board.save(Job(id="j1", collection="notes", state="running", written=7, pid=dead.pid))
    board.save(Job(id="j2", collection="notes", state="running", written=3))  # this process: alive
    board.save(Job(id="j3", collection="notes", state="running", host="replica-b", pid=1, beat_at=now - STALE_S - 5))
    board.save(Job(id="j4", collection="notes", state="queued", host="replica-b", pid=1, beat_at=now - 1))
    job = board.get("j1")
    assert job is not None and job.state == "failed" and job.written == 7
    assert job.error is not None and f"pid {dead.pid}" in job.error and "submit it again" in job.error
    again = board.get("j1")  # the verdict is stored, not recomputed
    assert again is not None and again.state == "failed" and again.finished_at == job.finished_at
    alive = board.get("j2")
    assert alive is not None and alive.state == "running"
    silent = board.get("j3")
    assert silent is not None and silent.state == "failed" and silent.error is not None
    assert "on replica-b) has given no sign of life" in silent.error
    beating = board.get("j4")
    assert beating is not None and beating.state == "queued"
    assert sorted(j.id for j in board.all()) == ["j1", "j2", "j3", "j4"]
    board.beat(["j4"])
    later = board.get("j4")
    assert later is not None and later.beat_at > now


def test_old_finished_jobs_are_forgotten_but_unfinished_ones_stay(board: JobBoard) -> None:
    board.save(Job(id="old-running", collection="c", state="running", created_at=1.0))
    for i in range(5):
        board.save(Job(id=f"done-{i}", collection="c", state="succeeded", created_at=10.0 + i))
    board.forget_beyond(2)
    assert [j.id for j in board.all()] == ["done-4", "done-3", "old-running"]


def test_replicas_on_one_pgvector_database_see_each_others_jobs(tmp_path: Path, pg_server: Any,
                                                               local_embedder: Any) -> None:
    """Two replicas (separate data directories, as on two machines) on one pgvector store: a job
    started on one is polled on the other, which also lists it and answers with its records."""
    from vectorseam.client import VectorSeam
    from vectorseam.config import Settings, StoreSettings
    from vectorseam.service import create_app
    from vectorseam.service.background import BackgroundServer

    options = {"dsn": pg_server.dsn(), "schema": f"rep_{uuid.uuid4().hex[:8]}"}
    servers, clients, https = [], [], []
    try:
        for name in ("a", "b"):
            client = VectorSeam(Settings(data_dir=tmp_path / name, store=StoreSettings(name="pgvector", options=options)))
            client.embedder = local_embedder
            clients.append(client)
            servers.append(BackgroundServer(create_app(client, warm_up=False)).start())
        https = [httpx.Client(base_url=s.url, timeout=60) for s in servers]
        a, b = https
        docs = [{"id": f"r{i}", "text": f"replica note {i} about harbours"} for i in range(6)]
        started = a.post("/v1/collections/shared/ingest", json={"documents": docs})
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        deadline = time.monotonic() + 120
        while (got := b.get(f"/v1/jobs/{job_id}")).json()["state"] in ("queued", "running"):
            assert got.status_code == 200, got.text
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert got.status_code == 200 and got.json()["state"] == "succeeded" and got.json()["written"] == 6, got.text
        assert [j["id"] for j in b.get("/v1/jobs").json()] == [job_id]
        fetched = b.post("/v1/collections/shared/records/fetch", json={"ids": [d["id"] for d in docs]}).json()
        assert sorted(r["id"] for r in fetched["records"]) == [d["id"] for d in docs]
        assert not (tmp_path / "a" / "service" / "jobs.sqlite3").exists()  # the table is in PostgreSQL
    finally:
        for http in https:
            http.close()
        for server in servers:
            server.stop()
        for client in clients:
            client.close()


def test_an_unusable_jobs_table_says_what_to_do(tmp_path: Path) -> None:
    from vectorseam.errors import StoreUnavailableError

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailableError, match=r"cannot be used .*data_dir must be writable"):
        SqliteJobBoard(blocker / "service" / "jobs.sqlite3").save(Job(id="j", collection="c"))
    assert SqliteJobBoard(blocker / "service" / "jobs.sqlite3").all() == []  # reading creates nothing
    with pytest.raises(StoreUnavailableError, match=r"jobs table \"s\".\"jobs\" in PostgreSQL cannot be used"):
        PostgresJobBoard("postgresql://nobody@127.0.0.1:1/none", "s").get("j")
