"""Transient failures against a real HTTP endpoint on 127.0.0.1: retried, then reported cleanly.

A small threaded HTTP server plays a Qdrant server that is down, overloaded (503) or refusing the
API key (401) for a configurable number of requests before answering ``GET /collections`` the way
Qdrant does. It counts requests, so the tests see how many attempts the adapter really made.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from vectorseam_qdrant.options import parse_options
from vectorseam_qdrant.store import create_store

from vectorseam.errors import ConfigError, StoreUnavailableError


class FlakyQdrant(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures = 0
        self.status = 503
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FlakyQdrant

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if len(self.server.requests) <= self.server.failures:
            body = json.dumps({"status": {"error": "service overloaded"}, "time": 0.0}).encode()
            self.send_response(self.server.status)
        elif self.path.startswith("/collections"):
            body = json.dumps({"result": {"collections": []}, "status": "ok", "time": 0.0}).encode()
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def server() -> Iterator[FlakyQdrant]:
    srv = FlakyQdrant()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_transient_503_is_retried_until_it_succeeds(server: FlakyQdrant) -> None:
    server.failures = 2
    store = create_store(url=server.url, retries=3, backoff=0.01, backoff_max=0.05)
    try:
        assert store.collections() == []
    finally:
        store.close()
    assert server.requests == ["/collections"] * 3


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_persistent_503_becomes_store_unavailable(server: FlakyQdrant) -> None:
    server.failures = 1000
    store = create_store(url=server.url, api_key="top-secret", retries=2, backoff=0.01, backoff_max=0.02)
    try:
        with pytest.raises(StoreUnavailableError) as info:
            store.collections()
    finally:
        store.close()
    message = str(info.value)
    assert f"Qdrant server at {server.url}" in message
    assert "3 attempt(s)" in message and "503" in message and "service overloaded" in message
    assert "top-secret" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert len(server.requests) == 3


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = create_store(url=f"http://127.0.0.1:{port}", retries=2, backoff=0.01, backoff_max=0.02, timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError, match=rf"127\.0\.0\.1:{port}.*3 attempt\(s\)"):
            store.count("anything")
    finally:
        store.close()
    assert time.monotonic() - started < 10


def test_grpc_connection_refused_is_reported_too() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = create_store(url="http://127.0.0.1:1", prefer_grpc=True, grpc_port=port, retries=1,
                         backoff=0.01, timeout=2)
    try:
        with pytest.raises(StoreUnavailableError, match=rf"gRPC port {port}.*2 attempt\(s\).*UNAVAILABLE"):
            store.collections()
    finally:
        store.close()


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_rejected_api_key_is_a_config_error_without_retries(server: FlakyQdrant) -> None:
    server.failures = 1000
    server.status = 401
    store = create_store(url=server.url, api_key="wrong", retries=3, backoff=0.01)
    try:
        with pytest.raises(ConfigError, match="api_key"):
            store.collections()
    finally:
        store.close()
    assert len(server.requests) == 1


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    """The options become vectorseam's shared RetryPolicy: retries after the first attempt, full jitter."""
    import random

    policy = parse_options({"url": "http://localhost:6333", "retries": 5, "backoff": 0.1, "backoff_max": 1.0}).retry
    assert policy.attempts == 6
    rng = random.Random(1)
    for attempt, cap in enumerate([0.1, 0.2, 0.4, 0.8, 1.0, 1.0]):
        draws = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in draws)
        assert max(draws) > 0.8 * cap  # the whole range is used: jitter, not a fixed wait
