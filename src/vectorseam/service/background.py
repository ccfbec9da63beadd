"""Run the service on a real uvicorn server in a background thread: for tests and notebooks.

Binds 127.0.0.1 on a free port chosen by the OS, and returns only once the server accepts requests.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import httpx
import uvicorn
from fastapi import FastAPI


class BackgroundServer:
    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                 ready_timeout: float = 60.0) -> None:
        if port == 0:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
        self.app = app
        self.host = host
        self.port = port
        self.ready_timeout = ready_timeout
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                                                     lifespan="on", timeout_graceful_shutdown=5))
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, wait_ready: bool = True) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self.ready_timeout
        path = "/readyz" if wait_ready else "/healthz"
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server on {self.url} stopped while starting")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the server on {self.url} was not ready after {self.ready_timeout:.0f} s")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
