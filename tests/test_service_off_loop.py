"""The hot read routes' thread pool and their pre-encoded answers (service/off_loop.py)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

from vectorseam.service.logs import request_id_var
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
