"""A lone surrogate (``"\\ud800"``), in a text or in metadata, through the CLI's ingest and through the
HTTP API: the row is refused with a message naming where it was, the other rows land, and every
collection stays writable.

Before the boundary checks, such a row was accepted into memory; the save then failed with a
UnicodeEncodeError, and from then on every write to every collection answered 500 and was never
saved. The CLI runs as its own process; the API is a real uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_cli import env, run  # noqa: F401 - env is a fixture
from vectorseam.client import VectorSeam
from vectorseam.config import Settings
from vectorseam.service import create_app
from vectorseam.service.background import BackgroundServer
from vectorseam.stores.memory import MemoryStore

ROWS = [
    '{"id": "ok1", "text": "Fresh bread from the bakery, still warm."}',
    '{"id": "text-bad", "text": "caf\\ud800e au lait"}',
    '{"id": "meta-bad", "text": "plain text", "note": "x\\udfff"}',
    '{"id": "ok2", "text": "Green tea, smooth and mild."}',
]


def _stored(data_dir: Path, collection: str) -> dict[str, str]:
    """What a new process finds on disk."""
    with MemoryStore(data_dir / "memory") as store:
        return {r.id: r.text for page in store.scan(collection) for r in page}


def test_cli_ingest_rejects_the_rows_and_keeps_the_rest(isolated_env: Path, env: dict[str, str]) -> None:  # noqa: F811
    src = isolated_env / "hostile.jsonl"
    src.write_text("\n".join(ROWS) + "\n")
    out = run(["ingest", str(src), "--collection", "hostile"], env)
    assert "written 2, rejected 2" in out.stdout, out.stdout
    rejects = (isolated_env / "data" / "ingest" / "rejects" / "hostile.txt").read_text().splitlines()
    assert [line.split(": ", 1)[0] for line in rejects] == [f"{src}:2", f"{src}:3"]
    assert "text holds a lone surrogate" in rejects[0]
    assert "metadata field 'note' holds a lone surrogate" in rejects[1]
    assert _stored(isolated_env / "data", "hostile") == {
        "ok1": "Fresh bread from the bakery, still warm.", "ok2": "Green tea, smooth and mild."}
    # Every collection stays writable: a new one, and the same one again once the rows are mended.
    other = isolated_env / "other.jsonl"
    other.write_text('{"id": "o1", "text": "A second collection."}\n')
    assert "written 1, rejected 0" in run(["ingest", str(other), "--collection", "other"], env).stdout
    src.write_text("\n".join(r.replace("\\ud800", "").replace("\\udfff", "") for r in ROWS) + "\n")
    assert "written 2, rejected 0" in run(["ingest", str(src), "--collection", "hostile"], env).stdout
    assert sorted(_stored(isolated_env / "data", "hostile")) == ["meta-bad", "ok1", "ok2", "text-bad"]
    assert _stored(isolated_env / "data", "other") == {"o1": "A second collection."}


@pytest.fixture()
def api(isolated_env: Path) -> Iterator[httpx.Client]:
    client = VectorSeam(Settings(data_dir=isolated_env / "data"))
    server = BackgroundServer(create_app(client)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            yield http
    finally:
        server.stop()
        client.close()


def _post_raw(http: httpx.Client, path: str, body: str) -> httpx.Response:
    """The body as written: a client's JSON encoder would refuse (or escape) a lone surrogate itself."""
    return http.post(path, content=body.encode(), headers={"content-type": "application/json"})


def test_api_answers_400_naming_the_field_and_keeps_every_collection_writable(
    isolated_env: Path, api: httpx.Client
) -> None:
    ok = api.post("/v1/collections/notes/records", json={"records": [{"id": "n1", "text": "A plain note."}]})
    assert ok.status_code == 200, ok.text
    # In a text: the request schema refuses it, naming the field (422, like every malformed body).
    resp = _post_raw(api, "/v1/collections/notes/records",
                     '{"records": [{"id": "n2", "text": "Another note."}, {"id": "t", "text": "caf\\ud800e"}]}')
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["param"] == "records.1.text"
    assert "records.1.text: not valid Unicode text (a lone surrogate" in resp.json()["error"]["message"]
    # In metadata (free-form JSON): the store's boundary refuses it, naming the record and the field.
    resp = _post_raw(api, "/v1/collections/notes/records",
                     '{"records": [{"id": "n2", "text": "Another note."}, '
                     '{"id": "m", "text": "ok", "metadata": {"note": "x\\udfff"}}]}')
    assert resp.status_code == 400, resp.text
    assert "record 'm': metadata field 'note' holds a lone surrogate" in resp.json()["error"]["message"]
    # Either way the batch was refused whole: n2 did not land (the caller resends it without the bad record).
    fetched = api.post("/v1/collections/notes/records/fetch", json={"ids": ["n1", "n2", "t", "m"]}).json()
    assert [r["id"] for r in fetched["records"]] == ["n1"]

    # Through an ingest job: a document whose metadata holds one is the job's reject, the others land;
    # one whose text does is refused with the request, before any job starts.
    docs = [
        '{"id": "d1", "text": "Rain on the harbour at dawn."}',
        '{"id": "d3", "text": "ok", "metadata": {"note": "\\udfff"}}',
        '{"id": "d4", "text": "Snow on the mountain pass."}',
    ]
    refused = _post_raw(api, "/v1/collections/docs/ingest",
                        '{"documents": [' + ",".join([*docs, '{"id": "d2", "text": "caf\\ud800e"}']) + "]}")
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "documents.3.text", refused.text
    assert api.get("/v1/jobs").json() == []
    started = _post_raw(api, "/v1/collections/docs/ingest", '{"documents": [' + ",".join(docs) + "]}")
    assert started.status_code == 202, started.text
    job = started.json()
    while job["state"] in ("queued", "running"):
        job = api.get(f"/v1/jobs/{job['id']}").json()
    assert (job["state"], job["written"], job["rejected"]) == ("succeeded", 2, 1), job
    assert job["rejects"][0].startswith("documents[1]"), job["rejects"]
    assert "metadata field 'note' holds a lone surrogate" in job["rejects"][0]

    # Every collection is still writable and everything acknowledged is on disk.
    for name in ("notes", "docs", "fresh"):
        resp = api.post(f"/v1/collections/{name}/records", json={"records": [{"id": "after", "text": "Still fine."}]})
        assert resp.status_code == 200, resp.text
    assert sorted(_stored(isolated_env / "data", "docs")) == ["after", "d1", "d4"]
    assert sorted(_stored(isolated_env / "data", "notes")) == ["after", "n1"]
    assert json.loads(json.dumps(_stored(isolated_env / "data", "fresh"))) == {"after": "Still fine."}
