"""Retrieval evaluation on BEIR-format data sets: nDCG@10, recall@100 and MRR@10 per search mode.

Definitions follow BEIR (pytrec_eval / trec_eval): nDCG uses the graded judgement as a linear gain
and log2(rank + 1) discounts, the ideal ranking built from all judged-relevant documents; recall@100
is the share of a query's relevant documents in its top 100; MRR@10 is 1 / rank of the first relevant
document within the top 10 (0 if none). Documents judged with score 0 are not relevant. Only queries
with judgements in the split are scored. Documents are embedded as ``title + " " + text``, as BEIR's
sentence-transformers evaluation does.

The corpus is embedded once into a collection of the configured store and reused while its record
count and embedder match, so repeated runs (other modes, other RRF constants) cost only the queries.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vectorseam.embedding import Embedder, check_embedder, ensure_collection_for
from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.keywords import rrf_fuse
from vectorseam.query import MODES
from vectorseam.retrieval.hybrid import RetrievalSearcher, check_mode
from vectorseam.retrieval.mmr import mmr_head
from vectorseam.store import VectorStore
from vectorseam.types import Record

if TYPE_CHECKING:
    from vectorseam.retrieval.tune_profile import RetrievalProfile

DEPTH = 100


@dataclass
class BeirData:
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise ValidationError(f"{path}: no such file; a BEIR data set holds corpus.jsonl, queries.jsonl and "
                              "qrels/SPLIT.tsv")
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise ValidationError(f"{path}:{n}: expected an object with an '_id' field")
            yield n, row


def load_beir(directory: str | Path, split: str = "test") -> BeirData:
    root = Path(directory)
    if not root.is_dir():
        raise ValidationError(f"{root}: no such directory")
    corpus: dict[str, str] = {}
    for n, row in _jsonl(root / "corpus.jsonl"):
        text = f"{row.get('title') or ''} {row.get('text') or ''}".strip()
        if not text:
            raise ValidationError(f"{root / 'corpus.jsonl'}:{n}: document {row['_id']!r} has no title or text")
        corpus[str(row["_id"])] = text
    queries = {str(row["_id"]): str(row.get("text") or "") for _, row in _jsonl(root / "queries.jsonl")}
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise ValidationError(f"{qrels_path}: no judgements for split {split!r} (available: "
                              f"{', '.join(have) or 'none'}); pick one with --split")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.rstrip("\n").split("\t")
            if (n == 1 and parts[0] == "query-id") or not line.strip():
                continue
            if len(parts) != 3:
                raise ValidationError(f"{qrels_path}:{n}: expected 3 tab-separated fields, got {len(parts)}")
            qid, did, score = parts
            try:
                qrels.setdefault(qid, {})[did] = int(score)
            except ValueError:
                raise ValidationError(f"{qrels_path}:{n}: score {score!r} is not an integer") from None
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise ValidationError(f"{qrels_path}: {len(missing)} judged queries are missing from queries.jsonl, "
                              f"e.g. {missing[0]!r}")
    return BeirData(corpus, queries, qrels)


def ndcg_at(ranked: Sequence[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0)
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], rels: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: Sequence[str], rels: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    judged = [q for q, rels in qrels.items() if any(r > 0 for r in rels.values())]
    if not judged:
        raise ValidationError("the split has no relevant judgements to score against")
    return {
        "ndcg@10": float(np.mean([ndcg_at(run.get(q, []), qrels[q], 10) for q in judged])),
        "recall@100": float(np.mean([recall_at(run.get(q, []), qrels[q], 100) for q in judged])),
        "mrr@10": float(np.mean([mrr_at(run.get(q, []), qrels[q], 10) for q in judged])),
        "queries": float(len(judged)),
    }


@dataclass
class EvalReport:
    dataset: str
    split: str
    documents: int
    queries: int
    collection: str
    store: str
    embedder: str
    rrf_k: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    profile: str = ""  # the collection's tuned retrieval profile, when one was used

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def to_markdown(self) -> str:
        """A Markdown table of the report, for the README and the terminal (:func:`format_table`)."""
        return format_table(self)


def prepare_collection(
    store: VectorStore, embedder: Embedder, collection: str, data: BeirData,
    progress: Callable[[int, int], None] | None = None,
) -> bool:
    """Embed the corpus into ``collection`` unless it already holds exactly these documents; True if embedded."""
    try:
        info = store.collection_info(collection)
    except CollectionNotFoundError:
        info = None
    if info is not None:
        check_embedder(info, embedder)
        sample = list(data.corpus)[:: max(1, len(data.corpus) // 50)]
        present = store.fetch(collection, sample, include_vectors=False)
        if info.count == len(data.corpus) and len(present) == len(sample):
            return False
    ensure_collection_for(store, collection, embedder)
    items = list(data.corpus.items())
    for start in range(0, len(items), 64):
        batch = items[start : start + 64]
        vectors = embedder.embed_documents([text for _, text in batch])
        store.upsert(collection, [Record(did, v, text, {}) for (did, text), v in zip(batch, vectors, strict=True)])
        if progress is not None:
            progress(start + len(batch), len(items))
    return True


def beir_collection(directory: str | Path) -> str:
    """The collection a BEIR data set is embedded into when none is named: ``beir-<folder name>``."""
    return f"beir-{_slug(Path(directory).name)}"


def run_beir(
    searcher: RetrievalSearcher,
    directory: str | Path,
    split: str = "test",
    modes: Sequence[str] = MODES,
    collection: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    use_profile: bool = True,
) -> EvalReport:
    """Score each mode; with the collection's tuned profile (see :mod:`vectorseam.retrieval.tune`) unless
    ``use_profile`` is False, which is refused on the queries it was tuned on."""
    started = time.perf_counter()
    chosen = [check_mode(m) for m in dict.fromkeys(modes)]
    root = Path(directory)
    data = load_beir(root, split)
    name = collection or beir_collection(root)
    store, embedder = searcher.store, searcher.embedder
    t = time.perf_counter()
    embedded = prepare_collection(store, embedder, name, data, progress)
    report = EvalReport(root.name, split, len(data.corpus), len(data.qrels), name, store.capabilities.name,
                        embedder.fingerprint, searcher.rrf_k)
    report.seconds["corpus_embedding" if embedded else "corpus_reused"] = time.perf_counter() - t
    profile = searcher.profile(name) if use_profile else None
    if profile is not None:
        profile.check_unseen(root.name, split, data.qrels)
        report.profile = profile.describe()
    qids = [q for q in data.qrels if data.queries.get(q, "").strip()]
    lists = _Lists(searcher, name, [data.queries[q] for q in qids], profile, report)
    if "dense" in chosen or "hybrid" in chosen:
        lists.search_dense()
    if "bm25" in chosen or "hybrid" in chosen:
        lists.search_bm25()
    for mode in chosen:
        ranked = lists.dense if mode == "dense" else lists.bm25 if mode == "bm25" else lists.hybrid()
        report.metrics[mode] = score_run({q: ids[:DEPTH] for q, ids in zip(qids, ranked, strict=True)}, data.qrels)
    report.seconds["total"] = time.perf_counter() - started
    return report


class _Lists:
    """Each query's ranked ids by dense, BM25 and hybrid search, deep enough for every metric and for the
    fusion (with the profile where there is one), timed into the report."""

    def __init__(self, searcher: RetrievalSearcher, collection: str, queries: list[str],
                 profile: RetrievalProfile | None, report: EvalReport) -> None:
        self.searcher, self.collection, self.queries, self.profile, self.report = (
            searcher, collection, queries, profile, report)
        self.depth = max(DEPTH, searcher.candidates, profile.fusion.depth if profile is not None else 0)
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.dense_scored: list[list[tuple[str, float]]] = []
        self.bm25_scored: list[list[tuple[str, float]]] = []

    @property
    def dense(self) -> list[list[str]]:
        return [[d for d, _ in hits] for hits in self.dense_scored]

    @property
    def bm25(self) -> list[list[str]]:
        return [[d for d, _ in hits] for hits in self.bm25_scored]

    def search_dense(self) -> None:
        t = time.perf_counter()
        vectors = np.stack([self.searcher.embedder.embed_query(q) for q in self.queries])
        self.vectors = self.profile.adapt(vectors) if self.profile is not None else vectors
        results = self.searcher.store.query(self.collection, self.vectors, k=self.depth)
        self.dense_scored = [[(h.id, h.score) for h in hits] for hits in results]
        self.report.seconds["dense"] = time.perf_counter() - t

    def search_bm25(self) -> None:
        store = self.searcher.store
        t = time.perf_counter()
        if self.queries:  # the first keyword search builds an index not built yet (a sidecar, a legacy collection's)
            store.keyword_search(self.collection, self.queries[0], 1)
        self.report.seconds["bm25_index"] = time.perf_counter() - t
        t = time.perf_counter()
        self.bm25_scored = [[(h.id, h.score) for h in store.keyword_search(self.collection, q, self.depth)]
                            for q in self.queries]
        self.report.seconds["bm25"] = time.perf_counter() - t

    def hybrid(self) -> list[list[str]]:
        searcher, profile, t = self.searcher, self.profile, time.perf_counter()
        if profile is None:
            n = searcher.candidates
            out = [[d for d, _ in rrf_fuse([dense[:n], bm25[:n]], searcher.rrf_k, searcher.weights)]
                   for dense, bm25 in zip(self.dense, self.bm25, strict=True)]
            self.report.seconds["hybrid_fusion"] = time.perf_counter() - t
        elif profile.ranker is not None or profile.feedback is not None:
            # feedback and the ranker need each query's own second search and features: exactly search's path
            out = [[h.id for h in searcher.search(self.collection, q, DEPTH, mode="hybrid")] for q in self.queries]
            self.report.seconds["hybrid_tuned_search"] = time.perf_counter() - t
        else:
            metric = searcher.store.collection_info(self.collection).metric
            out = []
            for i, (dense, bm25) in enumerate(zip(self.dense_scored, self.bm25_scored, strict=True)):
                fused = profile.fusion.fuse(dense, bm25)
                if profile.mmr is not None:
                    fused = mmr_head(searcher.store, self.collection, self.vectors[i], fused,
                                     searcher.candidate_pool(10), 10, profile.mmr, metric)
                out.append([d for d, _ in fused])
            self.report.seconds["hybrid_fusion"] = time.perf_counter() - t
        return out


def _slug(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-" else "-" for c in name.lower()).strip("-") or "data"
    return cleaned[:50]


def format_table(report: EvalReport) -> str:
    """A Markdown table of the report, for the README and the terminal."""
    lines = [
        f"BEIR {report.dataset} ({report.split} judgements, {report.queries} queries, {report.documents} documents; "
        f"{report.store} store, {report.embedder}, RRF k={report.rrf_k:g})",
        "",
        "| mode | nDCG@10 | recall@100 | MRR@10 |",
        "|---|---:|---:|---:|",
    ]
    if report.profile:
        lines[1:1] = [f"with the collection's tuned retrieval profile: {report.profile}"]
    for mode, m in report.metrics.items():
        lines.append(f"| {mode} | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} |")
    lines.append("")
    lines.append("run time: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items()))
    return "\n".join(lines)
