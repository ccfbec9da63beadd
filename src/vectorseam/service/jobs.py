"""Background ingest jobs: accepted at once (202), run one at a time on a worker thread, polled by id.

One worker thread per server process, because embedding is CPU-bound: two jobs at once would each
run at half speed and slow every search on the way.

Job records live in a table, not in the process: with ``workers > 1`` or several replicas, the poll
``GET /v1/jobs/{id}`` lands on whichever process the kernel or the load balancer picks, usually not
the one running the job, and must still find it. The table is in PostgreSQL when there is one to
share (``service.jobs_dsn``, or the pgvector store's database): every replica on every machine sees
every job. Otherwise it is SQLite in ``data_dir`` (``service/jobs.sqlite3``), shared by the worker
processes of one machine. The last ``keep`` finished jobs are kept.

A process beats for its unfinished jobs every ``HEARTBEAT_S``. A job whose process is gone (killed,
restarted) before it finished is reported as failed with that reason instead of "running" forever:
at once when the process ran on the reader's own machine and no longer exists, else once its
heartbeat is ``STALE_S`` old. Ingest is idempotent by id, so such a job can simply be resubmitted.

A job remembers which key started it (``owner``) and the request id that started it: its log lines,
written on the worker thread long after the request ended, carry that id.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from vectorseam.client import IngestReport
from vectorseam.durable import connect
from vectorseam.errors import StoreUnavailableError, VectorseamError
from vectorseam.service.logs import get_logger
from vectorseam.service.metrics import Metrics

State = Literal["queued", "running", "succeeded", "failed"]
MAX_REJECTS_SHOWN = 50
PROGRESS_EVERY_S = 0.25  # progress reaches the table at most this often (each write is a transaction)
HEARTBEAT_S = 5.0
STALE_S = 60.0  # an unfinished job whose process has not beaten for this long is reported failed
_HOST = socket.gethostname()
_COLUMNS = ("id", "collection", "owner", "request_id", "state", "written", "rejected", "rejects", "error",
            "created_at", "started_at", "finished_at", "host", "pid", "beat_at")
_TABLE_COLUMNS = (
    "id TEXT PRIMARY KEY, collection TEXT NOT NULL, owner TEXT NOT NULL, request_id TEXT, state TEXT NOT NULL,"
    " written BIGINT NOT NULL, rejected BIGINT NOT NULL, rejects TEXT NOT NULL, error TEXT,"
    " created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION,"
    " host TEXT NOT NULL, pid BIGINT NOT NULL, beat_at DOUBLE PRECISION NOT NULL")


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
    beat_at: float = field(default_factory=time.time)  # the last sign of life of the process running it

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


@dataclass
class Outcome:
    written: int
    rejects: list[str]
    error: str | None = None  # a job that ran to the end but failed its purpose (every row rejected)


Progress = Callable[[IngestReport], None]
Work = Callable[[Progress], Outcome]


class JobBoard:
    """The jobs table; subclasses say where it is (SQLite on this machine, PostgreSQL for replicas).

    ``mark`` is the placeholder of the subclass's driver; ``_run`` executes one statement in its own
    transaction and returns the rows it read.
    """

    mark = "?"

    def _run(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self.mark)

    def save(self, job: Job) -> None:
        row = {name: getattr(job, name) for name in _COLUMNS}
        row["rejects"] = json.dumps(job.rejects)
        marks = ", ".join("?" * len(_COLUMNS))
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "id")
        self._run(self._sql(f"INSERT INTO {{jobs}} ({', '.join(_COLUMNS)}) VALUES ({marks}) "
                            f"ON CONFLICT (id) DO UPDATE SET {updates}"), [row[name] for name in _COLUMNS])

    def beat(self, job_ids: Sequence[str]) -> None:
        """A sign of life for this process's unfinished jobs."""
        if job_ids:
            marks = ", ".join("?" * len(job_ids))
            self._run(self._sql(f"UPDATE {{jobs}} SET beat_at = ? WHERE id IN ({marks})"), [time.time(), *job_ids])

    def forget_beyond(self, keep: int) -> None:
        """Drop the oldest finished jobs past the newest ``keep``; unfinished ones always stay."""
        self._run(self._sql("DELETE FROM {jobs} WHERE state IN ('succeeded', 'failed') AND id NOT IN "
                            "(SELECT id FROM {jobs} ORDER BY created_at DESC LIMIT ?)"), [keep])

    def get(self, job_id: str) -> Job | None:
        rows = self._run(self._sql(f"SELECT {', '.join(_COLUMNS)} FROM {{jobs}} WHERE id = ?"), [job_id])
        return self._checked(_job(rows[0])) if rows else None

    def all(self) -> list[Job]:
        rows = self._run(f"SELECT {', '.join(_COLUMNS)} FROM {{jobs}} ORDER BY created_at DESC")
        return [self._checked(_job(row)) for row in rows]

    def _checked(self, job: Job) -> Job:
        """An unfinished job whose process is gone failed: say so, once."""
        if job.finished:
            return job
        if job.host == _HOST and not _alive(job.pid):
            why = f"the server process that ran this job (pid {job.pid}) stopped before it finished"
        elif time.time() - job.beat_at > STALE_S:
            why = (f"the server process that ran this job (pid {job.pid} on {job.host}) has given no sign of life "
                   f"for {time.time() - job.beat_at:.0f} s")
        else:
            return job
        job.state, job.finished_at = "failed", time.time()
        job.error = f"{why}; submit it again (ingest is idempotent by id: what was written is kept)"
        self.save(job)
        return job


