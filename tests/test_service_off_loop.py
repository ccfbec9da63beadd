"""The hot read routes' thread pool and their pre-encoded answers (service/off_loop.py)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

from vectorseam.client import IngestReport
from vectorseam.service.jobs import JobRunner, Outcome, SqliteJobBoard
from vectorseam.service.logs import request_id_var
from vectorseam.service.metrics import Metrics
from vectorseam.service.models import HitOut, SearchResponse
from vectorseam.service.off_loop import OffLoop, json_response

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


def test_runs_off_the_event_loop_with_the_callers_context() -> None:
    pool = OffLoop(max_threads=2)

    def work(x: int) -> tuple[int, str, str | None, int]:
        return x * 2, marker.get(), request_id_var.get(), threading.get_ident()

    async def main() -> tuple[tuple[int, str, str | None, int], int]:
        marker.set("from the request")
        request_id_var.set("req-1")  # the access log and error bodies of work done in the thread carry it
        return await pool.run(work, 21), threading.get_ident()

    try:
        (doubled, seen, request_id, thread), loop_thread = asyncio.run(main())
    finally:
        pool.shutdown()
    assert (doubled, seen, request_id) == (42, "from the request", "req-1")
    assert thread != loop_thread


def test_an_error_reaches_the_route() -> None:
    pool = OffLoop(max_threads=1)

    def fail() -> None:
        raise LookupError("no such collection")

    try:
        with pytest.raises(LookupError, match="no such collection"):
            asyncio.run(pool.run(fail))
    finally:
        pool.shutdown()


def test_json_response_is_what_fastapi_would_send() -> None:
    from fastapi.encoders import jsonable_encoder

    model = SearchResponse(collection="c", mode="dense", took_ms=1.5,
                           hits=[HitOut(id="a/b", score=0.5, text="é \u2028 x", metadata={"n": 2**70, "t": [1, "x"]})])
    response = json_response(model)
    assert response.status_code == 200
    assert response.media_type == "application/json"
    assert json.loads(bytes(response.body)) == jsonable_encoder(model, by_alias=True)


def _thread_of_each_call(pool: OffLoop, durations: list[float]) -> list[bool]:
    """Runs one call per duration (each sleeping that long), in order; True where it ran on the loop."""

    def work(seconds: float) -> int:
        time.sleep(seconds)
        return threading.get_ident()

    async def main() -> list[bool]:
        loop_thread = threading.get_ident()
        return [await pool.run(work, seconds) == loop_thread for seconds in durations]

    try:
        return asyncio.run(main())
    finally:
        pool.shutdown()


def test_a_short_call_alone_runs_on_the_loop_once_a_call_of_it_was_measured() -> None:
    # the first call has no measure: a thread; then each call whose predecessor was short runs here
    assert _thread_of_each_call(OffLoop(alone=lambda: True, inline_budget_s=0.05), [0, 0, 0]) == [False, True, True]


def test_a_long_call_sends_the_next_one_to_a_thread() -> None:
    # the second call runs here (the first was short) and takes long: the third goes to a thread, and
    # being short, lets the fourth run here again
    calls = _thread_of_each_call(OffLoop(alone=lambda: True, inline_budget_s=0.05), [0, 0.1, 0, 0])
    assert calls == [False, True, False, True]


def test_other_work_in_the_service_keeps_calls_on_threads() -> None:
    assert _thread_of_each_call(OffLoop(alone=lambda: False, inline_budget_s=0.05), [0, 0, 0]) == [False] * 3


def test_a_call_on_the_loop_runs_in_a_copy_of_the_context_and_raises_there() -> None:
    pool = OffLoop(alone=lambda: True)

    def mark(value: str) -> str:
        marker.set(value)  # in a copy: the request's own context does not see it
        if value == "fail":
            raise LookupError("no such record")
        return request_id_var.get() or ""

    async def main() -> tuple[list[str], str]:
        request_id_var.set("req-2")
        seen = [await pool.run(mark, "a"), await pool.run(mark, "b")]  # the second on the loop
        with pytest.raises(LookupError, match="no such record"):
            await pool.run(mark, "fail")
        return seen, marker.get()

    try:
        seen, after = asyncio.run(main())
    finally:
        pool.shutdown()
    assert seen == ["req-2", "req-2"]
    assert after == "unset"


def test_an_ingest_job_queued_or_running_keeps_the_service_busy(tmp_path: Path) -> None:
    metrics = Metrics()
    runner = JobRunner(metrics, SqliteJobBoard(tmp_path / "jobs.sqlite3"))
    release = threading.Event()

    def work(progress: Callable[[IngestReport], None]) -> Outcome:
        release.wait(10)
        return Outcome(written=0, rejects=[])

    try:
        assert not runner.busy
        runner.submit("c", work, owner="ops", request_id=None)
        assert runner.busy  # queued or running: its writes may hold the store's lock
        release.set()
        deadline = time.monotonic() + 10
        while runner.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not runner.busy
    finally:
        release.set()
        runner.shutdown()
