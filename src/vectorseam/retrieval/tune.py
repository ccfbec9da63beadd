"""``vectorseam tune``: learn a retrieval profile for a collection from judged queries, by k-fold
cross-validation over those queries only.

What is tuned, in this order, each step kept only if it raised nDCG@10 on held-out folds:

1. **fusion**: RRF (constant, weights) or min-max / z-score score fusion (weights), and the candidate
   depth of each list (:data:`~vectorseam.retrieval.tune_search.DEPTHS`);
2. **query adapter**: a d x d matrix applied to query embeddings (:mod:`~vectorseam.retrieval.query_adapter`),
   trained on the fold's training queries with hard negatives from the current hybrid ranking and
   early-stopped on a slice of them. The fusion is not chosen again afterwards: on the adapted
   training queries it would trust the adapter as much as the adapter fits its own training documents;
3. **pseudo-relevance feedback**: the query moved towards its own top results before the dense list is
   searched again (:mod:`~vectorseam.retrieval.prf`): how many results, how far;
4. **learned ranker**: a linear model or LambdaMART over the features of each candidate
   (:mod:`~vectorseam.retrieval.ranker`), chosen per fold on an early-stopping slice, re-ordering the
   union of the two lists;
5. **MMR**: off, or a lambda re-ranking the top 60.

For each fold the settings are chosen on the other folds and scored on it, so every judged query
gets one held-out score per step; a step's gain is the mean paired difference with a paired
bootstrap 95% interval.

Folds by query answer "how much better for more queries like these?". Judged queries often share
relevant documents (two thirds of SciFact's train queries do), and a query adapter can learn where
those documents are, which helps new queries about them but not queries about other documents. So
every report splits the held-out queries in two: those whose relevant documents a training query of
their fold was also judged on (``seen``) and the others (``unseen``), with a gain and an interval
each, and warns when a step helps only the first. The chosen steps are also scored again on folds
that keep queries sharing a relevant document together (``new_documents`` in the report: every
query's documents unseen), and a step that loses there is dropped. The profile saved is then chosen
the same way on all judged queries.

What is not tuned, and why: BM25's k1 and b need the keyword index to score with other parameters,
and the BM25 sidecar (or a store's native keyword index) scores with Lucene's defaults over the
stored text. Measured on SciFact train (whole split, bm25s, same tokens): k1 in 0.9-2.0 x b in
0.5-1.0 moved BM25 nDCG@10 between 0.690 and 0.697 (defaults 0.696). A title field is scored by the
learned ranker instead (BM25 over each candidate's lead, from statistics kept in the profile).

Measured for queries about documents no training query was judged on (SciFact train, folds by
document, nDCG@10 of every kept step; 0.7397-0.7407 with the ranker's features as they are) and not
kept, since none gained clearly on both kinds of folds: ranker features from the candidate set alone
(cosine with the centroid of the fused, dense or BM25 top 5; mean cosine with the top 10) 0.7380;
dense cosine of the query with each candidate's title 0.7369; an RM3 expansion score and full-text
query-term coverage 0.7370; the linear model alone 0.7407, LambdaMART alone 0.7397; early-stopping
slices grouped by document inside those folds 0.7355; the local model fine-tuned per fold (on a GPU,
4 epochs) as one more ranker feature 0.7431 (by query 0.8381), which would need a second vector per
document and a fine-tuning per fold on every tune.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.keywords import tokenize, tokenize_all
from vectorseam.retrieval.evaluation import load_beir, prepare_collection
from vectorseam.retrieval.finetune import FinetuneReport, examples_from_ranking, finetune, model_name
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.retrieval.prf import Feedback, feedback_grid
from vectorseam.retrieval.query_adapter import train_adapter
from vectorseam.retrieval.ranker import (
    ABSENT,
    LeadIndex,
    Ranker,
    RankInputs,
    feature_matrix,
    feature_names,
    fit_lambdamart,
    fit_linear,
    metadata_values,
    text_length,
)
from vectorseam.retrieval.tune_profile import Fusion, RetrievalProfile, TrainedOn, corpus_fingerprint
from vectorseam.retrieval.tune_search import (
    MMR_LAMBDAS,
    Candidates,
    Judged,
    assign_folds,
    build_candidates,
    dense_ndcg,
    dense_top,
    document_groups,
    fusion_grid,
    grid_scores,
    mmr_ndcg,
    paired_interval,
)
from vectorseam.similarity import unit_rows_f32
from vectorseam.tune_options import FinetuneOptions, TuneOptions
from vectorseam.types import Metadata, Metric

Say = Callable[[str], None]
F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass
class Split:
    """A step's gain on one part of the held-out queries: its size, mean gain and 95% interval."""

    queries: int
    ndcg: float
    gain: float
    ci95: tuple[float, float]

    def cell(self) -> str:
        if not self.queries:
            return "–"
        return f"{self.gain:+.4f} [{self.ci95[0]:+.4f}, {self.ci95[1]:+.4f}]"


