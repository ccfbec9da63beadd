"""Concurrent single-vector queries answered by one store call (the HTTP service's requests in flight).

Why: the memory store answers a matrix of queries with one pass over its rows (a matrix product reads
the vectors once for all of them) and runs one query at a time per process anyway (its lock). So
requests that arrive while a query runs wait for the store either way; gathered into the next call,
they share its pass: 8 queries cost about what 3 cost one by one (benchmarks/load_search.py).
A store on a server (pgvector, Qdrant) runs concurrent queries in parallel and loops over a matrix's
rows: it gains nothing, so the service wraps only the memory store (:meth:`VectorSeam.batch_concurrent_queries`).

How: no thread of its own. A caller that finds no query running on an idle store runs its own at once
(a lone query pays nothing), after one yield of the interpreter: the text queries of one model call are
released together, and the yield lets them all queue (one scan for 8 of them instead of two, text
throughput +50%, load_search). Callers that arrive meanwhile queue; when the call ends, the first of
them takes every queued query of its kind (collection, ``k``, ``include_vectors``, filter) into the next
call; kinds take turns in the order they arrived. Under load (a batch ended less than 50 ms ago) that
caller first waits, boundedly, for as many callers as the recent batches held
(:meth:`BatchedQueries._gather`).

Filtered queries queue too: queries with the same filter share a call (one plan, one pass over the
matching rows), and queries with different filters run in the order they came, where they used to
contend for the store's lock one by one. 8 in flight with one filter at 100k records: 382 requests/s
instead of 236-251, p50 16.9 ms instead of 28-30 (benchmarks/load_search.py).

The answers are the ones each query gets alone: the memory store rescores every candidate near the
k-th exactly, per query (``Collection.best``), so the batch's float32 products change no hit and no
score. A batch that fails is run again query by query, so each caller gets its own answer or error.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vectorseam.filters import Filter, FilterLike, parse_filter
from vectorseam.store import VectorStore
from vectorseam.stores.wrappers import StoreWrapper
from vectorseam.types import Hit

MAX_BATCH = 64
GATHER_SHARE = 0.25  # under load, a batch waits for its companions up to this share of the last scan's time
GATHER_MAX_S = 0.002  # ... and never longer than this
RECENT = 8  # batches whose largest size is the concurrency expected
IDLE_S = 0.05  # a query arriving this long after the last batch ended finds an idle store: it waits for nobody


@dataclass(eq=False)
class _Waiting:
    kind: tuple[str, int, bool, str]  # collection, k, include_vectors, the filter's repr
    vector: npt.NDArray[np.float32]
    filter: Filter | None
    done: bool = False
    hits: list[Hit] = field(default_factory=list)
    error: BaseException | None = None


class BatchedQueries(StoreWrapper):
    def __init__(self, inner: VectorStore, max_batch: int = MAX_BATCH) -> None:
        super().__init__(inner)
        self.max_batch = max_batch
        self._turn = threading.Condition()
        self._queued: list[_Waiting] = []
        self._running = False
        self._sizes: collections.deque[int] = collections.deque(maxlen=RECENT)
        self._scan_s = 0.0  # how long the last batch took
        self._ended = 0.0  # when it ended (time.monotonic)
        self.calls = 0  # store queries made for gathered callers (tests read it)

    def query(self, collection: str, vectors: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
              include_vectors: bool = False) -> list[list[Hit]]:
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            matrix = None  # not numbers: the store says what is wrong with it
        single = matrix is not None and (matrix.ndim == 1 or (matrix.ndim == 2 and matrix.shape[0] == 1))
        if matrix is None or not single:
            return self.inner.query(collection, vectors, k, filter, include_vectors)
        parsed = parse_filter(filter)  # a bad filter fails here, in its caller's thread
        # by repr, not by equality: {"a": 1} == {"a": True} in Python, but they are different filters
        me = _Waiting((collection, k, include_vectors, repr(parsed)), matrix.reshape(-1), parsed)
        with self._turn:
            self._queued.append(me)
            self._turn.notify_all()  # a batch gathering its companions may now be complete
        # let threads released with this one (one model call's queries) queue too: sched_yield lets go of
        # the GIL; time.sleep(0) does as well but costs 70 us here (the kernel's 50 us timer slack)
        os.sched_yield()
        while True:
            with self._turn:
                while self._running and not me.done:
                    self._turn.wait()
                if me.done:
                    break
                if self._gather() or me.done:
                    continue  # another caller started a batch meanwhile, or answered this one
                kind = self._queued[0].kind  # the longest waiting kind goes first: no kind starves
                batch = [w for w in self._queued if w.kind == kind][: self.max_batch]
                self._queued = [w for w in self._queued if w not in batch]
                self._running = True
            started = time.monotonic()
            try:
                self._run(batch)
            finally:
                with self._turn:
                    self._running = False
                    self._ended = time.monotonic()
                    self._scan_s = self._ended - started
                    self._sizes.append(len(batch))
                    self._turn.notify_all()
        if me.error is not None:
            raise me.error
        return [me.hits]

    def _gather(self) -> bool:
        """Under load, wait (lock held, released while waiting) until as many queries are queued as
        the recent batches held, or a quarter of the last scan's time has passed (at most 2 ms). True
        when another caller started a batch meanwhile.

        Why: callers answered by one batch come back one after another (each request's answer is sent,
        the next one parsed), so the first to return finds the store idle: it ran alone and the others
        waited for it, and 8 in flight became batches of 1 and 7 (twice the scans, 4 queries a scan on
        average). Waiting for them is worth a scan's quarter; a store idle for 50 ms waits for nobody,
        so a lone query still runs at once."""
        now = time.monotonic()
        if not self._sizes or now - self._ended > IDLE_S:
            return False
        expected = min(max(self._sizes), self.max_batch)
        deadline = now + min(GATHER_MAX_S, GATHER_SHARE * self._scan_s)
        while len(self._queued) < expected and not self._running:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._turn.wait(left)
        return self._running or not self._queued

    def _run(self, batch: list[_Waiting]) -> None:
        collection, k, include_vectors, _ = batch[0].kind
        shared = batch[0].filter
        self.calls += 1
        try:
            answers = self.inner.query(collection, np.stack([w.vector for w in batch]), k, shared, include_vectors)
        except Exception:  # one bad vector (a wrong length) must not fail the others' queries
            answers = None
        for i, waiting in enumerate(batch):
            if answers is not None:
                waiting.hits = answers[i]
            else:
                try:
                    waiting.hits = self.inner.query(collection, waiting.vector, k, shared, include_vectors)[0]
                except Exception as exc:  # re-raised in the caller's own thread
                    waiting.error = exc
            waiting.done = True