class SqliteJobBoard(JobBoard):
    """``data_dir/service/jobs.sqlite3``: the worker processes of one machine share it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._created = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # a connection per call: the request threads, the job thread and other processes all write.
        # The table is made by the first job, so a server that runs none needs no writable data_dir.
        # durable.connect: the file 0600 in a 0700 folder (it names every tenant's jobs), WAL, autocommit
        with closing(connect(self.path, timeout=30.0)) as db:
            if not self._created:
                db.execute(f"CREATE TABLE IF NOT EXISTS jobs ({_TABLE_COLUMNS})")
                db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at)")
                self._created = True
            yield db

    def _run(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self._created and not self.path.exists() and statement.startswith("SELECT"):
            return []  # no job yet: nothing to read, and nothing to create
        try:
            with self._connect() as db:
                return db.execute(statement.format(jobs="jobs"), params).fetchall()
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailableError(
                f"the ingest jobs table {self.path} cannot be used ({exc}); data_dir must be writable by the "
                "server (or set service.jobs_dsn to a PostgreSQL database)") from exc


class PostgresJobBoard(JobBoard):
    """A table in PostgreSQL (``<jobs_schema>.jobs``): every replica on every machine shares it."""

    mark = "%s"

    def __init__(self, dsn: str, schema: str) -> None:
        from psycopg import sql

        self.dsn = dsn
        self.table = sql.Identifier(schema, "jobs").as_string(None)
        self._schema = sql.Identifier(schema).as_string(None)
        self._created = False
        self._lock = threading.Lock()

    def _run(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
                if not self._created:
                    with self._lock:
                        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._schema}")
                        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({_TABLE_COLUMNS})")
                        self._created = True
                cur = conn.execute(statement.format(jobs=self.table).encode(), params)
                return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:  # its message names no secret: the DSN is not in it
            raise StoreUnavailableError(
                f"the ingest jobs table {self.table} in PostgreSQL cannot be used ({type(exc).__name__}: "
                f"{str(exc).strip()[:300]}); the role needs to create it there (or set service.jobs_schema "
                "to a schema it may use)") from exc


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
    def __init__(self, metrics: Metrics, board: JobBoard, keep: int = 200) -> None:
        self._board = board
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vectorseam-ingest")
        self._metrics = metrics
        self._keep = keep
        self._log = get_logger()
        self._mine: set[str] = set()  # this process's unfinished jobs, which its heartbeat covers
        self._mine_lock = threading.Lock()
        self._stop = threading.Event()
        self._heart = threading.Thread(target=self._beat, name="vectorseam-jobs-heartbeat", daemon=True)
        self._heart.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._mine_lock:
                mine = sorted(self._mine)
            try:
                self._board.beat(mine)
            except Exception:  # a database hiccup: the next beat may pass; STALE_S spans many beats
                self._log.warning("could not record the ingest jobs' heartbeat", exc_info=True)

    @property
    def busy(self) -> bool:
        """Whether a job of this process is queued or running (its writes may hold the store's lock)."""
        return bool(self._mine)

    def submit(self, collection: str, work: Work, owner: str, request_id: str | None) -> Job:
        job = Job(id=uuid.uuid4().hex, collection=collection, owner=owner, request_id=request_id)
        self._save(job, running=False)  # unrecorded, the job could never be polled: refuse it (503)
        with self._mine_lock:
            self._mine.add(job.id)
        self._board.forget_beyond(self._keep)
        self._pool.submit(self._run, job, work)
        return job

    def _save(self, job: Job, running: bool = True) -> None:
        """Record the job; from the job's own thread (``running``) a failure to record is logged and
        the job goes on: its writes matter more than its status, which the next save repairs."""
        job.beat_at = time.time()  # this process is alive: a save is a heartbeat too
        try:
            self._board.save(job)
        except VectorseamError:
            if not running:
                raise
            self._log.warning("could not record the ingest job's state", exc_info=True,
                              extra={"job": job.id, "state": job.state, "request_id": job.request_id})

    def _run(self, job: Job, work: Work) -> None:
        job.state, job.started_at = "running", time.time()
        self._save(job)
        last = time.monotonic()

        def progress(report: IngestReport) -> None:
            nonlocal last
            job.written, job.rejected = report.written, report.rejected
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                self._save(job)
                last = time.monotonic()

        try:
            outcome = work(progress)
        except VectorseamError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a bug or a store failure: keep the job's story, log the traceback
            self._log.exception("ingest job failed", extra={"job": job.id, "request_id": job.request_id})
            job.state, job.error = "failed", f"internal error ({type(exc).__name__}); see the server log"
        else:
            job.state, job.error = ("failed" if outcome.error else "succeeded"), outcome.error
            job.written, job.rejected = outcome.written, len(outcome.rejects)
            job.rejects = outcome.rejects[:MAX_REJECTS_SHOWN]
        job.finished_at = time.time()
        try:
            self._save(job)
        finally:
            with self._mine_lock:
                self._mine.discard(job.id)
        self._metrics.ingest_jobs.labels(job.state).inc()
        self._log.info("ingest job finished", extra={
            "job": job.id, "state": job.state, "written": job.written, "rejected": job.rejected,
            "collection": job.collection, "request_id": job.request_id})

    def get(self, job_id: str) -> Job | None:
        return self._board.get(job_id)

    def all(self) -> list[Job]:
        return self._board.all()

    def shutdown(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
