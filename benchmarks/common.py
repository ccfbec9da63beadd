"""Shared plumbing for the speed benchmarks: the result contract, timing, machine facts, corpora,
the embedding cache and the synthesis of large real-embedding-like vector sets.

Embedding is the slow part on a small CPU, so every real text is embedded once and cached as .npy
under ``$VECTORSEAM_BENCH_CACHE`` (default ``~/.cache/vectorseam-bench``), never in the repository.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VECTORSEAM_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "results"
CACHE = Path(os.environ.get("VECTORSEAM_BENCH_CACHE", Path.home() / ".cache" / "vectorseam-bench"))
Matrix = npt.NDArray[np.float32]


@dataclass
class Result:
    """What a benchmark module's ``run(quick)`` returns; benchmarks/run.py writes it out.

    ``markdown`` is the table (and prose) that goes into ``results/<name>.md`` and SUMMARY.md;
    ``data`` is everything measured, written to ``results/<name>.json``; ``files`` lists extra
    artefacts (plots) the module wrote into RESULTS itself.
    """

    name: str
    title: str
    markdown: str
    data: dict[str, Any]
    files: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def versions(*packages: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in packages:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (psutil where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil

    return int(psutil.Process().memory_info().rss)


def settled_rss() -> int:
    gc.collect()
    return rss_bytes()


def latency_stats(samples_s: Sequence[float], queries_per_call: int) -> dict[str, float]:
    """QPS from total time; p50/p99 of the per-call latency in milliseconds."""
    arr = np.asarray(samples_s, dtype=np.float64)
    total = float(arr.sum())
    return {
        "qps": round(queries_per_call * arr.size / total, 2) if total > 0 else float("inf"),
        "p50_ms": round(float(np.percentile(arr, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(arr, 99)) * 1e3, 3),
        "calls": int(arr.size),
    }


def time_calls(fn: Callable[[int], object], calls: int, warmup: int = 1) -> list[float]:
    for i in range(warmup):
        fn(i)
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# -- corpora ---------------------------------------------------------------------------------------

def require_data(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"benchmark data {path} is missing: the benchmarks read ../shared/data beside the "
                         "repository (or set VECTORSEAM_SHARED_DATA)")
    return path


def scifact_abstracts(limit: int | None = None) -> list[str]:
    out = []
    with open(require_data(DATA / "scifact" / "corpus.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out.append(f"{row['title']}. {row['text']}".strip())
            if limit is not None and len(out) >= limit:
                break
    return out


def scifact_queries(limit: int | None = None) -> list[str]:
    out = []
    with open(require_data(DATA / "scifact" / "queries.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["text"])
            if limit is not None and len(out) >= limit:
                break
    return out


def ag_news(limit: int | None = None) -> list[tuple[int, str]]:
    out = []
    with open(require_data(DATA / "ag_news" / "test.csv"), encoding="utf-8", newline="") as fh:
        for label, title, description in csv.reader(fh):
            out.append((int(label), f"{title}. {description}".replace("\\", " ")))
            if limit is not None and len(out) >= limit:
                break
    return out


# -- embeddings --------------------------------------------------------------------------------------

_ENCODER: Any = None


def _encoder() -> Any:
    """The fastest encoder that matches sentence-transformers (cosine >= 0.999, measured in embedding.py)."""
    global _ENCODER
    if _ENCODER is None:
        from vectorseam.embedders.onnx_backend import OnnxMiniLM

        _ENCODER = OnnxMiniLM()
    return _ENCODER


def embed_cached(name: str, texts: Sequence[str], chunk: int = 100) -> Matrix:
    """Embeddings of ``texts``, cached per chunk of 100 texts keyed by their content.

    Per-chunk keys make a prefix of a list (the ``--quick`` corpora) reuse the full run's work and
    let an interrupted run resume.
    """
    folder = CACHE / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    start = time.perf_counter()
    computed = 0
    for s in range(0, len(texts), chunk):
        batch = list(texts[s : s + chunk])
        digest = hashlib.sha256(b"all-MiniLM-L6-v2:normalized:onnx-fp32")
        for t in batch:
            digest.update(t.encode("utf-8", "surrogatepass") + b"\x00")
        part = folder / f"{name}-{digest.hexdigest()[:20]}.npy"
        if part.is_file():
            parts.append(np.load(part))
            continue
        vecs = _encoder().encode(batch)
        tmp = part.with_suffix(".tmp.npy")
        np.save(tmp, vecs)
        os.replace(tmp, part)
        parts.append(vecs)
        computed += len(batch)
        log(f"embedded {s + len(batch)}/{len(texts)} {name} texts "
            f"({computed / (time.perf_counter() - start):.0f}/s)")
    if not parts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


@dataclass
class RealEmbeddings:
    """Real embeddings: the base the large sets are grown from, and held-out real queries."""

    base: Matrix
    base_source: list[str]
    queries: Matrix


def real_embeddings(quick: bool) -> RealEmbeddings:
    """AG News (news, 4 topics) and SciFact (biomedical abstracts and claims), embedded for real.

    One tenth of the AG News items is held out as queries, together with the SciFact claims, so
    queries are real texts that are not in the collection.
    """
    n_ag, n_sci, n_q = (1000, 200, 200) if quick else (3000, 600, 400)
    news = [t for _, t in ag_news(n_ag)]
    ag = embed_cached("ag_news", news)
    sci = embed_cached("scifact_abstracts", scifact_abstracts(n_sci))
    claims = embed_cached("scifact_queries", scifact_queries(n_q))
    held = np.zeros(len(ag), dtype=bool)
    held[::10] = True
    base = np.concatenate([ag[~held], sci])
    source = ["ag_news"] * int((~held).sum()) + ["scifact"] * len(sci)
    queries = np.concatenate([ag[held], claims])
    return RealEmbeddings(np.ascontiguousarray(base), source, np.ascontiguousarray(queries))


def synthesize(real: Matrix, n: int, seed: int = 0, chunk: int = 100_000) -> Matrix:
    """``n`` unit vectors that keep the structure of ``real`` (its clusters and its spectrum).

    Each synthetic vector starts at a real seed embedding, moves a random fraction t ~ U(0, 0.5) of
    the way towards one of the seed's 10 nearest real neighbours (so new points fill in the real
    neighbourhoods instead of piling onto the seeds), then gets Gaussian noise shaped by the real
    embeddings' own covariance (so the noise lies in the directions texts actually vary in, not
    isotropically in all 384), scaled to a quarter of the data spread; the result is re-normalised.
    Isotropic random vectors would make every point nearly orthogonal to every other, which is
    neither how text embeddings look nor how search over them behaves.
    """
    rng = np.random.default_rng(seed)
    m, d = real.shape
    sims = real @ real.T
    np.fill_diagonal(sims, -np.inf)
    neighbours = np.argpartition(-sims, 10, axis=1)[:, :10]
    del sims
    centred = real - real.mean(axis=0)
    cov = (centred.T @ centred) / max(m - 1, 1)
    evals, evecs = np.linalg.eigh(cov.astype(np.float64))
    shape = (evecs * np.sqrt(np.clip(evals, 0, None))[None, :]).T.astype(np.float32)  # z @ shape ~ N(0, cov)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        seeds = rng.integers(0, m, e - s)
        nb = neighbours[seeds, rng.integers(0, 10, e - s)]
        t = rng.uniform(0.0, 0.5, (e - s, 1)).astype(np.float32)
        v = (1 - t) * real[seeds] + t * real[nb]
        v += 0.5 * (rng.standard_normal((e - s, d), dtype=np.float32) @ shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[s:e] = v
    return out


def fill_cache() -> None:
    """Embed every real text the benchmarks use (``python -m benchmarks.common``)."""
    real_embeddings(quick=True)
    real_embeddings(quick=False)
    from benchmarks.embedding import texts_for

    for quick in (True, False):
        docs, queries = texts_for(quick)
        embed_cached("scifact_abstracts", docs)
        embed_cached("scifact_queries", queries)


if __name__ == "__main__":
    fill_cache()