@dataclass
class Stage:
    """One step of the tuned pipeline, scored on held-out folds (every judged query once)."""

    name: str
    ndcg: float  # mean held-out nDCG@10 of the pipeline with this step
    gain: float  # against the pipeline before the step
    ci95: tuple[float, float]
    kept: bool
    chosen: list[str] = field(default_factory=list)  # what each fold chose
    note: str = ""  # why a step that gained was dropped anyway
    seen: Split | None = None  # held-out queries whose relevant documents their training folds judged too
    unseen: Split | None = None  # the others: queries about documents no training query was judged on
    warning: str = ""

    def line(self) -> str:
        verdict = ("kept" if self.kept else "dropped") + (f" ({self.note})" if self.note else "")
        seen = self.seen.cell() if self.seen else "–"
        unseen = self.unseen.cell() if self.unseen else "–"
        return (f"| {self.name} | {self.ndcg:.4f} | {self.gain:+.4f} | [{self.ci95[0]:+.4f}, {self.ci95[1]:+.4f}] "
                f"| {seen} | {unseen} | {verdict} |")


HEAD = ["| step | nDCG@10 | gain | 95% CI (paired bootstrap) | gain, judged documents [95% CI] "
        "| gain, unjudged documents [95% CI] | |", "|---|---:|---:|---:|---:|---:|---|"]


@dataclass
class TuneReport:
    dataset: str
    split: str
    collection: str
    embedder: str
    documents: int
    queries: int
    folds: int
    seed: int
    folds_by: str  # "queries": k-fold over judged queries; "documents": queries sharing a relevant document together
    stages: list[Stage] = field(default_factory=list)
    diagnostics: list[Stage] = field(default_factory=list)  # single-retriever figures, for orientation
    # the same chosen steps scored on document-grouped folds: what they do for queries about documents
    # no training query was judged on (when the folds are by query)
    new_documents: list[Stage] = field(default_factory=list)
    profile: str = ""
    training_fit: float = 0.0  # the final profile's nDCG@10 on the queries it was chosen on (optimistic)
    adapter_epochs: list[int] = field(default_factory=list)  # early-stopped epoch per fold, then the final fit
    profile_path: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    total: Stage | None = None  # every kept step together, on the folds by query (or by document)
    new_documents_total: Stage | None = None  # the same on the folds that keep relevant documents apart

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def estimates(self) -> dict[str, float]:
        """The headline figures: untuned and tuned held-out nDCG@10, overall and for new documents."""
        out = {"untuned": self.stages[0].ndcg if self.stages else 0.0}
        kept = [s for s in self.stages if s.kept]
        out["tuned"] = kept[-1].ndcg if kept else out["untuned"]
        if self.new_documents:
            names = {s.name for s in kept}
            chosen = [s for s in self.new_documents if s.name in names]
            out["new_documents"] = chosen[-1].ndcg if chosen else self.new_documents[0].ndcg
            out["new_documents_untuned"] = self.new_documents[0].ndcg
        return out

    def to_markdown(self) -> str:
        lines = [
            f"Tuning on {self.dataset} ({self.split} judgements, {self.queries} queries, {self.documents} documents; "
            f"{self.embedder}), {self.folds}-fold cross-validation by {self.folds_by} (seed {self.seed}): "
            "nDCG@10 on held-out folds. Judged / unjudged documents: held-out queries whose relevant documents "
            "a training query of their fold was / was not also judged on.",
            "",
            *HEAD,
            *(s.line() for s in self.stages),
            *([self.total.line()] if self.total else []),
            "",
        ]
        if self.new_documents:
            lines += [
                "the same steps on folds that keep each relevant document to one fold (new documents: queries "
                "about documents no training query was judged on):",
                "",
                *HEAD,
                *(s.line() for s in self.new_documents),
                *([self.new_documents_total.line()] if self.new_documents_total else []),
                "",
            ]
        lines += [
            "single retrievers (held-out folds where something is trained):",
            "",
            "| retriever | nDCG@10 | gain | 95% CI (paired bootstrap) | | | |",
            "|---|---:|---:|---:|---:|---:|---|",
            *(s.line().replace("| kept |", "| |").replace("| dropped |", "| |") for s in self.diagnostics),
            "",
            f"profile: {self.profile}",
            f"nDCG@10 of the profile on the queries it was chosen on (optimistic): {self.training_fit:.4f}",
        ]
        est = self.estimates()
        if "new_documents" in est:
            lines.append(f"held-out estimate: {est['untuned']:.4f} -> {est['tuned']:.4f}; for new documents "
                         f"{est['new_documents_untuned']:.4f} -> {est['new_documents']:.4f}")
        lines += [f"WARNING: {w}" for w in self.warnings]
        if self.adapter_epochs:
            lines.append(f"adapter early-stopped at epochs {self.adapter_epochs} (folds, then the final fit)")
        for stage in self.stages[1:]:
            if stage.chosen:
                lines.append(f"{stage.name}, per fold: " + " | ".join(stage.chosen))
        if self.profile_path:
            lines.append(f"saved to {self.profile_path}")
        lines.append("run time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        return "\n".join(lines)


@dataclass(frozen=True)
class Corpus:
    """A collection read for tuning: ids sorted (row order = tie order), vectors, texts, metadata, metric."""

    ids: list[str]
    vectors: F32
    metric: Metric
    texts: list[str] = field(default_factory=list)
    metadata: list[Metadata] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return corpus_fingerprint(self.ids)


def read_corpus(searcher: RetrievalSearcher, collection: str) -> Corpus:
    info = searcher.store.collection_info(collection)
    rows: list[tuple[str, npt.NDArray[np.float32], str, Metadata]] = []
    for batch in searcher.store.scan(collection, batch_size=1000, include_vectors=True):
        for r in batch:
            if r.vector is None:
                raise ValidationError(f"the {searcher.store.capabilities.name} store returned records without "
                                      "vectors from scan; tuning needs the document vectors")
            rows.append((r.id, np.asarray(r.vector, dtype=np.float32), r.text, dict(r.metadata)))
    if not rows:
        raise ValidationError(f"collection {collection!r} is empty; nothing to tune")
    rows.sort(key=lambda p: p[0])
    return Corpus([r[0] for r in rows], np.stack([r[1] for r in rows]), info.metric, [r[2] for r in rows],
                  [r[3] for r in rows])


UNTUNED = "untuned hybrid (RRF k=60, equal weights, 100 candidates)"
FUSION = "+ tuned fusion"
ADAPTER = "+ query adapter"
FEEDBACK = "+ pseudo-relevance feedback"
RANKER = "+ learned ranker"
MMR = "+ MMR"
TOTAL = "= the tuned profile (every kept step) against the untuned hybrid"


@dataclass
class _CrossValidation:
    stages: list[Stage]
    diagnostics: list[Stage] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)  # the adapter's early-stopped epoch per fold
    total: Stage | None = None  # every kept step together against the untuned hybrid


