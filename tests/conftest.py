"""Shared fixtures: one real embedding model per test session, isolated data directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def local_embedder():  # type: ignore[no-untyped-def]
    """The real default model, loaded once (about ten seconds)."""
    from vectorseam.embedders.local import LocalEmbedder

    embedder = LocalEmbedder()
    embedder.embed_query("warm up")
    return embedder


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL + pgvector server for every core test that needs one (apart by schema)."""
    testing = pytest.importorskip("vectorseam_pgvector.testing",
                                  reason="the pgvector adapter (adapters/pgvector) is not installed")
    with testing.session_server() as server:
        yield server


@pytest.fixture()
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private data dir and no stray configuration from the developer's environment."""
    for key in list(os.environ):
        if key.startswith("VECTORSEAM_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("VECTORSEAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def shared_data(relative: str) -> Path:
    """A file from ../shared/data, or a skip that says why the test cannot run without it."""
    path = DATA_DIR / relative
    if not path.exists():
        pytest.skip(f"shared data set {path} is absent (tests read ../shared/data beside the repo)")
    return path
