"""``vectorseam serve`` as a real process for the tests that need one (no tests here): a free port on
127.0.0.1, an environment cleared of the developer's ``VECTORSEAM_*`` settings, its log in a file,
readiness polled, and a SIGINT (the graceful stop) at the end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This environment without ``VECTORSEAM_*`` settings, offline, with ``data_dir`` and ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    env.update(VECTORSEAM_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONUNBUFFERED="1", **settings)
    return env


@dataclass
class ServeProcess:
    url: str
    proc: subprocess.Popen[str]
    log_path: Path
    _log: IO[str]

    @classmethod
    def start(cls, env: dict[str, str], log_path: Path, workers: int = 1) -> ServeProcess:
        port = free_port()
        log = open(log_path, "w")  # noqa: SIM115 - closed by stop()
        proc = subprocess.Popen([str(Path(sys.executable).parent / "vectorseam"), "serve", "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", str(workers)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        return cls(f"http://127.0.0.1:{port}", proc, log_path, log)

    def wait_ready(self, deadline: float, in_a_row: int = 1) -> None:
        """Until ``/readyz`` answers 200 ``in_a_row`` times running (with several workers, each answer
        may come from another one), failing with the log if the server exits or ``deadline`` passes."""
        ready = 0
        while ready < in_a_row:
            try:
                ready = ready + 1 if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200 else 0
            except httpx.HTTPError:
                ready = 0
            assert self.proc.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "the server did not start in time:\n" + self.log_path.read_text()
            if ready < in_a_row:
                time.sleep(0.1)

    def serving_pids(self) -> set[int]:
        """The processes that wrote a request's log line: with several workers, which ones served."""
        lines = [json.loads(x) for x in self.log_path.read_text().splitlines() if x.startswith("{")]
        return {line["pid"] for line in lines if line.get("message") == "request"}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

