"""Property-based fuzzing of the live service with hostile filters and bodies (hypothesis).

Beside the schemathesis run (tests/test_service_schemathesis.py), which generates requests from the
OpenAPI schema, this generates what the schema cannot describe: filters nested thousands of levels
deep, numbers of hundreds of digits, huge ``$in`` lists, NUL characters, operator keys in the wrong
places, ids and ingest paths no file system takes, hostile text templates. The properties: no answer
is a 5xx, and every error body carries the request id that the ``X-Request-ID`` header has.

Runs on its own server (fuzzing deletes by filter and ingests) with an admin key, so every route is
reached past authentication. Deterministic (``derandomize``) and bounded to well under a minute;
``VECTORSEAM_SERVICE_FUZZ_EXAMPLES`` raises the number of examples for a longer local run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_service_support import ADMIN_KEY, COLLECTION, Service, build_service

EXAMPLES = int(os.environ.get("VECTORSEAM_SERVICE_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
FIELD_OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]
OPERATORS = [*FIELD_OPERATORS, "$and", "$or", "$not", "$regex", "$", "$$and"]


@pytest.fixture(scope="module")
def svc(local_embedder) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    service = build_service(local_embedder)
    (service.ingest_dir / "rows.jsonl").write_text(
        '{"id": "a", "text": "first", "Score": 3}\n{"id": "b", "text": "second", "Score": "x"}\n', encoding="utf-8")
    (service.ingest_dir / "rows.csv").write_text('id,text,Score\n1,"one",4\n2,"two\n', encoding="utf-8")
    yield service
    service.server.stop()
    service.client.close()


@pytest.fixture(scope="module")
def http(svc: Service) -> Iterator[httpx.Client]:
    with svc.http(ADMIN_KEY) as client:
        yield client


# --- strategies -------------------------------------------------------------------------------------------

# Built by map: hypothesis draws (and silently drops) integers this large only up to a size limit.
huge_ints = st.builds(lambda digits, sign: sign * 10 ** digits + 7, st.integers(310, 700), st.sampled_from([1, -1]))
texts = st.text(max_size=40) | st.sampled_from(["\x00", "a\x00b", "2024-01-01", "2024-02-30T25:00:00Z", "é" * 3])
scalars: st.SearchStrategy[Any] = (st.integers(-5, 5) | huge_ints | st.floats(allow_nan=True, allow_infinity=True)
                                   | texts | st.booleans() | st.none())
# Mostly well-formed shapes with hostile values (so the value checks are reached), some plain junk.
fields = st.sampled_from(["Score", "category", "tags", "missing"])
keys = fields | fields | st.text(max_size=12) | st.sampled_from(OPERATORS)
lists = st.lists(scalars, max_size=6) | st.integers(0, 3000).map(lambda n: list(range(n)))
operands = scalars | scalars | lists | st.dictionaries(st.sampled_from(OPERATORS), scalars, max_size=2)


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (st.builds(lambda c: {"$and": c}, st.lists(children, max_size=4))
            | st.builds(lambda c: {"$or": c}, st.lists(children, max_size=4))
            | st.builds(lambda c: {"$not": c}, children)
            | st.dictionaries(keys, children | operands, max_size=3)
            | st.lists(children, max_size=3))


field_ops = st.sampled_from(FIELD_OPERATORS) | st.sampled_from(OPERATORS)
field_conditions = st.dictionaries(keys, scalars | st.dictionaries(field_ops, operands, min_size=1, max_size=2),
                                   max_size=2)
# Well-formed filters whose values are hostile (huge numbers, NUL, NaN, long lists), and random junk.
one_condition = st.builds(lambda key, op, value: {key: {op: value}}, fields, st.sampled_from(FIELD_OPERATORS),
                          huge_ints | scalars | lists)
well_formed = st.recursive(one_condition, lambda c: (st.builds(lambda cs: {"$and": cs}, st.lists(c, min_size=1,
                                                                                                   max_size=3))
                                                     | st.builds(lambda cs: {"$or": cs}, st.lists(c, min_size=1,
                                                                                                  max_size=3))
                                                     | st.builds(lambda x: {"$not": x}, c)), max_leaves=6)
filters: st.SearchStrategy[Any] = well_formed | st.recursive(field_conditions | scalars, extend, max_leaves=12)


def nested_json(op: str, depth: int, leaf: str) -> str:
    """A filter nested ``depth`` levels, as JSON text (json.dumps itself recurses too deeply for this)."""
    if op == "$not":
        return '{"$not": ' * depth + leaf + "}" * depth
    return f'{{"{op}": [' * depth + leaf + "]}" * depth


deep_filters = st.builds(nested_json, st.sampled_from(["$not", "$and", "$or"]), st.integers(1, 4000),
                         st.sampled_from(['{"Score": 1}', '{"Score": {"$gte": 1' + "0" * 400 + "}}", "[]", "1"]))


def check(resp: httpx.Response) -> None:
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:2000]}"
    if resp.status_code >= 400:
        body = resp.json()
        assert body["request_id"] and body["request_id"] == resp.headers["x-request-id"], body
        assert isinstance(body["error"]["message"], str)


# --- properties ---------------------------------------------------------------------------------------------

FILTER_ROUTES = {
    "search": {"vector": [0.1] * 384, "k": 3},
    "search-text": {"query": "coffee", "mode": "hybrid", "k": 3},
    "recommend": {"positive": ["r00"], "k": 3},
    "ask": {"question": "which coffee?", "k": 2},
    "records/delete": {},
}
VICTIMS = {"records": [  # refilled before each delete, so that a filter always has records to be evaluated on
    {"id": "v1", "vector": [0.1] * 384, "metadata": {"Score": 3, "category": "a", "tags": ["x", "y"]}},
    {"id": "v2", "vector": [0.2] * 384, "metadata": {"Score": 2.5, "category": "2024-01-01", "tags": [1, 2]}},
    {"id": "v3", "vector": [0.3] * 384, "metadata": {"Score": "4", "missing": None}},
]}


def post_filter(http: httpx.Client, route: str, filter_json: str) -> None:
    collection, path = COLLECTION, "search" if route == "search-text" else route
    if route == "records/delete":  # never on the shared records, which a filter could wipe out
        collection = "victims"
        assert http.post(f"/v1/collections/{collection}/records", json=VICTIMS).status_code == 200
    base = json.dumps(FILTER_ROUTES[route])[:-1]
    content = f'{base}{", " if FILTER_ROUTES[route] else ""}"filter": {filter_json}}}'
    check(http.post(f"/v1/collections/{collection}/{path}", content=content,
                    headers={"content-type": "application/json"}))


@FUZZ
@given(route=st.sampled_from(sorted(FILTER_ROUTES)), spec=filters)
def test_hostile_filters_never_cause_a_server_error(http: httpx.Client, route: str, spec: Any) -> None:
    try:
        filter_json = json.dumps(spec)
    except (ValueError, RecursionError):  # not representable as JSON at all
        return
    post_filter(http, route, filter_json)


@FUZZ
@given(route=st.sampled_from(sorted(FILTER_ROUTES)), spec=deep_filters)
def test_deeply_nested_filters_never_cause_a_server_error(http: httpx.Client, route: str, spec: str) -> None:
    post_filter(http, route, spec)


ids = st.text(min_size=0, max_size=20) | st.sampled_from(["sub/c.txt", "/x", "..", "a%2Fb", "\x00", "x" * 600])
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
metadata = st.dictionaries(st.text(max_size=10), json_values, max_size=3)
documents = st.lists(st.fixed_dictionaries({"id": ids, "text": texts}, optional={"metadata": metadata}),
                     min_size=0, max_size=4)
paths = st.sampled_from(["rows.jsonl", "rows.csv", ".", "", "../rows.jsonl", "/etc/passwd", "rows.jsonl\x00",
                         "a" * 4000, "sub/" + "b" * 300, "~/x", "\\\\server\\share"]) | st.text(max_size=300)
templates = st.none() | st.sampled_from(["{text}", "{}", "{text!z}", "{text:>200000000}", "{Score:d}", "{0}",
                                         "{text.__class__}", "{text[0]}", "{", "}", "{{text}}", "{missing}"])
bodies = {
    "records": st.fixed_dictionaries({"records": st.lists(st.fixed_dictionaries(
        {"id": ids}, optional={"text": texts, "metadata": metadata,
                               "vector": st.lists(st.floats(), min_size=1, max_size=3) | st.just([0.5] * 384)}),
        max_size=3)}),
    "records/fetch": st.fixed_dictionaries({"ids": st.lists(ids, max_size=4)},
                                           optional={"include_vectors": st.booleans()}),
    "ingest": st.one_of(
        st.fixed_dictionaries({"documents": documents}),
        st.fixed_dictionaries({"path": paths}, optional={
            "text_template": templates, "id_field": st.none() | st.text(max_size=8),
            "text_field": st.text(max_size=8), "metadata_fields": st.none() | st.lists(st.text(max_size=6), max_size=3),
            "batch_size": st.integers(-2, 5000)})),
    "search": st.dictionaries(st.sampled_from(["query", "vector", "k", "mode", "mmr", "filter"]), json_values,
                              max_size=4),
}


@FUZZ
@given(data=st.data(), collection=st.sampled_from([COLLECTION, "fuzzed", "x" * 63, "UPPER", "a b", "_"]))
def test_hostile_bodies_never_cause_a_server_error(http: httpx.Client, data: st.DataObject, collection: str) -> None:
    for route in sorted(bodies):
        try:
            content = json.dumps(data.draw(bodies[route], label=route))
        except (ValueError, RecursionError):
            continue
        check(http.post(f"/v1/collections/{quote(collection, safe='')}/{route}", content=content,
                        headers={"content-type": "application/json"}))


@FUZZ
@given(record_id=ids | st.text(max_size=600), method=st.sampled_from(["GET", "DELETE"]))
def test_hostile_record_ids_in_the_path_never_cause_a_server_error(http: httpx.Client, record_id: str,
                                                                   method: str) -> None:
    check(http.request(method, f"/v1/collections/{COLLECTION}/records/{quote(record_id, safe='/')}"))


# /v1/embeddings takes what OpenAI's clients send: one text or a list, and a model name. A lone surrogate there
# once reached the tokenizer and answered 500; a request of many long texts is refused by the budget (413).
lone_surrogates = st.sampled_from(["\ud800", "a\udfffb", "\udc80", "ok\ud83d"])
embedding_texts = texts | lone_surrogates | st.integers(0, 3).map(lambda n: "word " * (n * 700))
embedding_inputs = st.one_of(embedding_texts, st.lists(embedding_texts, max_size=6),
                             st.integers(1, 80).map(lambda n: ["a longer review text " * 20] * n),
                             st.lists(st.integers(-5, 50000), max_size=4), json_values)


@FUZZ
@given(inp=embedding_inputs, model=st.sampled_from(["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2",
                                                    "", "gpt"]) | st.text(max_size=8),
       fmt=st.sampled_from(["float", "base64", "int8", None]), dims=st.none() | st.integers(-3, 2000))
def test_hostile_embedding_requests_never_cause_a_server_error(http: httpx.Client, inp: Any, model: str,
                                                              fmt: str | None, dims: int | None) -> None:
    body: dict[str, Any] = {"input": inp, "model": model}
    if fmt is not None:
        body["encoding_format"] = fmt
    if dims is not None:
        body["dimensions"] = dims
    try:
        content = json.dumps(body)  # lone surrogates go out as \ud800 escapes, as a client's encoder writes them
    except (ValueError, RecursionError):
        return
    resp = http.post("/v1/embeddings", content=content, headers={"content-type": "application/json"})
    check(resp)
    if isinstance(inp, str) and any("\ud800" <= c <= "\udfff" for c in inp):
        assert resp.status_code == 422, resp.text
