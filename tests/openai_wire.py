"""A real HTTP server on 127.0.0.1 that speaks OpenAI's embeddings wire format.

Backed by the local model, it lets the OpenAI embedder be tested end to end (request bodies,
batching, retries, error mapping) with the real ``openai`` client and no network. ``fail_next``
makes the next requests answer with a given status, to exercise the client's backoff.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OpenAIWireServer:
    def __init__(self, embedder: Any, model: str = "text-embedding-3-small", max_chars: int = 2000) -> None:
        self.embedder = embedder
        self.model = model
        self.max_chars = max_chars
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.fail_next: list[int] = []  # statuses to answer before serving normally
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                outer.statuses.append(status)  # before the reply: the client may act on it at once
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/embeddings":
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                    return
                outer.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                if outer.fail_next:
                    status = outer.fail_next.pop(0)
                    self._send(status, {"error": {"message": f"injected {status}", "type": "server_error"}})
                    return
                inputs = body.get("input")
                if isinstance(inputs, str):
                    inputs = [inputs]
                too_long = [i for i, t in enumerate(inputs) if len(t) > outer.max_chars]
                if too_long:
                    self._send(400, {"error": {
                        "message": f"input {too_long[0]} exceeds the maximum context length",
                        "type": "invalid_request_error"}})
                    return
                vectors = outer.embedder.embed_documents(inputs)
                self._send(200, {
                    "object": "list",
                    "model": body.get("model", outer.model),
                    "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                             for i, v in enumerate(vectors)],
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> OpenAIWireServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
