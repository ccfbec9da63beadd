"""Reindex: re-embed a collection with another embedder into a new collection, switch the alias only
when complete; searches through the alias then use the new collection. The second embedder is the
real OpenAI client talking to a real HTTP server (tests/openai_wire.py) backed by the local model, so
its fingerprint differs while no network is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.openai_wire import OpenAIWireServer
from tests.test_ingest_helpers import make_rows, write_jsonl
from vectorseam.client import VectorSeam
from vectorseam.config import Settings
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.embedders.openai_api import OpenAIEmbedder
from vectorseam.errors import EmbedderMismatchError
from vectorseam.ingest.job import JobState
from vectorseam.ingest.reindex import reindex_collection
from vectorseam.retrieval.search import Searcher


def test_reindex_switches_the_alias_only_when_complete(tmp_path: Path, local_embedder: LocalEmbedder) -> None:
    rows = make_rows(12)
    src = write_jsonl(tmp_path / "src.jsonl", rows)
    vs = VectorSeam(settings=Settings(data_dir=tmp_path / "data"))
    vs.__dict__["embedder"] = local_embedder  # the session's loaded model
    assert vs.ingest_file(src, "docs").added == 12
    with OpenAIWireServer(local_embedder) as server:
        remote = OpenAIEmbedder(base_url=server.base_url, api_key="test", dimension=384)
        with pytest.raises(EmbedderMismatchError, match="vectorseam reindex docs --embedder"):
            Searcher(vs.store, remote).search("docs", "tea")
        state = JobState.under(tmp_path / "data", vs.store_key)
        report = reindex_collection(vs.store, vs.aliases, "docs", remote, state, batch_size=5)
        assert report.switched and report.written == 12 and report.cached == 0
        assert vs.aliases.resolve("docs") == report.target != "docs"
        info = {c.name: c for c in vs.collections()}
        assert info[report.target].metadata["embedder"] == "openai:text-embedding-3-small:384"
        assert info[report.target].count == info["docs"].count == 12
        # Searching "docs" now goes to the new collection, with the new embedder.
        vs.__dict__["embedder"] = remote
        vs.__dict__.pop("searcher", None)
        hits = vs.search("owls", k=3, collection="docs")
        assert hits and "owls" in hits[0].text
        # Ingesting through the alias goes to the new collection; the record manager came along (nothing
        # added), texts re-chunked for the new embedder's limit hit the cache (nothing embedded).
        again = vs.ingest_file(src, "docs")
        assert (again.added, again.updated + again.unchanged, again.embedded) == (0, 12, 0)
        assert {c.name: c.count for c in vs.collections()}[report.target] == 12
        # A repeated reindex into the same target skips what is there and embeds nothing.
        again_report = reindex_collection(vs.store, vs.aliases, "docs", local_embedder, state,
                                          target="docs_local")
        assert again_report.written == 12 and again_report.embedded == 0  # vectors from the cache
        assert vs.aliases.resolve("docs") == "docs_local"
    vs.close()
