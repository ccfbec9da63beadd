"""``vectorseam serve --workers 2`` on the embedded store: ingest jobs are found by whichever worker
process a poll lands on, and what one worker wrote the other answers with.

Before the job table moved to ``data_dir``, each worker kept its own jobs in memory: about half of
the polls for a job answered 404. The server is real (two uvicorn worker processes on 127.0.0.1) and
every request opens a new connection, so the kernel hands it to either worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vectorseam.service.jobs import Job, JobBoard

WORKERS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    tmp = tmp_path_factory.mktemp("workers")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    env.update(VECTORSEAM_DATA_DIR=str(tmp / "data"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    port = _free_port()
    log_path = tmp / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(Path(sys.executable).parent / "vectorseam"), "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(WORKERS)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    # no keep-alive: every request is a new connection, accepted by either worker
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                        limits=httpx.Limits(max_keepalive_connections=0))
    try:
        deadline = time.monotonic() + 120
        ready = 0
        while ready < 2 * WORKERS:  # several answers in a row: both workers have loaded the model
            try:
                ready = ready + 1 if http.get("/readyz", timeout=2).status_code == 200 else 0
            except httpx.HTTPError:
                ready = 0
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the server did not start in 120 s:\n" + log_path.read_text()
            time.sleep(0.1)
        yield http, log_path
    finally:
        http.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _pids(log_path: Path) -> set[int]:
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
    return {line["pid"] for line in lines if line.get("message") == "request"}


def test_every_poll_finds_the_job_and_both_workers_see_its_records(server: tuple[httpx.Client, Path]) -> None:
    http, log_path = server
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
    assert len(_pids(log_path)) == WORKERS, "the requests did not reach both worker processes"


def test_a_job_whose_process_died_is_reported_failed(tmp_path: Path) -> None:
    """A worker killed mid-job leaves its row 'running'; the next reader on the host says what happened."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    board = JobBoard(tmp_path / "jobs.sqlite3")
    board.save(Job(id="j1", collection="notes", state="running", written=7, pid=dead.pid))
    board.save(Job(id="j2", collection="notes", state="running", written=3))  # this process: alive
    job = board.get("j1")
    assert job is not None and job.state == "failed" and job.written == 7
    assert job.error is not None and f"pid {dead.pid}" in job.error and "submit it again" in job.error
    again = JobBoard(tmp_path / "jobs.sqlite3").get("j1")  # the verdict is stored, not recomputed
    assert again is not None and again.state == "failed" and again.finished_at == job.finished_at
    alive = board.get("j2")
    assert alive is not None and alive.state == "running"
    assert [j.id for j in board.all()] in (["j2", "j1"], ["j1", "j2"])


def test_old_finished_jobs_are_forgotten_but_unfinished_ones_stay(tmp_path: Path) -> None:
    board = JobBoard(tmp_path / "jobs.sqlite3")
    board.save(Job(id="old-running", collection="c", state="running", created_at=1.0))
    for i in range(5):
        board.save(Job(id=f"done-{i}", collection="c", state="succeeded", created_at=10.0 + i))
    board.forget_beyond(2)
    assert [j.id for j in board.all()] == ["done-4", "done-3", "old-running"]
