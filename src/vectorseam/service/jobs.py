"""Background ingest jobs: accepted at once (202), run one at a time on a worker thread, polled by id.

One worker thread per server process, because embedding is CPU-bound: two jobs at once would each
run at half speed and slow every search on the way.

Job records live in a small SQLite table under ``data_dir`` (``service/jobs.sqlite3``), not in the
process: with ``workers > 1`` the poll ``GET /v1/jobs/{id}`` lands on whichever worker the kernel
picks, usually not the one running the job, and must still find it. The last ``keep`` finished jobs
are kept. A job whose process is gone (killed, restarted) before it finished is reported as failed
with that reason instead of "running" forever; ingest is idempotent by id, so it can be resubmitted.

A job remembers which key started it (``owner``) and the request id that started it: its log lines,
written on the worker thread long after the request ended, carry that id.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from vectorseam.client import IngestReport
from vectorseam.errors import VectorseamError
from vectorseam.service.logs import get_logger
from vectorseam.service.metrics import Metrics

State = Literal["queued", "running", "succeeded", "failed"]
MAX_REJECTS_SHOWN = 50
PROGRESS_EVERY_S = 0.25  # progress reaches the table at most this often (each write is a transaction)
_HOST = socket.gethostname()
_COLUMNS = ("id", "collection", "owner", "request_id", "state", "written", "rejected", "rejects", "error",
            "created_at", "started_at", "finished_at", "host", "pid")


@dataclass
class Job:
    id: str
    collection: str
    owner: str = "anonymous"  # the name of the key that started it
    request_id: str | None = None
    state: State = "queued"
    written: int = 0
    rejected: int = 0
    rejects: list[str] = field(default_factory=list)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    host: str = _HOST  # where the job runs: only there can a dead process be told from a busy one
    pid: int = field(default_factory=os.getpid)


@dataclass
class Outcome:
    written: int
    rejects: list[str]


Progress = Callable[[IngestReport], None]
Work = Callable[[Progress], Outcome]


class JobBoard:
    """The jobs table, shared by every server process on one ``data_dir``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._created = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # a connection per call: the request threads, the job thread and other processes all write.
        # The table is made by the first job, so a server that runs none needs no writable data_dir.
        if not self._created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30.0, isolation_level=None)) as db:
            db.execute("PRAGMA busy_timeout=30000")
            if not self._created:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, collection TEXT NOT NULL,"
                    " owner TEXT NOT NULL, request_id TEXT, state TEXT NOT NULL, written INTEGER NOT NULL,"
                    " rejected INTEGER NOT NULL, rejects TEXT NOT NULL, error TEXT, created_at REAL NOT NULL,"
                    " started_at REAL, finished_at REAL, host TEXT NOT NULL, pid INTEGER NOT NULL)")
                db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at)")
                self._created = True
            yield db

    def save(self, job: Job) -> None:
        row = {name: getattr(job, name) for name in _COLUMNS}
        row["rejects"] = json.dumps(job.rejects)
        marks = ", ".join("?" * len(_COLUMNS))
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO jobs ({', '.join(_COLUMNS)}) VALUES ({marks})",
                       [row[name] for name in _COLUMNS])

    def forget_beyond(self, keep: int) -> None:
        """Drop the oldest finished jobs past the newest ``keep``; unfinished ones always stay."""
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE state IN ('succeeded', 'failed') AND id NOT IN "
                       "(SELECT id FROM jobs ORDER BY created_at DESC LIMIT ?)", (keep,))

    def get(self, job_id: str) -> Job | None:
        if not self._created and not self.path.exists():
            return None
        with self._connect() as db:
            row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._checked(_job(row)) if row is not None else None

    def all(self) -> list[Job]:
        if not self._created and not self.path.exists():
            return []
        with self._connect() as db:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY created_at DESC").fetchall()
        return [self._checked(_job(row)) for row in rows]

    def _checked(self, job: Job) -> Job:
        """An unfinished job of a process on this host that no longer runs failed: say so, once."""
        if job.state in ("queued", "running") and job.host == _HOST and not _alive(job.pid):
            job.state, job.finished_at = "failed", time.time()
            job.error = (f"the server process that ran this job (pid {job.pid}) stopped before it finished; "
                         "submit it again (ingest is idempotent by id: what was written is kept)")
            self.save(job)
        return job


def _job(row: tuple[Any, ...]) -> Job:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["rejects"] = json.loads(values["rejects"])
    values["state"] = cast(State, values["state"])
    return Job(**values)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


class JobRunner:
    def __init__(self, metrics: Metrics, board: Path, keep: int = 200) -> None:
        self._board = JobBoard(board)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vectorseam-ingest")
        self._metrics = metrics
        self._keep = keep
        self._log = get_logger()

    def submit(self, collection: str, work: Work, owner: str, request_id: str | None) -> Job:
        job = Job(id=uuid.uuid4().hex, collection=collection, owner=owner, request_id=request_id)
        self._board.save(job)
        self._board.forget_beyond(self._keep)
        self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Work) -> None:
        job.state, job.started_at = "running", time.time()
        self._board.save(job)
        last = time.monotonic()

        def progress(report: IngestReport) -> None:
            nonlocal last
            job.written, job.rejected = report.written, report.rejected
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                self._board.save(job)
                last = time.monotonic()

        try:
            outcome = work(progress)
        except VectorseamError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a bug or a store failure: keep the job's story, log the traceback
            self._log.exception("ingest job failed", extra={"job": job.id, "request_id": job.request_id})
            job.state, job.error = "failed", f"internal error ({type(exc).__name__}); see the server log"
        else:
            job.state = "succeeded"
            job.written, job.rejected = outcome.written, len(outcome.rejects)
            job.rejects = outcome.rejects[:MAX_REJECTS_SHOWN]
        job.finished_at = time.time()
        self._board.save(job)
        self._metrics.ingest_jobs.labels(job.state).inc()
        self._log.info("ingest job finished", extra={
            "job": job.id, "state": job.state, "written": job.written, "rejected": job.rejected,
            "collection": job.collection, "request_id": job.request_id})

    def get(self, job_id: str) -> Job | None:
        return self._board.get(job_id)

    def all(self) -> list[Job]:
        return self._board.all()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
