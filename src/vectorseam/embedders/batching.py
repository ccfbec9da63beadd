"""Query micro-batching: concurrent ``embed_query`` calls share one model call (used by
:class:`~vectorseam.embedders.local.LocalEmbedder`).

Why: a server answering text queries spends most of each request in the model, and a model call on
one short text uses the CPU poorly (fixed per-call overhead, matrix products too thin to fill the
cores). Embedding the texts of the requests in flight together costs little more than embedding
one, so throughput grows with the requests in flight instead of staying flat.

How: no background thread, and no fixed wait. A caller that finds the model idle embeds its text
at once (a lone query pays nothing). Callers arriving while a model call runs queue up; when it ends,
the first of them (the *leader*) takes up to ``max_batch`` queued texts into the next call and hands
each caller its row, so a batch is whatever arrived during one model call: it grows with the load by
itself. ``max_wait`` (default 0) adds an optional pause for more texts before an idle model's call.
A batch that fails (one text too long, say) is embedded again text by text, so each caller gets its
own vector or its own error, exactly as without batching.

The vectors are those of ``embed_documents`` on the batch: the same model and normalisation, so the
hits are the ones a query alone gets (scores can differ in the last float32 digits, as a model's
output does between batch shapes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

MAX_BATCH = 32
MAX_WAIT_S = 0.0


@dataclass
class _Slot:
    text: str
    wake: threading.Event = field(default_factory=threading.Event)  # done, or made the leader
    lead: bool = False
    finished: bool = False
    vector: npt.NDArray[np.float32] | None = None
    error: BaseException | None = None


class QueryBatcher:
    """Batches concurrent single-text calls into calls of ``embed_many`` (texts -> one row each);
    ``embed_one`` embeds a text alone when its batch failed."""

    def __init__(self, embed_many: Callable[[list[str]], npt.NDArray[np.float32]],
                 embed_one: Callable[[str], npt.NDArray[np.float32]] | None = None,
                 max_batch: int = MAX_BATCH, max_wait: float = MAX_WAIT_S) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait >= 0, got {max_batch} and {max_wait}")
        self.embed_many = embed_many
        self.embed_one = embed_one or (lambda text: embed_many([text])[0])
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._lock = threading.Condition()
        self._queued: list[_Slot] = []
        self._leader = False  # a caller is gathering the queued texts into the next call
        self._busy = False  # a model call is running
        self.calls = 0  # model calls made (tests and metrics read it)

    def embed(self, text: str) -> npt.NDArray[np.float32]:
        """``text``'s vector, from a model call it may share with the texts of other threads' calls."""
        slot = _Slot(text)
        with self._lock:
            self._queued.append(slot)
            if not self._leader:
                self._leader = slot.lead = True
            elif len(self._queued) >= self.max_batch:
                self._lock.notify_all()  # the leader need not wait for more
        while not slot.finished:
            if slot.lead:
                slot.lead = False
                self._lead()
            else:
                slot.wake.wait()
                slot.wake.clear()
        if slot.error is not None:
            raise slot.error
        assert slot.vector is not None
        return slot.vector

    def _lead(self) -> None:
        """Wait while the model is busy (or ``max_wait``), take the queued texts, embed them."""
        deadline = time.monotonic() + self.max_wait
        with self._lock:
            while len(self._queued) < self.max_batch:
                if self._busy:
                    self._lock.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            batch, self._queued = self._queued[: self.max_batch], self._queued[self.max_batch :]
            self._busy = True
            if self._queued:  # more than one call's worth waiting: the next of them leads the next call
                self._queued[0].lead = True
                self._queued[0].wake.set()
            else:
                self._leader = False
        try:
            self._embed(batch)
        finally:
            with self._lock:
                self._busy = False
                self._lock.notify_all()
            for slot in batch:
                slot.finished = True
                slot.wake.set()

    def _embed(self, batch: list[_Slot]) -> None:
        self.calls += 1
        try:
            vectors = self.embed_many([s.text for s in batch])
        except Exception:  # each caller gets its own answer below
            for slot in batch:  # one bad text must not fail the others' queries
                try:
                    slot.vector = self.embed_one(slot.text)
                except Exception as exc:  # re-raised in the caller's thread
                    slot.error = exc
            return
        for slot, vector in zip(batch, vectors, strict=True):
            slot.vector = vector
