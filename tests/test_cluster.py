"""Clustering a real (small) AG News collection, its maps, naming through a chat endpoint, bad input."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.analysis_support import ag_news_subset, embed, fill_collection, memory_store_at
from vectorseam.analysis.clustering import cluster_collection, map_categories
from vectorseam.analysis.maps import write_map
from vectorseam.config import LLMSettings
from vectorseam.errors import ConfigError, ValidationError
from vectorseam.stores.memory import MemoryStore

CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


@pytest.fixture(scope="module")
def news(local_embedder):  # type: ignore[no-untyped-def]
    texts, labels = ag_news_subset(40)
    vectors = embed("ag_news", texts, local_embedder)
    store = MemoryStore()
    fill_collection(store, "news", local_embedder, [f"n{i}" for i in range(len(texts))], texts,
                    [{"label": CLASSES[lab]} for lab in labels], vectors)
    return store, texts, labels, vectors


def test_four_clusters_recover_the_news_classes(news) -> None:  # type: ignore[no-untyped-def]
    from sklearn.metrics import v_measure_score

    store, texts, labels, _ = news
    result = cluster_collection(store, "news", k=4, seed=0)
    assert result.k == 4 and len(result.labels) == len(texts) == 160
    truth = [labels[int(i[1:])] for i in result.data.ids]
    assert v_measure_score(truth, result.labels) > 0.4  # chance level is about 0.01
    assert sum(c.size for c in result.clusters) == 160
    for c in result.clusters:
        assert c.terms, f"cluster {c.index} has no distinctive terms"
        assert len(c.central_ids) == 3
        assert all(result.labels[result.data.ids.index(i)] == c.index for i in c.central_ids)
    sports = max(result.clusters, key=lambda c: sum(
        1 for i, lab in zip(result.data.ids, result.labels, strict=True) if lab == c.index and truth[result.data.ids.index(i)] == 1))
    assert set(sports.terms) & {"game", "season", "team", "win", "night", "coach", "cup", "league", "victory"}


def test_k_is_chosen_by_silhouette_when_not_given(news) -> None:  # type: ignore[no-untyped-def]
    store, *_ = news
    result = cluster_collection(store, "news", k=None, k_range=(2, 6), seed=0)
    assert sorted(result.silhouette_by_k) == [2, 3, 4, 5, 6]
    assert result.silhouette == max(result.silhouette_by_k.values())
    assert result.silhouette_by_k[result.k] == result.silhouette


def test_clusters_can_be_written_to_metadata(local_embedder) -> None:  # type: ignore[no-untyped-def]
    texts, labels = ag_news_subset(8)
    store = MemoryStore()
    fill_collection(store, "small", local_embedder, [f"s{i}" for i in range(len(texts))], texts,
                    [{"label": CLASSES[lab]} for lab in labels], embed("ag_news_small", texts, local_embedder))
    result = cluster_collection(store, "small", k=3, assign_field="cluster")
    stored = {r.id: r.metadata for batch in store.scan("small") for r in batch}
    assert {rid: m["cluster"] for rid, m in stored.items()} == dict(zip(result.data.ids, result.labels, strict=True))
    assert all(m["label"] in CLASSES for m in stored.values())  # other metadata kept


@pytest.mark.parametrize("projection", ["pca", "tsne"])
def test_maps_decode_and_hold_every_point(news, tmp_path: Path, projection: str) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    store, texts, *_ = news
    result = cluster_collection(store, "news", k=4, seed=0)
    png, page = write_map(tmp_path / "map", result.data.vectors, result.data.ids, result.data.texts,
                          map_categories(result, "label"), projection, "news")
    with Image.open(png) as img:
        img.verify()
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > 300
        img.load()
    html = page.read_text(encoding="utf-8")
    ids = re.findall(r'<circle class="pt"[^>]*data-id="([^"]+)"', html)
    assert sorted(ids) == sorted(result.data.ids)
    assert html.count("<title>") == len(texts) + 1  # one hover text per point, plus the page title
    assert "Sci/Tech" in html and "Sports" in html
    assert not re.search(r'<script[^>]+src=|<link\b|<img\b|(?:src|href)="https?://', html), "not self-contained"


def test_map_colour_by_an_absent_field_is_refused(news) -> None:  # type: ignore[no-untyped-def]
    store, *_ = news
    result = cluster_collection(store, "news", k=2)
    with pytest.raises(ValidationError, match="no record has metadata field 'topic'.*label"):
        map_categories(result, "topic")


@pytest.mark.parametrize("k, message", [(0, "positive"), (-3, "positive"), (5, "too few for 5 clusters")])
def test_bad_k_is_refused(local_embedder, k: int, message: str) -> None:  # type: ignore[no-untyped-def]
    texts = ["apples are red", "bananas are yellow", "the match ended in a draw", "stocks fell sharply"]
    store = MemoryStore()
    fill_collection(store, "tiny", local_embedder, ["a", "b", "c", "d"], texts, [{}] * 4)
    with pytest.raises(ValidationError, match=message):
        cluster_collection(store, "tiny", k=k)
    with pytest.raises(ValidationError, match="k range"):
        cluster_collection(store, "tiny", k=None, k_range=(1, 3))


class _ChatServer:
    """A real HTTP server on 127.0.0.1 that speaks the chat-completions wire format: it answers with
    the first distinctive term of the prompt, so the test can check what reached the model."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                outer.prompts.append(prompt)
                first = prompt.split("terms are: ", 1)[1].split(",", 1)[0].strip(" .\n")
                reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": f'"About {first}"'}}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def chat_server() -> Iterator[_ChatServer]:
    server = _ChatServer()
    yield server
    server.server.shutdown()


def test_clusters_are_named_by_the_configured_chat_model(news, chat_server: _ChatServer) -> None:  # type: ignore[no-untyped-def]
    store, *_ = news
    llm = LLMSettings(base_url=chat_server.url, model="namer", api_key=None)
    result = cluster_collection(store, "news", k=3, llm=llm)
    assert len(chat_server.prompts) == 3
    for c in result.clusters:
        assert c.name == f"About {c.terms[0]}"
        assert c.label == c.name
    with pytest.raises(ConfigError, match="chat model"):
        cluster_collection(store, "news", k=3, llm=LLMSettings())


def test_cli_cluster_on_the_embedded_default(news, isolated_env: Path) -> None:  # type: ignore[no-untyped-def]
    from vectorseam.cli import _register, app

    _register()
    source, texts, *_ = news
    store = memory_store_at(isolated_env / "data")
    info = next(i for i in source.collections() if i.name == "news")
    from vectorseam.types import CollectionSpec

    store.ensure_collection(CollectionSpec("news", info.dimension, info.metric, info.metadata))
    store.upsert("news", [r for batch in source.scan("news") for r in batch])
    store.close()
    runner = CliRunner()
    out = runner.invoke(app, ["cluster", "news", "-k", "4", "--map", "news_map", "--projection", "pca",
                              "--color-by", "label", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["k"] == 4 and len(payload["assignments"]) == len(texts)
    assert Path(payload["map"]["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(payload["map"]["html"]).read_text(encoding="utf-8").count('class="pt"') == len(texts)
    table = runner.invoke(app, ["cluster", "news", "-k", "2"])
    assert table.exit_code == 0 and "2 clusters" in table.output
    bad = runner.invoke(app, ["cluster", "news", "-k", "0"])
    assert bad.exit_code != 0 and "positive" in str(bad.exception) + bad.output