@dataclass
class _State:
    """What a fold's pipeline currently is: its candidates, fusion and query vectors (as adapted, and
    after feedback), its feedback, and the scores it ranks the candidates by (-inf: not retrieved)."""

    candidates: Candidates
    fusion: Fusion
    queries: F32
    scores: F64
    searched: F32 | None = None  # the vectors the dense list was searched with (after feedback)
    feedback: Feedback | None = None


@dataclass
class _Run:
    """One cross-validation in progress: the folds, what to keep (None: what gains), which held-out queries'
    documents their training folds judged too, the stages so far, each fold's pipeline and the per-query
    held-out nDCG@10 of the pipeline so far (and of plain dense search)."""

    fold: I64
    keep: Mapping[str, bool] | None
    seen: B
    cv: _CrossValidation
    states: list[_State]
    current: F64
    dense_base: F64


def _rows(cand: Candidates, rows: I64) -> Candidates:
    return Candidates(cand.doc[rows], cand.dense_score[rows], cand.dense_rank[rows], cand.bm25_score[rows],
                      cand.bm25_rank[rows], cand.gain[rows], cand.idcg[rows])


def _pad(a: npt.NDArray[Any], width: int, fill: Any) -> npt.NDArray[Any]:
    if a.shape[1] == width:
        return a
    out = np.full((a.shape[0], width), fill, dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


def _out_of_fold(states: list[_State], fold: I64) -> _State:
    """One state whose row i is query i's row in the state of its own fold."""
    width = max(st.candidates.doc.shape[1] for st in states)
    pick = [states[int(f)] for f in fold]
    rows = np.arange(len(fold))

    def stack(get: Callable[[_State], npt.NDArray[Any]], fill: Any) -> npt.NDArray[Any]:
        padded = {id(st): _pad(get(st), width, fill) for st in states}
        return np.stack([padded[id(st)][i] for i, st in zip(rows, pick, strict=True)])

    c = states[0].candidates
    cand = Candidates(stack(lambda s: s.candidates.doc, -1), stack(lambda s: s.candidates.dense_score, 0.0),
                      stack(lambda s: s.candidates.dense_rank, ABSENT), stack(lambda s: s.candidates.bm25_score, 0.0),
                      stack(lambda s: s.candidates.bm25_rank, ABSENT), stack(lambda s: s.candidates.gain, 0.0), c.idcg)
    queries = np.stack([st.queries[i] for i, st in zip(rows, pick, strict=True)])
    searched = np.stack([(st.searched if st.searched is not None else st.queries)[i]
                         for i, st in zip(rows, pick, strict=True)])
    return _State(cand, states[0].fusion, queries, stack(lambda s: s.scores, -np.inf), searched)


def seen_documents(gains: list[dict[int, float]], fold: I64) -> B:
    """For each query: does a query of another fold share one of its relevant documents?"""
    out = np.zeros(len(gains), dtype=bool)
    for f in np.unique(fold).tolist():
        train_docs = {d for i, g in enumerate(gains) if fold[i] != f for d in g}
        for i in np.flatnonzero(fold == f).tolist():
            out[i] = any(d in train_docs for d in gains[i])
    return out


class _Tuner:
    def __init__(self, corpus: Corpus, judged: Judged, queries: F32, bm25: list[list[tuple[int, float]]],
                 options: TuneOptions, say: Say, texts: list[str] | None = None) -> None:
        self.corpus, self.judged, self.queries, self.bm25 = corpus, judged, queries, bm25
        self.options, self.say = options, say
        self.texts = texts or [""] * len(judged.ids)  # the query texts (the ranker's lead features)
        self.grid = fusion_grid(min(options.max_depth, len(corpus.ids)))
        self.depth = max(f.depth for f in self.grid)
        self.n = len(judged.ids)
        self.groups = document_groups(judged.gains) if options.group_by_documents else None
        self._lead_cache: dict[tuple[int, int], tuple[float, float]] = {}
        self._oof: tuple[_State, F64, F64, B] | None = None  # the ranker's out-of-fold training data

    def candidates(self, queries: F32, rows: npt.NDArray[np.int64] | None = None) -> Candidates:
        """Candidate rows of the judged queries ``rows`` (all by default); ``queries``: their vectors."""
        idx = np.arange(self.n) if rows is None else rows
        sub = Judged([self.judged.ids[i] for i in idx], [self.judged.gains[i] for i in idx])
        return build_candidates(dense_top(queries, self.corpus.vectors, self.depth, self.corpus.metric),
                                [self.bm25[i] for i in idx], sub)

    def best(self, scores: F64, rows: npt.NDArray[np.bool_]) -> int:
        """The setting with the best mean over ``rows`` (the first such: the default wins ties)."""
        return int(np.argmax(scores[:, rows].mean(axis=1)))

    def stop_split(self, rows: I64, seed: int) -> tuple[I64, I64]:
        """``rows`` split into an early-stopping slice and the rest, like a fold (by document groups when
        the folds are), so a stopping point is chosen on the kind of generalisation the folds measure."""
        parts = assign_folds(len(rows), max(2, round(1 / self.options.early_stop_fraction)), seed,
                             None if self.groups is None else self.groups[rows])
        return rows[parts == 0], rows[parts != 0]

    def adapter(self, rows: npt.NDArray[np.int64], fusion: Fusion, seed: int) -> tuple[F32, int]:
        """Train on ``rows`` minus an early-stopping slice; returns the matrix and its epoch."""
        stop_rows, fit_rows = self.stop_split(rows, seed)
        current = self.candidates(self.queries[fit_rows], fit_rows)
        retrieved = current.ranked(fusion, self.options.hard_negative_depth)
        relevant = [sorted(self.judged.gains[i]) for i in fit_rows]

        def held_out(matrix: F32) -> float:
            cand = self.candidates(unit_rows_f32(self.queries[stop_rows] @ matrix), stop_rows)
            return float(cand.ndcg(cand.fused(fusion)).mean())

        fit = train_adapter(self.queries[fit_rows], self.corpus.vectors, relevant, retrieved, held_out,
                            replace(self.options.adapter_options, seed=seed))
        return fit.matrix, fit.best_epoch

    @cached_property
    def base(self) -> tuple[Candidates, F64]:
        """The untuned pipeline's candidates and every fusion setting's per-query scores on them."""
        cand = self.candidates(self.queries)
        return cand, grid_scores(cand, self.grid)

    # -- feedback ------------------------------------------------------------------------------------
    def with_feedback(self, st: _State, feedback: Feedback) -> _State:
        """The state's pipeline with ``feedback``: the dense list searched again from the moved queries."""
        first = st.candidates.ranked(st.fusion, feedback.documents)
        moved = feedback.expand_many(st.queries, first, self.corpus.vectors)
        cand = self.candidates(moved)
        return _State(cand, st.fusion, st.queries, cand.fused(st.fusion), moved, feedback)

    # -- the learned ranker --------------------------------------------------------------------------
    @cached_property
    def lead_index(self) -> tuple[LeadIndex, list[Counter[str]]]:
        opts = self.options.ranker_options
        probe = LeadIndex(0, 1.0, {}, opts.lead_words, opts.title_field)
        tokens = tokenize_all([probe.lead(t, m) for t, m in zip(self.corpus.texts, self.corpus.metadata,
                                                                 strict=True)])
        return LeadIndex.build(tokens, opts.lead_words, opts.title_field), [Counter(t) for t in tokens]

    @cached_property
    def _doc_columns(self) -> tuple[F64, F64]:
        fields = self.options.ranker_options.metadata_fields
        return text_length(self.corpus.texts), metadata_values(self.corpus.metadata, fields)

    @cached_property
    def _query_terms(self) -> list[Counter[str]]:
        return [Counter(tokenize(t)) for t in self.texts]

    def _lead(self, query: int, doc: int) -> tuple[float, float]:
        key = (query, doc)
        if key not in self._lead_cache:
            index, counts = self.lead_index
            bm25, cover = index.scores(self._query_terms[query], [list(counts[doc].elements())])
            self._lead_cache[key] = (float(bm25[0]), float(cover[0]))
        return self._lead_cache[key]

    def rank_inputs(self, st: _State, depth: int) -> RankInputs:
        """The ranker's inputs over the state's candidates: those in either list's top ``depth``."""
        cand = st.candidates
        doc = np.where(cand.doc >= 0, cand.doc, 0)
        d_rank = np.where(cand.dense_rank < depth, cand.dense_rank, ABSENT).astype(np.int32)
        b_rank = np.where(cand.bm25_rank < depth, cand.bm25_rank, ABSENT).astype(np.int32)
        valid = (cand.doc >= 0) & ((d_rank != ABSENT) | (b_rank != ABSENT))

        def cos(vectors: F32) -> F64:
            sims = np.einsum("qd,qcd->qc", vectors.astype(np.float32), self.corpus.vectors[doc])
            return np.asarray(sims, dtype=np.float64)

        searched = st.searched if st.searched is not None else st.queries
        lead_bm25, lead_cover = np.zeros(doc.shape), np.zeros(doc.shape)
        for i, j in zip(*np.nonzero(valid), strict=True):
            lead_bm25[i, j], lead_cover[i, j] = self._lead(int(i), int(doc[i, j]))
        length, meta = self._doc_columns
        return RankInputs(valid, cos(st.queries), cos(self.queries), d_rank,
                          np.where(b_rank != ABSENT, cand.bm25_score, 0.0), b_rank, lead_bm25, lead_cover,
                          length[doc], cos(searched), meta[doc])

    def fit_ranker(self, cand: Candidates, features: F64, gains: F64, valid: B, rows: I64,
                   seed: int) -> tuple[Ranker, str]:
        """Each model family trained on ``rows`` minus a stopping slice; the better one there is returned."""
        opts = self.options.ranker_options
        stop_rows, fit_rows = self.stop_split(rows, seed)
        names = feature_names(opts.metadata_fields)
        lead = self.lead_index[0]
        stop_cand = _rows(cand, stop_rows)
        best: tuple[float, Ranker, str] | None = None
        for kind in opts.kinds:
            if kind == "lambdamart" and find_spec("lightgbm") is None and "linear" in opts.kinds:
                continue  # LightGBM is the 'rank' extra; without it the linear model is what there is
            if kind == "linear":
                model = fit_linear(features[fit_rows], gains[fit_rows], valid[fit_rows], names, opts.depth, lead, opts)
            else:
                model = fit_lambdamart(features[fit_rows], gains[fit_rows], valid[fit_rows],
                                       (features[stop_rows], gains[stop_rows], valid[stop_rows]), names, opts.depth,
                                       lead, opts, seed)
            held = float(stop_cand.ndcg(self.ranker_scores(model, features[stop_rows], valid[stop_rows])).mean())
            if best is None or held > best[0]:
                best = (held, model, kind)
        assert best is not None
        return best[1], best[2]

    @staticmethod
    def ranker_scores(model: Ranker, features: F64, valid: B) -> F64:
        return np.where(valid, model.score(features), -np.inf)

    # -- the procedure: each step chosen on the other folds and scored on each fold ----------------------
    def cross_validate(self, fold: I64, keep: Mapping[str, bool] | None = None) -> _CrossValidation:
        """Every step, chosen on the other folds and scored on each fold. Steps are kept when they gain on
        held-out folds, or as ``keep`` says (to score an already chosen procedure on other folds)."""
        opts = self.options
        base_cand, base_grid = self.base
        baseline = base_grid[0]
        cv = _CrossValidation([Stage(UNTUNED, float(baseline.mean()), 0.0, (0.0, 0.0), True)])
        dense_base = dense_ndcg(self.queries, self.corpus.vectors, self.judged, self.corpus.metric)
        bm25_only = base_cand.ndcg(base_cand.fused(Fusion("rrf", 0.0, 60.0, self.depth)))
        cv.diagnostics += [Stage("dense", float(dense_base.mean()), 0.0, (0.0, 0.0), True),
                           Stage("bm25", float(bm25_only.mean()), 0.0, (0.0, 0.0), True)]
        run = _Run(fold, keep, seen_documents(self.judged.gains, fold), cv,
                   [_State(base_cand, Fusion(), self.queries, base_cand.fused(Fusion())) for _ in range(opts.folds)],
                   baseline.copy(), dense_base)
        self._fusion_step(run)
        for wanted, step in ((opts.adapter, self._adapter_step), (opts.feedback, self._feedback_step),
                             (opts.ranker, self._ranker_step), (opts.mmr, self._mmr_step)):
            if wanted:
                step(run)
        totals: list[Stage] = []
        self._stage(totals, TOTAL, run.current, baseline, [], {TOTAL: True}, run.seen)
        cv.total = totals[0]
        return cv

    def _fusion_step(self, run: _Run) -> None:
        base_cand, base_grid = self.base
        held, chosen, fusions = np.zeros(self.n), [], []
        for f in range(self.options.folds):
            best = self.best(base_grid, run.fold != f)
            held[run.fold == f] = base_grid[best, run.fold == f]
            chosen.append(self.grid[best].describe())
            fusions.append(self.grid[best])
        if self._stage(run.cv.stages, FUSION, held, run.current, chosen, run.keep, run.seen):
            run.current = held
            run.states = [_State(base_cand, fu, self.queries, base_cand.fused(fu)) for fu in fusions]
        self.say(f"{FUSION}: {run.cv.stages[-1].gain:+.4f} nDCG@10 on held-out folds")

    def _adapter_step(self, run: _Run) -> None:
        fold = run.fold
        held, chosen, dense_held, adapted_states = np.zeros(self.n), [], np.zeros(self.n), []
        for f in range(self.options.folds):
            matrix, epoch = self.adapter(np.flatnonzero(fold != f), run.states[f].fusion, self.options.seed + 1 + f)
            run.cv.epochs.append(epoch)
            adapted = unit_rows_f32(self.queries @ matrix)
            cand = self.candidates(adapted)
            # the fusion stays the one chosen before the adapter: chosen again on the adapted training
            # queries, it would trust the adapter as much as it fits its own training documents
            fusion = run.states[f].fusion
            scores = cand.fused(fusion)
            held[fold == f] = cand.ndcg(scores)[fold == f]
            dense_held[fold == f] = dense_ndcg(adapted, self.corpus.vectors, self.judged,
                                               self.corpus.metric)[fold == f]
            chosen.append(f"epoch {epoch}")
            adapted_states.append(_State(cand, fusion, adapted, scores))
            self.say(f"adapter, fold {f + 1}/{self.options.folds}: epoch {epoch}, held-out nDCG@10 "
                     f"{held[fold == f].mean():.4f} (before {run.current[fold == f].mean():.4f})")
        mean, low, high = paired_interval(dense_held, run.dense_base)
        run.cv.diagnostics.append(Stage("dense + query adapter", float(dense_held.mean()), mean, (low, high), True))
        if self._stage(run.cv.stages, ADAPTER, held, run.current, chosen, run.keep, run.seen):
            run.current, run.states = held, adapted_states

    def _feedback_step(self, run: _Run) -> None:
        fold = run.fold
        held, chosen, fed_states = run.current.copy(), [], list(run.states)
        cache: dict[tuple[int, Fusion, Feedback], _State] = {}
        for f in range(self.options.folds):
            st = run.states[f]
            plain = st.candidates.ndcg(st.scores)
            best_fb, best_score = None, float(plain[fold != f].mean())
            for fb in feedback_grid():
                key = (id(st.candidates), st.fusion, fb)
                if key not in cache:
                    cache[key] = self.with_feedback(st, fb)
                score = float(cache[key].candidates.ndcg(cache[key].scores)[fold != f].mean())
                if score > best_score:
                    best_fb, best_score = fb, score
            if best_fb is not None:
                fed = cache[(id(st.candidates), st.fusion, best_fb)]
                held[fold == f] = fed.candidates.ndcg(fed.scores)[fold == f]
                fed_states[f] = fed
            chosen.append("off" if best_fb is None else best_fb.describe())
        if self._stage(run.cv.stages, FEEDBACK, held, run.current, chosen, run.keep, run.seen):
            run.current, run.states = held, fed_states
        self.say(f"{FEEDBACK}: {run.cv.stages[-1].gain:+.4f} nDCG@10 on held-out folds")

    def _ranker_step(self, run: _Run) -> None:
        # Every query's features come from the pipeline of its own fold (out of fold): a training query's
        # adapted score from an adapter that saw it would look more reliable than a new query's is, and
        # the ranker would learn to trust the adapter where it only remembers (stacking's cross-fitting).
        fold = run.fold
        oof = _out_of_fold(run.states, fold)
        inputs = self.rank_inputs(oof, self.options.ranker_options.depth)
        features = feature_matrix(inputs)
        gains = np.where(inputs.valid, oof.candidates.gain, 0.0)
        if run.keep is None:
            self._oof = (oof, features, gains, inputs.valid)
        held, chosen, ranked_states = run.current.copy(), [], list(run.states)
        for f in range(self.options.folds):
            model, kind = self.fit_ranker(oof.candidates, features, gains, inputs.valid,
                                          np.flatnonzero(fold != f), self.options.seed + 11 + f)
            scores = self.ranker_scores(model, features, inputs.valid)
            held[fold == f] = oof.candidates.ndcg(scores)[fold == f]
            chosen.append(kind)
            ranked_states[f] = replace(oof, scores=scores)
            self.say(f"ranker, fold {f + 1}/{self.options.folds}: {kind}, held-out nDCG@10 "
                     f"{held[fold == f].mean():.4f} (before {run.current[fold == f].mean():.4f})")
        if self._stage(run.cv.stages, RANKER, held, run.current, chosen, run.keep, run.seen):
            run.current, run.states = held, ranked_states

    def _mmr_step(self, run: _Run) -> None:
        fold = run.fold
        held, chosen = run.current.copy(), []
        mmr_cache: dict[tuple[int, float], F64] = {}  # folds often share a pipeline
        for f in range(self.options.folds):
            st = run.states[f]
            plain = st.candidates.ndcg(st.scores)  # this fold's pipeline, MMR off
            best_lam, best_score = None, float(plain[fold != f].mean())
            for lam in MMR_LAMBDAS:
                mkey = (id(st.scores), lam)
                if mkey not in mmr_cache:
                    mmr_cache[mkey] = mmr_ndcg(st.candidates, st.scores, lam, st.queries, self.corpus.vectors,
                                               self.corpus.metric)
                if mmr_cache[mkey][fold != f].mean() > best_score:
                    best_lam, best_score = lam, float(mmr_cache[mkey][fold != f].mean())
            if best_lam is not None:
                held[fold == f] = mmr_cache[(id(st.scores), best_lam)][fold == f]
            chosen.append("off" if best_lam is None else f"lambda {best_lam:g}")
        if self._stage(run.cv.stages, MMR, held, run.current, chosen, run.keep, run.seen):
            run.current = held
        self.say(f"{MMR}: {run.cv.stages[-1].gain:+.4f} nDCG@10 on held-out folds")

    def _in_fold_ranker_data(self, st: _State) -> tuple[_State, F64, F64, B]:
        inputs = self.rank_inputs(st, self.options.ranker_options.depth)
        return st, feature_matrix(inputs), np.where(inputs.valid, st.candidates.gain, 0.0), inputs.valid

    def _stage(self, stages: list[Stage], name: str, held: F64, before: F64, chosen: list[str],
               keep: Mapping[str, bool] | None, seen: B) -> bool:
        mean, low, high = paired_interval(held, before, seed=self.options.seed)
        kept = mean > 0 if keep is None else keep.get(name, False)
        stage = Stage(name, float(held.mean()), mean, (low, high), kept, chosen)
        for part, mask in (("seen", seen), ("unseen", ~seen)):
            if mask.any():
                m, lo, hi = paired_interval(held[mask], before[mask], seed=self.options.seed)
                setattr(stage, part, Split(int(mask.sum()), float(held[mask].mean()), m, (lo, hi)))
        if stage.seen and stage.unseen and stage.seen.ci95[0] > 0 and stage.unseen.ci95[0] <= 0:
            stage.warning = (f"{name} helps queries about documents judged in training ({stage.seen.gain:+.4f}) "
                             f"but not clearly the others ({stage.unseen.gain:+.4f} [{stage.unseen.ci95[0]:+.4f}, "
                             f"{stage.unseen.ci95[1]:+.4f}])")
        stages.append(stage)
        return kept

    def final(self, stages: list[Stage]) -> tuple[RetrievalProfile, float, int | None]:
        """Choose every kept step on all judged queries; returns the profile, its fit and the adapter's epoch."""
        base_cand, base_grid = self.base
        kept = {s.name for s in stages if s.kept}
        everyone = np.ones(self.n, dtype=bool)
        fusion = self.grid[self.best(base_grid, everyone)] if FUSION in kept else Fusion()
        st = _State(base_cand, fusion, self.queries, base_cand.fused(fusion))
        adapter, epoch, feedback, ranker = None, None, None, None
        if ADAPTER in kept:
            self.say("training the final query adapter on all judged queries")
            adapter, epoch = self.adapter(np.arange(self.n), fusion, self.options.seed)
            queries = unit_rows_f32(self.queries @ adapter)
            cand = self.candidates(queries)
            st = _State(cand, fusion, queries, cand.fused(fusion))
        if FEEDBACK in kept:
            plain, best = st, float(st.candidates.ndcg(st.scores).mean())
            for fb in feedback_grid():
                fed = self.with_feedback(plain, fb)
                score = float(fed.candidates.ndcg(fed.scores).mean())
                if score > best:
                    best, feedback, st = score, fb, fed
        if RANKER in kept:
            self.say("training the final ranker on all judged queries (their out-of-fold features)")
            oof, oof_features, oof_gains, oof_valid = self._oof if self._oof is not None else \
                self._in_fold_ranker_data(st)
            ranker, _ = self.fit_ranker(oof.candidates, oof_features, oof_gains, oof_valid, np.arange(self.n),
                                        self.options.seed)
            inputs = self.rank_inputs(st, self.options.ranker_options.depth)
            st = replace(st, scores=self.ranker_scores(ranker, feature_matrix(inputs), inputs.valid))
        scores = st.candidates.ndcg(st.scores)
        mmr = None
        if MMR in kept:
            best = float(scores.mean())
            for lam in MMR_LAMBDAS:
                s = mmr_ndcg(st.candidates, st.scores, lam, st.queries, self.corpus.vectors, self.corpus.metric)
                if s.mean() > best:
                    mmr, best, scores = lam, float(s.mean()), s
        profile = RetrievalProfile("", self.corpus.fingerprint, fusion, adapter, mmr, feedback=feedback, ranker=ranker)
        return profile, float(scores.mean()), epoch


def judge(corpus: Corpus, queries: Mapping[str, str],
          qrels: Mapping[str, Mapping[str, int]]) -> tuple[Judged, list[str]]:
    """Judged queries with a text and at least one relevant document in the collection, as rows."""
    row = {d: i for i, d in enumerate(corpus.ids)}
    ids, gains, texts = [], [], []
    for qid, rels in qrels.items():
        text = queries.get(qid, "").strip()
        g = {row[d]: float(r) for d, r in rels.items() if r > 0 and d in row}
        if text and g:
            ids.append(qid)
            gains.append(g)
            texts.append(text)
    return Judged(ids, gains), texts


def tune_collection(
    searcher: RetrievalSearcher, collection: str, queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]], dataset: str = "", split: str = "",
    options: TuneOptions | None = None, say: Say | None = None,
) -> tuple[RetrievalProfile, TuneReport]:
    """Tune a profile for ``collection`` from judged queries (``qrels[query id][document id] = grade``)."""
    started = time.perf_counter()
    say = say or (lambda _: None)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    searcher.dense.check(collection)
    corpus = read_corpus(searcher, collection)
    judged, texts = judge(corpus, queries, qrels)
    opts = (options or TuneOptions()).check(len(judged.ids))
    seconds["read_collection"] = time.perf_counter() - t
    say(f"{len(judged.ids)} judged queries over {len(corpus.ids)} documents; embedding the queries")
    t = time.perf_counter()
    vectors = np.stack([searcher.embedder.embed_query(q) for q in texts]).astype(np.float32)
    if corpus.metric == "cosine":
        vectors = unit_rows_f32(vectors)
    seconds["query_embedding"] = time.perf_counter() - t
    t = time.perf_counter()
    depth = min(opts.max_depth, len(corpus.ids))
    row = {d: i for i, d in enumerate(corpus.ids)}
    # the keyword lists search itself uses: the store's native index, or the BM25 sidecar
    bm25 = [[(row[h.id], h.score) for h in searcher.store.keyword_search(collection, q, depth) if h.id in row]
            for q in texts]
    seconds["bm25"] = time.perf_counter() - t
    t = time.perf_counter()
    tuner = _Tuner(corpus, judged, vectors, bm25, opts, say, texts)
    cv = tuner.cross_validate(assign_folds(len(judged.ids), opts.folds, opts.seed, tuner.groups))
    seconds["cross_validation"] = time.perf_counter() - t
    report = TuneReport(dataset, split, collection, searcher.embedder.fingerprint, len(corpus.ids), len(judged.ids),
                        opts.folds, opts.seed, "documents" if opts.group_by_documents else "queries", cv.stages,
                        cv.diagnostics, total=cv.total)
    if opts.check_new_documents and not opts.group_by_documents:
        t = time.perf_counter()
        say("scoring the chosen steps again on folds that keep each relevant document to one fold")
        again = tuner.cross_validate(assign_folds(len(judged.ids), opts.folds, opts.seed,
                                                  document_groups(judged.gains)),
                                     keep={stage.name: stage.kept for stage in cv.stages})
        report.new_documents, report.new_documents_total = again.stages, again.total
        for stage, check in zip(cv.stages[1:], again.stages[1:], strict=True):
            if stage.kept and check.gain < 0:  # a step that helps seen documents only is a bet, not a gain
                stage.kept, stage.note = False, "loses on held-out documents"
                if report.total is not None:
                    report.total.note = f"with {stage.name}, which the document check dropped"
            check.kept = stage.kept
        seconds["new_documents_check"] = time.perf_counter() - t
    report.warnings = [s.warning for s in report.stages if s.kept and s.warning]
    t = time.perf_counter()
    profile, report.training_fit, final_epoch = tuner.final(cv.stages)
    report.adapter_epochs = cv.epochs + ([] if final_epoch is None else [final_epoch])
    seconds["final_fit"] = time.perf_counter() - t
    profile = replace(profile, embedder=searcher.embedder.fingerprint,
                      trained_on=TrainedOn(dataset, split, tuple(sorted(judged.ids))))
    report.profile = profile.describe()
    seconds["total"] = time.perf_counter() - started
    report.seconds = seconds
    return replace(profile, report=report.to_dict()), report


