"""No key ever reads, lists, ingests from or learns the existence of anything outside its scope (issue 22).

A hypothesis state machine against one real server (real model, memory store): an unscoped operator
key creates collections for three tenants and a shared prefix, aliases (also across tenants) and
files in the tenants' ingest directories (also links from one tenant's directory into another's);
scoped read and admin keys then call every route that names a collection (taken from the app itself,
so a route added later is covered too), the listings, the jobs, the OpenAI routes, and ingest with
paths of their own, of other tenants, of the data directory and of nothing at all.

After every answer to a key:
* no secret of a collection outside its scope (ids, texts, metadata hold a token per collection; a
  tenant's files hold a token of that tenant), no name of a collection or alias outside its scope, and
  no absolute server path appears in it unless the request itself held that string;
* a name outside its scope (or an alias whose target is) gets exactly the answer a name that does not
  exist gets, and a file outside its directories exactly the answer a missing file gets;
* the listings hold exactly what the key may see; nothing is a 5xx.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from vectorseam.client import VectorSeam
from vectorseam.config import APIKeySettings, ServiceSettings, Settings, StoreSettings
from vectorseam.service import create_app
from vectorseam.service.auth import hash_key
from vectorseam.service.background import BackgroundServer

MODEL = "all-MiniLM-L6-v2"
PREFIXES = ["a", "b", "c", "shared"]
UNSEEN = "zz"  # a prefix no key reaches: names for "does not exist" twins


@dataclass(frozen=True)
class Key:
    name: str
    secret: str
    scope: str
    collections: tuple[str, ...]
    tenant_dir: str | None = None

    def sees(self, collection: str) -> bool:  # the test's own reading of the patterns
        return any(collection.startswith(p[:-1]) if p.endswith("*") else collection == p for p in self.collections)


KEYS = [Key("a-ops", "vs_state-a-ops", "admin", ("a-*",), "a"),
        Key("a-web", "vs_state-a-web", "read", ("a-*",)),
        Key("b-ops", "vs_state-b-ops", "admin", ("b-*",), "b"),
        Key("b-web", "vs_state-b-web", "read", ("b-*", "shared-*")),
        Key("c-ops", "vs_state-c-ops", "admin", ("c-*", "shared-*"))]
GOD = "vs_state-operator"
ADMINS = [k for k in KEYS if k.scope == "admin"]


@dataclass
class World:
    root: Path
    data: Path
    server: BackgroundServer
    client: VectorSeam
    routes: list[tuple[str, str]]
    collections: dict[str, str] = field(default_factory=dict)  # name -> its secret token
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> target
    files: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (tenant, token)
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> collection
    reached: Counter[str] = field(default_factory=Counter)  # what the machine tried, to show it tried it
    touched: set[str] = field(default_factory=set)  # collections a key in scope wrote to (or dropped)
    dropped: set[str] = field(default_factory=set)  # collections a key in scope dropped
    links: dict[str, str] = field(default_factory=dict)  # link in a tenant's folder -> that tenant

    def begin(self) -> None:
        """Each example builds its own collections, aliases and files (the server keeps the old ones), so
        that hypothesis can replay a failing example exactly."""
        for registry in (self.collections, self.aliases, self.files, self.jobs, self.touched, self.dropped,
                         self.links):
            registry.clear()

    def http(self, secret: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=60)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, local_embedder: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("stateful").resolve()
    for t in ("a", "b"):
        (root / "up" / t).mkdir(parents=True)
    (root / "global").mkdir()
    (root / "global" / "ops.jsonl").write_text('{"id": "o", "text": "operator file"}\n')
    keys = [APIKeySettings(name="operator", hash=hash_key(GOD), scope="admin")] + [
        APIKeySettings(name=k.name, hash=hash_key(k.secret), scope=k.scope, collections=list(k.collections),  # type: ignore[arg-type]
                       ingest_dirs=[root / "up" / k.tenant_dir] if k.tenant_dir else None) for k in KEYS]
    settings_ = Settings(data_dir=root / "data", store=StoreSettings(name="memory"),
                         service=ServiceSettings(api_keys=keys, ingest_dirs=[root / "global"]))
    client = VectorSeam(settings=settings_)
    client.embedder = local_embedder
    app = create_app(client, warm_up=False)
    # every route that names a collection, from the app's own spec: one added later is covered too
    routes = sorted((method.upper(), path) for path, ops in app.openapi()["paths"].items() if "{name}" in path
                    for method in ops)
    server = BackgroundServer(app).start()
    yield World(root, root / "data", server, client, routes)
    server.stop()
    client.close()


def vector(seed: int) -> list[float]:
    return [((seed * 31 + i * 7) % 17) / 17.0 + 0.01 for i in range(384)]


def body_for(method: str, path: str, collection_token: str) -> Any:
    rid = f"{collection_token}-0"
    known: dict[str, Any] = {
        "/search": {"vector": vector(1), "k": 3},
        "/recommend": {"positive": [rid], "k": 3},
        "/ask": {"question": "what is the secret?", "k": 2},
        "/records/fetch": {"ids": [rid, "w1"], "include_vectors": False},
        "/records": {"records": [{"id": "w1", "vector": vector(2), "text": "written by a tenant key"}]},
        "/records/delete": {"ids": ["w1"]},
        "/ingest": {"documents": [{"id": "d1", "text": "ingested by a tenant key"}]},
    }
    if method in ("GET", "DELETE"):
        return None
    tail = path.split("{name}", 1)[1]
    return known.get(tail, {})


def normalized(resp: httpx.Response, *names: str) -> tuple[int, str]:
    text = resp.text
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            parsed.pop("request_id", None)
            parsed.pop("took_ms", None)
        text = json.dumps(parsed, sort_keys=True)
    except ValueError:
        pass
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, "<NAME>").replace(json.dumps(name)[1:-1], "<NAME>")
    return resp.status_code, text


class Tenancy(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        self.w = self.world
        self.w.begin()

    # --- the oracle ---------------------------------------------------------------------------------------
    def visible(self, key: Key, name: str) -> bool:
        target = self.w.aliases.get(name)
        return key.sees(name) and (target is None or key.sees(target))

    def forbidden(self, key: Key) -> list[str]:
        out = [tok for c, tok in self.w.collections.items() if not key.sees(c)]
        out += [c for c in self.w.collections if not key.sees(c)]
        out += [a for a in self.w.aliases if not self.visible(key, a)]
        out += [tok for tenant, tok in self.w.files.values() if not key.sees(f"{tenant}-x")]
        out += [str(self.w.root), str(self.w.data)]  # no server path, the key's own directory included
        return out

    def check(self, key: Key, request_text: str, resp: httpx.Response) -> None:
        assert resp.status_code < 500, (resp.status_code, resp.text[:500])
        answer = resp.text + json.dumps(dict(resp.headers))
        for secret in self.forbidden(key):
            if secret in answer and secret not in request_text:
                raise AssertionError(f"{key.name} learned {secret!r} from {request_text[:200]}: {resp.text[:800]}")

    def call(self, key: Key, method: str, path: str, body: Any = None) -> httpx.Response:
        with self.w.http(key.secret) as http:
            resp = http.request(method, path, json=body)
        self.check(key, f"{method} {path} {json.dumps(body)}", resp)
        return resp

    def same_as_absent(self, key: Key, method: str, template: str, name: str, body: Any) -> None:
        """A name outside the key's scope answers exactly as a name that does not exist."""
        twin = f"{UNSEEN}-{secrets.token_hex(3)}"
        first = self.call(key, method, template.replace("{name}", name), body)
        second = self.call(key, method, template.replace("{name}", twin), body)
        assert normalized(first, name) == normalized(second, twin), (first.text, second.text)
        assert first.status_code in (403, 404), first.text

    # --- the operator builds the world ---------------------------------------------------------------------
    def new_collection(self, prefix: str) -> str:
        token = f"tok{secrets.token_hex(5)}"
        name = f"{prefix}-{secrets.token_hex(3)}"
        records = [{"id": f"{token}-{i}", "vector": vector(i + len(self.w.collections)),
                    "text": f"the secret {token} number {i}", "metadata": {"owner": token, "n": i}} for i in range(2)]
        with self.w.http(GOD) as god:
            assert god.post(f"/v1/collections/{name}/records", json={"records": records}).status_code == 200
        self.w.collections[name] = token
        return name

    @initialize()
    def start(self) -> None:
        for prefix in PREFIXES:
            self.new_collection(prefix)
        for tenant in ("a", "b"):
            self.write_file(tenant, link=False)

    @rule(what=st.sampled_from(["collection", "alias", "file", "link"]), prefix=st.sampled_from(PREFIXES),
          data=st.data())
    def operator_builds(self, what: str, prefix: str, data: st.DataObject) -> None:
        if what == "collection":
            self.new_collection(prefix)
        elif what == "alias":  # its name may be in one tenant's scope and its target in another's
            target = data.draw(st.sampled_from([c for c in self.w.collections if c not in self.w.dropped]),
                               label="target")
            alias = f"{prefix}-al{secrets.token_hex(3)}"
            self.w.client.set_alias(alias, target)
            self.w.aliases[alias] = target
            self.w.reached["alias"] += 1
        else:
            self.write_file("a" if prefix in ("a", "c") else "b", link=what == "link")

    def write_file(self, tenant: str, link: bool) -> None:
        folder = self.w.root / "up" / tenant
        name = f"f{secrets.token_hex(3)}.jsonl"
        others = [p for p, (t, _) in self.w.files.items() if t != tenant]
        if link and others:  # a link in this tenant's folder to another tenant's file
            (folder / name).symlink_to(others[0])
            self.w.links[str(folder / name)] = tenant
            return
        token = f"file{secrets.token_hex(5)}"
        (folder / name).write_text(json.dumps({"id": token, "text": f"the file secret {token}"}) + "\n"
                                   + json.dumps({"id": f"{token}-blank", "text": " "}) + "\n")
        self.w.files[str(folder / name)] = (tenant, token)

    # --- keys -------------------------------------------------------------------------------------------
    @rule(key=st.sampled_from(KEYS), data=st.data())
    def use_another_route(self, key: Key, data: st.DataObject) -> None:
        self.use_a_route(key, data)  # a second rule: routes get most of the steps

    @rule(key=st.sampled_from(KEYS), data=st.data())
    def use_a_route(self, key: Key, data: st.DataObject) -> None:
        method, template = data.draw(st.sampled_from(self.w.routes), label="route")
        names = list(self.w.collections) + list(self.w.aliases)
        name = data.draw(st.sampled_from(names) | st.builds(lambda p: f"{p}-new{secrets.token_hex(2)}",
                                                             st.sampled_from(PREFIXES)), label="name")
        target = self.w.aliases.get(name, name)
        token = self.w.collections.get(target, "none")
        path = template.replace("{record_id}", f"{token}-0")
        body = body_for(method, template, token)
        if not self.visible(key, name):
            self.w.reached["foreign name" if name in self.w.collections or name in self.w.aliases else "absent"] += 1
            self.same_as_absent(key, method, path, name, body)
            return
        self.w.reached["own name"] += 1
        resp = self.call(key, method, path.replace("{name}", name), body)
        if key.scope == "read" and method != "GET" and template.endswith(("/records", "/delete", "/ingest")):
            assert resp.status_code == 403, resp.text
        if resp.status_code == 202 and template.endswith("/ingest"):
            self.w.jobs[resp.json()["id"]] = target
            self.w.reached["job"] += 1
        if method != "GET" and resp.status_code < 300:
            self.w.touched.add(target)  # a key may write to, restore or drop what it sees
            if (method, template) == ("DELETE", "/v1/collections/{name}"):
                self.w.dropped.add(target)
            else:
                self.w.dropped.discard(target)

    @rule(key=st.sampled_from(ADMINS), data=st.data())
    def ingest_a_path(self, key: Key, data: st.DataObject) -> None:
        own = self.w.root / "up" / key.tenant_dir if key.tenant_dir else None
        choices: list[tuple[str, bool]] = []  # (path as sent, readable by this key)
        for path, (tenant, _) in self.w.files.items():
            mine = own is not None and tenant == key.tenant_dir
            choices.append((path, mine))
            choices.append((os.path.relpath(path, own) if own else Path(path).name, mine))
        for link, tenant in self.w.links.items():
            if tenant == key.tenant_dir:
                choices.append((Path(link).name, False))
        choices += [(str(self.w.data / "state.sqlite3"), False), ("../../data/state.sqlite3", False),
                    (str(self.w.root / "global" / "ops.jsonl"), False), ("ops.jsonl", False), ("/etc/hostname", False)]
        sent, readable = data.draw(st.sampled_from(choices), label="path")
        collection = data.draw(st.sampled_from([c for c in self.w.collections if key.sees(c)]), label="into")
        route = f"/v1/collections/{collection}/ingest"
        self.w.reached["own file" if readable else "foreign path"] += 1
        if readable:
            resp = self.call(key, "POST", route, {"path": sent})
            assert resp.status_code == 202, resp.text
            self.w.jobs[resp.json()["id"]] = collection
            self.w.reached["job"] += 1
            self.wait(key, resp.json()["id"])
            return
        twin = str(Path(sent).with_name(f"nothing{secrets.token_hex(3)}.jsonl"))
        first = self.call(key, "POST", route, {"path": sent})
        second = self.call(key, "POST", route, {"path": twin})
        assert first.status_code == 400 and normalized(first, sent) == normalized(second, twin), (first.text,
                                                                                                  second.text)

    def wait(self, key: Key, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            job: dict[str, Any] = self.call(key, "GET", f"/v1/jobs/{job_id}").json()
            if job["state"] in ("succeeded", "failed"):
                assert job["state"] == "succeeded" and not any(r.startswith("/") for r in job["rejects"]), job
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.05)

    @rule(key=st.sampled_from(KEYS))
    def list_everything(self, key: Key) -> None:
        listed = {c["name"] for c in self.call(key, "GET", "/v1/collections").json()["collections"]}
        with self.w.http(GOD) as god:
            everything = {c["name"] for c in god.get("/v1/collections").json()["collections"]}
        assert listed == {c for c in everything if key.sees(c)}
        jobs = self.call(key, "GET", "/v1/jobs").json()
        assert all(key.sees(j["collection"]) for j in jobs)
        recent = list(self.w.jobs.items())[-50:]  # the server keeps the newest 200 finished jobs
        assert {j["id"] for j in jobs} >= {i for i, c in recent if key.sees(c)}

    @rule(key=st.sampled_from(KEYS), data=st.data())
    def look_at_a_job(self, key: Key, data: st.DataObject) -> None:
        if not self.w.jobs:
            return
        job_id = data.draw(st.sampled_from(list(self.w.jobs)), label="job")
        if key.sees(self.w.jobs[job_id]):
            assert self.call(key, "GET", f"/v1/jobs/{job_id}").status_code == 200
            return
        twin = secrets.token_hex(16)
        first, second = self.call(key, "GET", f"/v1/jobs/{job_id}"), self.call(key, "GET", f"/v1/jobs/{twin}")
        assert first.status_code == 404 and normalized(first, job_id) == normalized(second, twin)

    @rule(key=st.sampled_from(KEYS))
    def use_the_openai_routes(self, key: Key) -> None:
        assert self.call(key, "GET", "/v1/models").status_code == 200
        assert self.call(key, "POST", "/v1/embeddings", {"model": MODEL, "input": ["a secret?"]}).status_code == 200

    @invariant()
    def the_operator_still_sees_every_secret(self) -> None:
        # nothing a key could not see was deleted or overwritten by it (a 404 wrote nothing)
        with self.w.http(GOD) as god:
            for name, token in [item for item in self.w.collections.items() if item[0] not in self.w.touched][-2:]:
                found = god.post(f"/v1/collections/{name}/records/fetch", json={"ids": [f"{token}-1"]}).json()
                assert [r["id"] for r in found["records"]] == [f"{token}-1"], (name, found)


EXAMPLES = int(os.environ.get("VECTORSEAM_TENANCY_EXAMPLES", "12"))


def test_no_key_ever_reaches_outside_its_scope(world: World) -> None:
    assert {t.rsplit("/", 1)[-1] for _, t in world.routes} >= {"search", "ask", "fetch", "records", "ingest"}
    Tenancy.world = world
    run_state_machine_as_test(Tenancy, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=25, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    # the machine did reach foreign names, foreign files and the tenants' own ingest
    assert min(world.reached[k] for k in ("foreign name", "own name", "own file", "foreign path", "alias",
                                          "job")) > 0, world.reached


def test_the_record_id_routes_are_part_of_every_route(world: World) -> None:
    assert ("DELETE", "/v1/collections/{name}/records/{record_id}") in world.routes
