"""Concurrent single-vector queries answered by one store call (the HTTP service's requests in flight).

Why: the memory store answers a matrix of queries with one pass over its rows (a matrix product reads
the vectors once for all of them) and runs one query at a time per process anyway (its lock). So
requests that arrive while a query runs wait for the store either way; gathered into the next call,
they share its pass: 8 queries cost about what 3 cost one by one (benchmarks/load_search.py).
A store on a server (pgvector, Qdrant) runs concurrent queries in parallel and loops over a matrix's
rows: it gains nothing, so the service wraps only the memory store (:meth:`VectorSeam.batch_concurrent_queries`).

How: no thread and no fixed wait, as the model's query batching (:mod:`vectorseam.embedders.batching`).
A caller that finds no query running runs its own at once (a lone query pays nothing), after one
yield of the interpreter: the text queries of one model call are released together, and the yield
lets them all queue (one scan for 8 of them instead of two, text throughput +50%, load_search).
Callers that arrive meanwhile queue; when the call ends, the first of them takes every queued query
of its kind (collection, ``k``, ``include_vectors``) into the next call. Only queries without a filter are
gathered: filtered ones plan per filter and go straight to the store.

The answers are the ones each query gets alone: the memory store rescores every candidate near the
k-th exactly, per query (``Collection.best``), so the batch's float32 products change no hit and no
score. A batch that fails is run again query by query, so each caller gets its own answer or error.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vectorseam.filters import FilterLike
from vectorseam.store import VectorStore
from vectorseam.stores.wrappers import StoreWrapper
from vectorseam.types import Hit

MAX_BATCH = 64


@dataclass(eq=False)
class _Waiting:
    kind: tuple[str, int, bool]
    vector: npt.NDArray[np.float32]
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
        self.calls = 0  # store queries made for gathered callers (tests read it)

    def query(self, collection: str, vectors: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
              include_vectors: bool = False) -> list[list[Hit]]:
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            matrix = None  # not numbers: the store says what is wrong with it
        single = matrix is not None and (matrix.ndim == 1 or (matrix.ndim == 2 and matrix.shape[0] == 1))
        if matrix is None or not single or filter is not None:
            return self.inner.query(collection, vectors, k, filter, include_vectors)
        me = _Waiting((collection, k, include_vectors), matrix.reshape(-1))
        with self._turn:
            self._queued.append(me)
        # let threads released with this one (one model call's queries) queue too: sched_yield lets go of
        # the GIL; time.sleep(0) does as well but costs 70 us here (the kernel's 50 us timer slack)
        os.sched_yield()
        while True:
            with self._turn:
                while self._running and not me.done:
                    self._turn.wait()
                if me.done:
                    break
                kind = self._queued[0].kind  # the longest waiting kind goes first: no kind starves
                batch = [w for w in self._queued if w.kind == kind][: self.max_batch]
                self._queued = [w for w in self._queued if w not in batch]
                self._running = True
            try:
                self._run(batch)
            finally:
                with self._turn:
                    self._running = False
                    self._turn.notify_all()
        if me.error is not None:
            raise me.error
        return [me.hits]

    def _run(self, batch: list[_Waiting]) -> None:
        collection, k, include_vectors = batch[0].kind
        self.calls += 1
        try:
            answers = self.inner.query(collection, np.stack([w.vector for w in batch]), k, None, include_vectors)
        except Exception:  # one bad vector (a wrong length) must not fail the others' queries
            answers = None
        for i, waiting in enumerate(batch):
            if answers is not None:
                waiting.hits = answers[i]
            else:
                try:
                    waiting.hits = self.inner.query(collection, waiting.vector, k, None, include_vectors)[0]
                except Exception as exc:  # re-raised in the caller's own thread
                    waiting.error = exc
            waiting.done = True
