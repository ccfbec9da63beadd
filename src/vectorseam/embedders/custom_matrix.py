"""A learned matrix that maps one embedder's vectors into a task-specific space, and the embedder that
applies it. Training lives in :mod:`vectorseam.analysis.customize`; the embedder factory builds a
customized embedder from configuration, so the matrix itself belongs with the embedders."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.embedding import Embedder
from vectorseam.errors import ConfigError, DimensionMismatchError, EmbedderMismatchError
from vectorseam.similarity import unit_rows_f32

FORMAT = "vectorseam-custom-matrix/1"


@dataclass(frozen=True)
class CustomMatrix:
    """The learned matrix (input dimension x output dimension) and the space it applies to."""

    matrix: npt.NDArray[np.float32]
    base_fingerprint: str
    threshold: float | None = None  # chosen on the training split
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """sha256 of shape and float32 bytes, first 12 hex digits: names the matrix in fingerprints."""
        m = np.ascontiguousarray(self.matrix, dtype=np.float32)
        h = hashlib.sha256(f"{m.shape[0]}x{m.shape[1]}:".encode())
        h.update(m.tobytes())
        return h.hexdigest()[:12]

    @property
    def input_dimension(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def output_dimension(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def fingerprint(self) -> str:
        return f"{self.base_fingerprint}+custom:{self.digest}"

    def transform(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map base embeddings (n, d_in) to unit-length customized ones (n, d_out)."""
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.input_dimension:
            raise DimensionMismatchError(
                f"the custom matrix maps {self.input_dimension}-d vectors, got shape {x.shape}"
            )
        return unit_rows_f32(x @ self.matrix)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "base_fingerprint": self.base_fingerprint, "threshold": self.threshold,
                "digest": self.digest, "info": self.info}
        with open(path, "wb") as fh:
            np.savez(fh, matrix=np.ascontiguousarray(self.matrix, dtype=np.float32), meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CustomMatrix:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"custom matrix file {path} does not exist; train one with `vectorseam customize train`")
        try:
            with np.load(path, allow_pickle=False) as npz:
                matrix = np.asarray(npz["matrix"], dtype=np.float32)
                meta = json.loads(str(npz["meta"]))
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"{path} is not a custom matrix written by `vectorseam customize train` ({exc})"
            ) from None
        if meta.get("format") != FORMAT or matrix.ndim != 2:
            raise ConfigError(f"{path}: unknown custom matrix format {meta.get('format')!r}")
        if not np.isfinite(matrix).all():
            raise ConfigError(f"{path}: the matrix holds non-finite values")
        custom = cls(matrix, str(meta["base_fingerprint"]), meta.get("threshold"), dict(meta.get("info") or {}))
        if meta.get("digest") not in (None, custom.digest):
            raise ConfigError(f"{path}: the matrix does not match its recorded hash (file damaged?)")
        return custom


class CustomizedEmbedder:
    """Wraps the base embedder: embed, then multiply by the matrix (and renormalise)."""

    def __init__(self, base: Embedder, custom: CustomMatrix) -> None:
        if base.fingerprint != custom.base_fingerprint:
            raise EmbedderMismatchError(
                f"the custom matrix was trained on {custom.base_fingerprint!r} embeddings, but the configured "
                f"embedder is {base.fingerprint!r}; configure that embedder or train a matrix for this one"
            )
        if base.dimension != custom.input_dimension:
            raise DimensionMismatchError(
                f"the custom matrix maps {custom.input_dimension}-d vectors; the embedder gives {base.dimension}-d"
            )
        self.base = base
        self.custom = custom

    @property
    def dimension(self) -> int:
        return self.custom.output_dimension

    @property
    def fingerprint(self) -> str:
        return self.custom.fingerprint

    @property
    def max_tokens(self) -> int:
        return self.base.max_tokens

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.base.token_spans(text)

    def count_tokens(self, texts: Sequence[str]) -> int:
        return self.base.count_tokens(texts)

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        base = self.base.embed_documents(texts, batch_size)
        if len(base) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.custom.transform(base)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = self.custom.transform(self.base.embed_query(text)[None, :])[0]
        return out
