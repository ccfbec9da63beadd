"""Stores that Ray's writer processes cannot reach are refused with what to do, before anything is written.

Without these checks, a Ray ingest into qdrant-client's local mode wrote into each writer actor's own
in-process copy (the driver's collection stayed empty, and the job reported success), and one into the
memory store on a cluster of several nodes wrote to a separate data directory on each node. The
multi-node cluster here is real: two raylets on this machine (``ray.cluster_utils.Cluster``), joined
by a CLI driver of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_ingest_helpers import make_rows, write_jsonl
from vectorseam.errors import CollectionNotFoundError, ConfigError
from vectorseam.ingest_options import IngestOptions
from vectorseam.stores.memory import MemoryStore

ray = pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra (pip install 'vectorseam[ray]')")


def _env(tmp_path: Path, pg_server: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTORSEAM_")}
    env.update(VECTORSEAM_DATA_DIR=str(tmp_path / "data"), VECTORSEAM_INGEST__RECORD_MANAGER_DSN=pg_server.dsn())
    return env


def test_qdrant_local_mode_is_refused_before_the_collection_is_made(tmp_path: Path, pg_server: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from vectorseam.client import VectorSeam

    for key, value in _env(tmp_path, pg_server).items():
        monkeypatch.setenv(key, value)
    source = write_jsonl(tmp_path / "rows.jsonl", make_rows(3))
    for options in ({}, {"path": str(tmp_path / "qdrant")}):
        monkeypatch.setenv("VECTORSEAM_STORE__NAME", "qdrant")
        monkeypatch.setenv("VECTORSEAM_STORE__OPTIONS", json.dumps(options))
        with VectorSeam() as vs:
            with pytest.raises(ConfigError, match=r"local mode \(no 'url'\).*store.options.url.*--engine local"):
                vs.prepare_ingest(source, "docs", options=IngestOptions(engine="ray"))
            with pytest.raises(CollectionNotFoundError):
                vs.store.count("docs")  # refused before anything was created


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[str]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


def test_memory_store_on_a_multi_node_cluster_is_refused(tmp_path: Path, pg_server: Any, two_nodes: str) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", make_rows(3))
    result = subprocess.run([sys.executable, "-m", "vectorseam.cli", "ingest", str(source), "--collection", "docs",
                             "--engine", "ray", "--ray-address", two_nodes, "--no-progress"],
                            env=_env(tmp_path, pg_server), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout
    out = result.stdout + result.stderr
    assert "this Ray cluster has 2 nodes" in out and "pgvector" in out, out
    assert "Traceback" not in out, out
    with MemoryStore(tmp_path / "data" / "memory") as store:
        assert store.count("docs") == 0  # the collection exists (made for the job); nothing was written
