"""Background ingest jobs: accepted at once (202), run one at a time on a worker thread, polled by id.

One worker, because embedding is CPU-bound: two jobs at once would each run at half speed and slow
every search on the way. Job records live in memory (the last ``keep`` of them): a restart forgets
them, which is fine because ingest is idempotent by id and can simply be resubmitted.

A job remembers which key started it (``owner``) and the request id that started it: its log lines,
written on the worker thread long after the request ended, carry that id.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from vectorseam.client import IngestReport
from vectorseam.errors import VectorseamError
from vectorseam.service.logs import get_logger
from vectorseam.service.metrics import Metrics

State = Literal["queued", "running", "succeeded", "failed"]
MAX_REJECTS_SHOWN = 50


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


@dataclass
class Outcome:
    written: int
    rejects: list[str]


Progress = Callable[[IngestReport], None]
Work = Callable[[Progress], Outcome]


class JobRunner:
    def __init__(self, metrics: Metrics, keep: int = 200) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vectorseam-ingest")
        self._metrics = metrics
        self._keep = keep
        self._log = get_logger()

    def submit(self, collection: str, work: Work, owner: str, request_id: str | None) -> Job:
        job = Job(id=uuid.uuid4().hex, collection=collection, owner=owner, request_id=request_id)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.state in ("queued", "running"):
                    break  # never forget a job that has not finished
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Work) -> None:
        job.state, job.started_at = "running", time.time()

        def progress(report: IngestReport) -> None:
            job.written, job.rejected = report.written, report.rejected

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
        self._metrics.ingest_jobs.labels(job.state).inc()
        self._log.info("ingest job finished", extra={
            "job": job.id, "state": job.state, "written": job.written, "rejected": job.rejected,
            "collection": job.collection, "request_id": job.request_id})

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
