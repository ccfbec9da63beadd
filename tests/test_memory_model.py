"""A model-based test of the memory store's durable state across real OS processes.

Three worker processes hold one data directory open, as the server's workers, CLI jobs and scripts
do. Hypothesis drives them with upserts, deletes, snapshots (``compact``), reopens and SIGKILLs at
random points (between calls and in the middle of a write), and after every step checks the promise:
every acknowledged write is visible to every live process and on disk (a store opened afresh), and a
write that a kill interrupted is all there or not there at all. The sequence that lost writes in the
old log format (an idle writer, two compactions by another process, then writes) is one of its rules.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vectorseam.stores.memory import MemoryStore
from vectorseam.types import CollectionSpec

WORKERS = 3
DIM = 4
IDS = [f"id-{i}" for i in range(12)]

WORKER = r"""
import json, sys
import numpy as np
from vectorseam.stores import memory
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import Record

memory.SNAPSHOT_MIN_CHANGES, memory.SNAPSHOT_MIN_SHARE = 4, 0.0  # snapshots (and pruning) happen often
path = sys.argv[1]
store = MemoryStore(path)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    try:
        op = cmd["op"]
        if op == "upsert":
            store.upsert("c", [Record(i, np.asarray(v, dtype=np.float32), t, m) for i, v, t, m in cmd["records"]])
            out = {"ok": True}
        elif op == "delete":
            out = {"ok": True, "n": store.delete("c", ids=cmd["ids"])}
        elif op == "compact":
            store.compact("c")
            out = {"ok": True}
        elif op == "reopen":
            store.close()
            store = MemoryStore(path)
            out = {"ok": True}
        else:
            records = {r.id: [r.vector.tolist(), r.text, r.metadata] for page in store.scan("c") for r in page}
            out = {"ok": True, "records": records, "count": store.count("c")}
    except Exception as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
"""


def payload(rid: str, version: int) -> list[Any]:
    """The record ``rid`` at ``version``: vector, text and metadata all follow from the two."""
    seed = int(rid.split("-")[1]) * 1000 + version
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32).tolist()
    return [vector, f"{rid} v{version}", {"version": version, "rid": rid}]


class Worker:
    def __init__(self, script: Path, path: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(script), path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = self._line()
        assert ready.get("ready"), ready

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"worker died: {self.proc.stderr.read() if self.proc.stderr else ''}")
        return dict(json.loads(line))

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.send(cmd)
        out = self._line()
        assert out["ok"], out
        return out

    def kill(self) -> str:
        """SIGKILL; returns what it printed that was not read yet (an ack written just before)."""
        self.proc.send_signal(signal.SIGKILL)
        out, _ = self.proc.communicate(timeout=30)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)


class SharedStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="vectorseam-model-")
        self.script = Path(self.dir) / "worker.py"
        self.script.write_text(WORKER)
        self.path = str(Path(self.dir) / "store")
        with MemoryStore(self.path) as store:
            store.ensure_collection(CollectionSpec("c", DIM, "cosine"))
        self.workers = [Worker(self.script, self.path) for _ in range(WORKERS)]
        self.model: dict[str, list[Any]] = {}
        self.version = 0
        self.kills = 0

    def teardown(self) -> None:
        for w in self.workers:
            w.stop()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def _records(self, ids: list[str]) -> list[list[Any]]:
        self.version += 1
        return [[rid, *payload(rid, self.version)] for rid in ids]

    @rule(w=st.integers(0, WORKERS - 1), ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True))
    def upsert(self, w: int, ids: list[str]) -> None:
        records = self._records(ids)
        self.workers[w].call({"op": "upsert", "records": records})
        for rid, *rest in records:
            self.model[rid] = rest

    @rule(w=st.integers(0, WORKERS - 1), ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True))
    def delete(self, w: int, ids: list[str]) -> None:
        n = self.workers[w].call({"op": "delete", "ids": ids})["n"]
        assert n == sum(rid in self.model for rid in ids)
        for rid in ids:
            self.model.pop(rid, None)

    @rule(w=st.integers(0, WORKERS - 1))
    def compact(self, w: int) -> None:
        self.workers[w].call({"op": "compact"})

    @rule(w=st.integers(0, WORKERS - 1))
    def reopen(self, w: int) -> None:
        self.workers[w].call({"op": "reopen"})

    @rule(w=st.integers(0, WORKERS - 1), other=st.integers(1, WORKERS - 1),
          ids=st.lists(st.sampled_from(IDS), min_size=5, max_size=5, unique=True))
    def idle_writer_then_two_compactions(self, w: int, other: int, ids: list[str]) -> None:
        """The sequence that lost acknowledged writes in the log format: W writes one record and idles,
        another process compacts twice (with a write between), then W writes five."""
        o = (w + other) % WORKERS
        self.upsert(w, ids[:1])
        self.compact(o)
        self.upsert(o, ids[1:2])
        self.compact(o)
        for rid in ids:
            self.upsert(w, [rid])

    @rule(w=st.integers(0, WORKERS - 1))
    def kill_between_calls(self, w: int) -> None:
        self.workers[w].kill()
        self.workers[w] = Worker(self.script, self.path)

    @rule(w=st.integers(0, WORKERS - 1), ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True),
          delay=st.sampled_from([0.0, 0.002, 0.005, 0.01, 0.02, 0.04]))
    def kill_during_a_write(self, w: int, ids: list[str], delay: float) -> None:
        """The write may have committed or not; either way all of it or none of it."""
        records = self._records(ids)
        self.workers[w].send({"op": "upsert", "records": records})
        time.sleep(delay)
        acked = '"ok": true' in self.workers[w].kill()
        self.kills += 1
        self.workers[w] = Worker(self.script, self.path)
        with MemoryStore(self.path) as fresh:
            got = {r.id: r for r in fresh.fetch("c", ids)}
        new = [rid for rid, *rest in records if rid in got and got[rid].text == rest[1]]
        assert not new or len(new) == len(ids), f"a killed write was applied in part: {new} of {ids}"
        assert new or not acked, "an acknowledged write is missing after the kill"
        if os.environ.get("VECTORSEAM_MODEL_DEBUG"):
            print("kill during write:", "landed" if new else "not landed", "acked" if acked else "", file=sys.stderr)
        if new:
            for rid, *rest in records:
                self.model[rid] = rest

    @invariant()
    def every_process_and_the_disk_hold_every_acknowledged_write(self) -> None:
        want = {rid: [np.asarray(v, np.float32).tolist(), t, m] for rid, (v, t, m) in self.model.items()}
        for i, w in enumerate(self.workers):
            got = w.call({"op": "read"})
            assert got["count"] == len(want), (i, got["count"], len(want))
            assert got["records"] == want, f"worker {i} differs from the acknowledged writes"
        with MemoryStore(self.path) as fresh:
            on_disk = {r.id: [r.vector.tolist() if r.vector is not None else None, r.text, r.metadata]
                       for page in fresh.scan("c") for r in page}
        assert on_disk == want


SharedStoreMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("VECTORSEAM_MODEL_EXAMPLES", "8")), stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSharedStoreMachine = SharedStoreMachine.TestCase
