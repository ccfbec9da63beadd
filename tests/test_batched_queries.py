"""Concurrent single-vector queries gathered into one store call (vectorseam.stores.batched): each caller
gets exactly the hits it gets alone, fewer store calls are made, and a bad query fails only itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pytest

from vectorseam.errors import DimensionMismatchError, ValidationError
from vectorseam.stores.batched import GATHER_MAX_S, IDLE_S, BatchedQueries
from vectorseam.stores.memory import MemoryStore
from vectorseam.stores.wrappers import StoreWrapper
from vectorseam.types import CollectionSpec, Record

T = TypeVar("T")
D = 32


class Slow(StoreWrapper):
    """The real store, each query held 20 ms, so that queries arriving meanwhile queue behind it."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.matrices: list[int] = []

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        if operation == "query":
            time.sleep(0.02)
        return fn()

    def query(self, collection: str, vectors: Any, k: int = 10, filter: Any = None,
              include_vectors: bool = False) -> Any:
        self.matrices.append(np.atleast_2d(np.asarray(vectors)).shape[0])
        return super().query(collection, vectors, k, filter, include_vectors)


@pytest.fixture
def store() -> MemoryStore:
    rng = np.random.default_rng(3)
    memory = MemoryStore()
    memory.ensure_collection(CollectionSpec("c", D, "cosine"))
    vectors = rng.normal(size=(500, D)).astype(np.float32)
    vectors[250] = vectors[10]  # a tie: broken by id alike in a batch and alone
    memory.upsert("c", [Record(f"r{i:03d}", v, f"t{i}", {"even": i % 2 == 0}) for i, v in enumerate(vectors)])
    return memory


def test_concurrent_queries_share_calls_and_get_their_own_hits(store: MemoryStore) -> None:
    slow = Slow(store)
    batched = BatchedQueries(slow)
    queries = np.random.default_rng(4).normal(size=(40, D)).astype(np.float32)
    queries[0] = store.fetch("c", ["r010"])[0].vector  # type: ignore[assignment]
    alone = [store.query("c", q, k=7)[0] for q in queries]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda q: batched.query("c", q, k=7)[0], queries))
    assert [[(h.id, h.score) for h in hits] for hits in together] == [[(h.id, h.score) for h in hits] for hits in alone]
    assert sum(slow.matrices) == len(queries) and max(slow.matrices) > 1  # gathered, none lost or repeated
    assert batched.calls < len(queries)


def test_matrix_queries_go_straight_to_the_store(store: MemoryStore) -> None:
    slow = Slow(store)
    batched = BatchedQueries(slow)
    q = np.ones(D, dtype=np.float32)
    assert len(batched.query("c", np.stack([q, -q]), k=3)) == 2
    assert batched.calls == 0 and slow.matrices == [2]


def test_filtered_queries_share_calls_only_with_the_same_filter(store: MemoryStore) -> None:
    """Concurrent queries with one filter share a call; other filters, among them one equal in Python
    ({"even": 1} == {"even": True}) but not to the store, get their own, and every answer is its own."""
    store.upsert("c", [Record("n1", np.ones(D, dtype=np.float32), "n", {"even": 1})])
    slow = Slow(store)
    batched = BatchedQueries(slow)
    queries = np.random.default_rng(8).normal(size=(24, D)).astype(np.float32)
    queries[5] = np.ones(D, dtype=np.float32)
    queries[4] = np.ones(D, dtype=np.float32)
    filters: list[dict[str, Any] | None] = [{"even": True}, {"even": 1}, {"even": False}, None]
    asked = [(q, filters[i % 4]) for i, q in enumerate(queries)]
    alone = [store.query("c", q, k=4, filter=f)[0] for q, f in asked]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda qf: batched.query("c", qf[0], k=4, filter=qf[1])[0], asked))
    assert together == alone
    assert together[5][0].id == "n1"  # {"even": 1}: the integer 1, which {"even": True} misses
    assert "n1" not in [h.id for h in together[4]]
    assert batched.calls < len(asked)
    with pytest.raises(ValidationError):  # a bad filter fails in its caller, before it queues
        batched.query("c", queries[0], k=4, filter={"even": {"$near": 1}})


def test_a_bad_vector_fails_only_its_own_query(store: MemoryStore) -> None:
    batched = BatchedQueries(Slow(store))
    good = np.random.default_rng(5).normal(size=(6, D)).astype(np.float32)
    results: dict[int, Any] = {}

    def ask(i: int) -> None:
        vector = np.ones(D + 1, dtype=np.float32) if i == 3 else good[i]
        try:
            results[i] = batched.query("c", vector, k=5)[0]
        except DimensionMismatchError as exc:
            results[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(results[3], DimensionMismatchError)
    assert all(results[i] == store.query("c", good[i], k=5)[0] for i in range(6) if i != 3)


class CountingTurn(threading.Condition):
    """The wrapper's condition, recording the timeout of every wait (a wait for companions has one)."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            self.timeouts.append(timeout)
        return super().wait(timeout)


def test_callers_back_from_a_batch_are_gathered_into_the_next(store: MemoryStore) -> None:
    """Four threads asking 15 queries each, one after another: the first caller back from a batch used to
    find the store idle and run alone while the other three queued behind it (batches of 1 and 3). It now
    waits for them (a bounded wait: a quarter of the last scan, at most 2 ms), so batches hold all four."""
    slow = Slow(store)
    batched = BatchedQueries(slow)
    queries = np.random.default_rng(6).normal(size=(4, 15, D)).astype(np.float32)
    alone = [[store.query("c", q, k=5)[0] for q in thread] for thread in queries]
    got: dict[int, list[Any]] = {}

    def ask(t: int) -> None:
        got[t] = [batched.query("c", q, k=5)[0] for q in queries[t]]

    threads = [threading.Thread(target=ask, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[t] for t in range(4)] == alone
    assert sum(slow.matrices) == 60
    assert len(slow.matrices) <= 20, f"batches of {slow.matrices}: the callers were not gathered"


def test_a_query_waits_for_companions_only_while_the_store_is_busy(store: MemoryStore) -> None:
    batched = BatchedQueries(Slow(store))
    turn = CountingTurn()
    batched._turn = turn
    q = np.random.default_rng(7).normal(size=(4, D)).astype(np.float32)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda v: batched.query("c", v, k=3), q))  # a batch of several has just run
    turn.timeouts.clear()
    started = time.monotonic()
    assert batched.query("c", q[0], k=3) == store.query("c", q[0], k=3)  # alone, right after it
    assert turn.timeouts and max(turn.timeouts) <= GATHER_MAX_S  # it waited for the others, boundedly
    assert time.monotonic() - started < 1.0
    time.sleep(2 * IDLE_S)  # the store goes idle: a lone query runs at once
    turn.timeouts.clear()
    assert batched.query("c", q[1], k=3) == store.query("c", q[1], k=3)
    assert turn.timeouts == []
