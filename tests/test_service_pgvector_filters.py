"""Filters that try to escape into SQL, sent through the HTTP API to a real PostgreSQL + pgvector store.

Keys and values are attacker-controlled strings here; each must either match nothing (it is data,
not SQL) or be refused with a 4xx, and the table must be intact afterwards.
"""

from __future__ import annotations

import uuid

import httpx
import numpy as np
import pytest

pgvector = pytest.importorskip("vectorseam_pgvector", reason="the pgvector adapter is not installed "
                               "(pip install -e adapters/pgvector)")

from vectorseam.client import VectorSeam  # noqa: E402
from vectorseam.config import ServiceSettings, Settings, StoreSettings  # noqa: E402
from vectorseam.service import create_app  # noqa: E402
from vectorseam.service.background import BackgroundServer  # noqa: E402

INJECTIONS = [
    {"category' OR '1'='1": "x"},
    {"Score\") OR 1=1 --": 1},
    {"x'); DROP TABLE records; --": "y"},
    {"category": "x' OR '1'='1"},
    {"category": "coffee'; DELETE FROM records; --"},
    {"category": {"$in": ["a'); DROP SCHEMA public CASCADE; --", "b\\' OR 1=1"]}},
    {"category": {"$ne": "' OR ''='"}},  # matches every record, legitimately
    {"$or": [{"category": "nope"}, {"category'::text OR true --": "z"}]},
    {"meta->>'category'": "coffee"},
    {"category": {"$exists": True}, "x\u0000y": "nul"},
]


@pytest.fixture(scope="module")
def api(local_embedder, tmp_path_factory, pg_server):  # type: ignore[no-untyped-def]
    pg = pg_server
    schema = f"svc_{uuid.uuid4().hex[:10]}"
    settings = Settings(data_dir=tmp_path_factory.mktemp("pgsvc"),
                        store=StoreSettings(name="pgvector", options={"dsn": pg.dsn(), "schema": schema}),
                        service=ServiceSettings())
    client = VectorSeam(settings=settings)
    client.embedder = local_embedder
    server = BackgroundServer(create_app(client, warm_up=False)).start()
    rng = np.random.default_rng(3)
    records = [{"id": f"p{i}", "text": f"item {i}", "vector": rng.normal(size=384).tolist(),
                "metadata": {"category": cat, "Score": i}}
               for i, cat in enumerate(["coffee", "tea", "coffee", "beans", "pasta"])]
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/v1/collections/inj/records", json={"records": records}).status_code == 200
        yield http
    server.stop()
    client.close()  # the PostgreSQL server is the session's: later modules use it too


def count(http: httpx.Client) -> int:
    cols = {c["name"]: c["count"] for c in http.get("/v1/collections").json()["collections"]}
    return cols["inj"]


@pytest.mark.parametrize("bad", INJECTIONS, ids=range(len(INJECTIONS)))
def test_injected_filters_match_nothing_or_are_refused(api: httpx.Client, bad: dict) -> None:
    broad = "$ne" in str(bad)  # only the $ne case legitimately matches every record
    resp = api.post("/v1/collections/inj/search", json={"vector": [0.1] * 384, "k": 10, "filter": bad})
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 200:
        ids = {h["id"] for h in resp.json()["hits"]}
        assert ids == ({f"p{i}" for i in range(5)} if broad else set()), f"{bad} matched {ids}"
    if not broad:
        deleted = api.post("/v1/collections/inj/records/delete", json={"filter": bad})
        assert deleted.status_code in (200, 400), deleted.text
        assert deleted.status_code == 400 or deleted.json()["deleted"] == 0
    assert count(api) == 5


def test_typed_operators_refuse_sql_in_numbers(api: httpx.Client) -> None:
    resp = api.post("/v1/collections/inj/search",
                    json={"vector": [0.1] * 384, "filter": {"Score": {"$gte": "0 OR 1=1"}}})
    assert resp.status_code == 400 and "takes a number" in resp.json()["error"]["message"]


def test_legitimate_filter_still_works_afterwards(api: httpx.Client) -> None:
    resp = api.post("/v1/collections/inj/search",
                    json={"vector": [0.1] * 384, "k": 10, "filter": {"category": "coffee"}})
    assert sorted(h["id"] for h in resp.json()["hits"]) == ["p0", "p2"]
