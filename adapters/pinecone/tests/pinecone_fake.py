"""A real HTTP server on 127.0.0.1 answering Pinecone's data-plane REST API, for boundary tests.

It implements the endpoints the ``pinecone`` SDK calls (``/vectors/upsert``, ``/query``,
``/vectors/fetch``, ``/vectors/list``, ``/vectors/delete``, ``/describe_index_stats``) with response
bodies shaped as Pinecone documents them (camelCase, ``matches``, ``vectors`` keyed by id,
``pagination.next``), keeps the vectors in memory, evaluates Pinecone's filter language with
Pinecone's semantics, and records every request so tests can assert on the exact bodies sent.
Scores follow Pinecone: cosine similarity, dot product, or *squared* Euclidean distance.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class FakePinecone:
    dimension: int = 4
    metric: str = "cosine"
    namespaces: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    # (path, status, body): the next request to that path answers this instead.
    failures: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    # -- request handling -----------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        for i, (fpath, status, fbody) in enumerate(self.failures):
            if fpath == path:
                del self.failures[i]
                return status, fbody
        if path == "/vectors/upsert":
            ns = self.namespaces.setdefault(body.get("namespace", ""), {})
            for v in body["vectors"]:
                if len(v["values"]) != self.dimension:
                    return 400, {"code": 3, "message": f"Vector dimension {len(v['values'])} does not "
                                 f"match the dimension of the index {self.dimension}", "details": []}
                ns[v["id"]] = {"id": v["id"], "values": v["values"], "metadata": v.get("metadata", {})}
            return 200, {"upsertedCount": len(body["vectors"])}
        if path == "/query":
            ns = self.namespaces.get(body.get("namespace", ""), {})
            vector = body.get("vector")
            if vector is None:
                vector = ns[body["id"]]["values"]
            cands = [v for v in ns.values() if _matches(body.get("filter"), v["metadata"])]
            scored = [(self._score(vector, v["values"]), v) for v in cands]
            scored.sort(key=lambda sv: sv[0], reverse=self.metric != "euclidean")
            matches = []
            for score, v in scored[: body["topK"]]:
                m: dict[str, Any] = {"id": v["id"], "score": score, "values": []}
                if body.get("includeValues"):
                    m["values"] = v["values"]
                if body.get("includeMetadata"):
                    m["metadata"] = v["metadata"]
                matches.append(m)
            return 200, {"matches": matches, "namespace": body.get("namespace", ""),
                         "usage": {"readUnits": 5}}
        if path == "/vectors/fetch":
            nsname = query.get("namespace", [""])[0]
            ns = self.namespaces.get(nsname, {})
            found = {i: ns[i] for i in query.get("ids", []) if i in ns}
            return 200, {"vectors": found, "namespace": nsname, "usage": {"readUnits": 1}}
        if path == "/vectors/list":
            nsname = query.get("namespace", [""])[0]
            ids = sorted(self.namespaces.get(nsname, {}), reverse=True)  # not sorted the way we use
            start = int(query.get("paginationToken", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
            page = ids[start : start + limit]
            out: dict[str, Any] = {"vectors": [{"id": i} for i in page], "namespace": nsname,
                                   "usage": {"readUnits": 1}}
            if start + limit < len(ids):
                out["pagination"] = {"next": str(start + limit)}
            return 200, out
        if path == "/vectors/delete":
            nsname = body.get("namespace", "")
            if nsname not in self.namespaces:
                return 404, {"code": 5, "message": "Namespace not found", "details": []}
            if body.get("deleteAll"):
                del self.namespaces[nsname]
            else:
                for i in body.get("ids", []):
                    self.namespaces[nsname].pop(i, None)
            return 200, {}
        if path == "/describe_index_stats":
            if body.get("filter"):
                return 400, {"code": 3, "message": "Serverless and starter indexes do not support "
                             "describing index stats with metadata filtering.", "details": []}
            nss = {n: {"vectorCount": len(v)} for n, v in self.namespaces.items() if v}
            return 200, {"namespaces": nss, "dimension": self.dimension, "indexFullness": 0.0,
                         "totalVectorCount": sum(len(v) for v in self.namespaces.values()),
                         "metric": self.metric, "vectorType": "dense"}
        return 404, {"code": 5, "message": f"no route {method} {path}", "details": []}

    def _score(self, a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        if self.metric == "dotproduct":
            return dot
        if self.metric == "euclidean":
            return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))
        na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
        return dot / (na * nb)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


def _field(value: Any, op: str, operand: Any) -> bool:
    elems = value if isinstance(value, list) else ([] if value is None else [value])
    if op == "$exists":
        return bool(elems) == operand
    if op == "$eq":
        return any(_eq(e, operand) for e in elems)
    if op == "$ne":
        return not any(_eq(e, operand) for e in elems)
    if op == "$in":
        return any(_eq(e, o) for e in elems for o in operand)
    if op == "$nin":
        return not any(_eq(e, o) for e in elems for o in operand)
    nums = [e for e in elems if isinstance(e, int | float) and not isinstance(e, bool)]
    cmp = {"$gt": float.__gt__, "$gte": float.__ge__, "$lt": float.__lt__, "$lte": float.__le__}[op]
    return any(cmp(float(e), float(operand)) for e in nums)


def _matches(f: Any, metadata: dict[str, Any]) -> bool:
    if not f:
        return True
    for key, cond in f.items():
        if key == "$and":
            ok = all(_matches(c, metadata) for c in cond)
        elif key == "$or":
            ok = any(_matches(c, metadata) for c in cond)
        elif isinstance(cond, dict):
            ok = all(_field(metadata.get(key), op, v) for op, v in cond.items())
        else:
            ok = _field(metadata.get(key), "$eq", cond)
        if not ok:
            return False
    return True


@contextmanager
def serve(fake: FakePinecone) -> Iterator[FakePinecone]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _do(self, method: str) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            query = parse_qs(parsed.query)
            with fake.lock:
                fake.requests.append(Seen(method, parsed.path, query, body, dict(self.headers)))
                status, payload = fake.handle(method, parsed.path, query, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._do("GET")

        def do_POST(self) -> None:
            self._do("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