def tune_beir(
    searcher: RetrievalSearcher, directory: str | Path, split: str = "train", collection: str | None = None,
    options: TuneOptions | None = None, say: Say | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[str, RetrievalProfile, TuneReport]:
    """Embed a BEIR data set's corpus (unless the collection already holds it) and tune on one split's
    judgements; returns the collection name, the profile and the report."""
    from vectorseam.retrieval.evaluation import beir_collection

    root = Path(directory)
    data = load_beir(root, split)
    name = collection or beir_collection(root)
    t = time.perf_counter()
    embedded = prepare_collection(searcher.store, searcher.embedder, name, data, progress)
    took = time.perf_counter() - t
    profile, report = tune_collection(searcher, name, data.queries, data.qrels, root.name, split, options, say)
    report.seconds = {("corpus_embedding" if embedded else "corpus_reused"): took, **report.seconds}
    report.seconds["total"] += took
    return name, replace(profile, report=report.to_dict()), report



def finetune_collection(
    searcher: RetrievalSearcher, collection: str, queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]], models: Callable[[str], Path], base_model: str, dataset: str = "",
    split: str = "",
    options: FinetuneOptions | None = None, say: Say | None = None,
) -> FinetuneReport:
    """Fine-tune the local model on judged queries of ``collection`` (see :mod:`~vectorseam.retrieval.finetune`):
    hard negatives and the early-stopping pools come from the collection's current hybrid ranking; the
    model is written to ``models(name)`` when it beats the base model on the held-out queries."""
    say = say or (lambda _: None)
    opts = (options or FinetuneOptions()).check()
    searcher.dense.check(collection)
    corpus = read_corpus(searcher, collection)
    judged, texts = judge(corpus, queries, qrels)
    if len(judged.ids) < 10:
        raise ValidationError(f"{len(judged.ids)} judged queries are too few to fine-tune on; judge at least 10")
    say(f"{len(judged.ids)} judged queries over {len(corpus.ids)} documents; ranking them with the base model")
    vectors = unit_rows_f32(np.stack([searcher.embedder.embed_query(q) for q in texts]).astype(np.float32))
    row = {d: i for i, d in enumerate(corpus.ids)}
    depth = min(200, len(corpus.ids))
    bm25 = [[(row[h.id], h.score) for h in searcher.store.keyword_search(collection, q, depth) if h.id in row]
            for q in texts]
    cand = build_candidates(dense_top(vectors, corpus.vectors, depth, corpus.metric), bm25, judged)
    ranked = cand.ranked(Fusion(), 30)
    top, _ = dense_top(vectors, corpus.vectors, min(30, len(corpus.ids)), corpus.metric)
    pools = [sorted(set(top[i].tolist()) | {d for d, _ in bm25[i][:30]}) for i in range(len(texts))]
    examples, held, _ = examples_from_ranking(texts, corpus.texts, judged.gains, ranked, pools,
                                              document_groups(judged.gains), seed=opts.seed)
    name = model_name(collection, split, judged.ids)
    return finetune(base_model, examples, held, models(name), name, opts, say,
                    {"collection": collection, "dataset": dataset, "split": split, "queries": len(judged.ids),
                     "base_fingerprint": searcher.embedder.fingerprint})
