"""``vectorseam tune``: learn a retrieval profile for a collection from judged queries, by k-fold
cross-validation over those queries only.

What is tuned, in this order, each step kept only if it raised nDCG@10 on held-out folds:

1. **fusion**: RRF (constant, weights) or min-max / z-score score fusion (weights), and the candidate
   depth of each list (:data:`~vectorseam.retrieval.tune_search.DEPTHS`);
2. **query adapter**: a d x d matrix applied to query embeddings (:mod:`~vectorseam.retrieval.query_adapter`),
   trained on the fold's training queries with hard negatives from the current hybrid ranking and
   early-stopped on a slice of them. The fusion is not chosen again afterwards: on the adapted
   training queries it would trust the adapter as much as the adapter fits its own training documents;
3. **MMR**: off, or a lambda re-ranking the hybrid top 60.

For each fold the settings are chosen on the other folds and scored on it, so every judged query
gets one held-out score per step; a step's gain is the mean paired difference with a 95% t interval.

Folds by query answer "how much better for more queries like these?". Judged queries often share
relevant documents (two thirds of SciFact's train queries do), and a query adapter can learn where
those documents are, which helps new queries about them but not queries about other documents. So
the chosen steps are scored again on folds that keep queries sharing a relevant document together
(``new_documents`` in the report), and a step that loses there is dropped too. The profile saved is
then chosen the same way on all judged queries.

What is not tuned, and why: BM25's k1 and b and title weighting need the keyword index to score with
other parameters or over fields, and the BM25 sidecar (or a store's native keyword index) scores with
Lucene's defaults over the stored text. Measured on SciFact train (whole split, bm25s, same tokens):
k1 in 0.9-2.0 x b in 0.5-1.0 moved BM25 nDCG@10 between 0.690 and 0.697 (defaults 0.696), and adding
a title index at weight 0.25 gave 0.700 (0.5: 0.688): within noise, so not worth a second index.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.retrieval.evaluation import load_beir, prepare_collection
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.retrieval.query_adapter import AdapterOptions, train_adapter
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
from vectorseam.types import Metric

Say = Callable[[str], None]
F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TuneOptions:
    folds: int = 5
    seed: int = 0
    adapter: bool = True
    mmr: bool = True
    max_depth: int = 200  # the deepest candidate list searched
    # Folds by query (the default) estimate the gain for new queries like the judged ones, which may ask
    # about the same documents. Grouping queries that share a relevant document into one fold estimates it
    # for queries about documents no training query was judged on; a query adapter mostly helps the former.
    group_by_documents: bool = False
    check_new_documents: bool = True  # with query folds, also score the chosen steps on document-grouped folds
    early_stop_fraction: float = 0.2  # of each fold's training queries, held out to stop the adapter
    hard_negative_depth: int = 50  # hard negatives come from this top of the current hybrid ranking
    adapter_options: AdapterOptions = field(default_factory=AdapterOptions)

    def check(self, judged: int) -> TuneOptions:
        if self.folds < 2:
            raise ValidationError(f"cross-validation needs at least 2 folds, got {self.folds}")
        if judged < 2 * self.folds:
            raise ValidationError(f"{judged} judged queries are too few for {self.folds}-fold cross-validation; "
                                  f"judge at least {2 * self.folds}")
        if not 0 < self.early_stop_fraction < 1 or self.max_depth <= 0:
            raise ValidationError("early_stop_fraction must be in (0, 1) and max_depth positive")
        self.adapter_options.check()
        return self


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

    def line(self) -> str:
        verdict = ("kept" if self.kept else "dropped") + (f" ({self.note})" if self.note else "")
        return (f"| {self.name} | {self.ndcg:.4f} | {self.gain:+.4f} | [{self.ci95[0]:+.4f}, {self.ci95[1]:+.4f}] "
                f"| {verdict} |")


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        head = ["| step | nDCG@10 | gain | 95% CI (paired) | |", "|---|---:|---:|---:|---|"]
        lines = [
            f"Tuning on {self.dataset} ({self.split} judgements, {self.queries} queries, {self.documents} documents; "
            f"{self.embedder}), {self.folds}-fold cross-validation by {self.folds_by} (seed {self.seed}): "
            "nDCG@10 on held-out folds",
            "",
            *head,
            *(s.line() for s in self.stages),
            "",
        ]
        if self.new_documents:
            lines += [
                "the same steps on folds that keep each relevant document to one fold (queries about documents "
                "no training query was judged on):",
                "",
                *head,
                *(s.line() for s in self.new_documents),
                "",
            ]
        lines += [
            "single retrievers (held-out folds where something is trained):",
            "",
            "| retriever | nDCG@10 | gain | 95% CI (paired) | |",
            "|---|---:|---:|---:|---|",
            *(s.line().replace("| kept |", "| |").replace("| dropped |", "| |") for s in self.diagnostics),
            "",
            f"profile: {self.profile}",
            f"nDCG@10 of the profile on the queries it was chosen on (optimistic): {self.training_fit:.4f}",
        ]
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
    """A collection read for tuning: ids sorted (row order = tie order), their vectors, the metric."""

    ids: list[str]
    vectors: F32
    metric: Metric

    @property
    def fingerprint(self) -> str:
        return corpus_fingerprint(self.ids)


def read_corpus(searcher: RetrievalSearcher, collection: str) -> Corpus:
    info = searcher.store.collection_info(collection)
    pairs: list[tuple[str, npt.NDArray[np.float32]]] = []
    for batch in searcher.store.scan(collection, batch_size=1000, include_vectors=True):
        for r in batch:
            if r.vector is None:
                raise ValidationError(f"the {searcher.store.capabilities.name} store returned records without "
                                      "vectors from scan; tuning needs the document vectors")
            pairs.append((r.id, np.asarray(r.vector, dtype=np.float32)))
    if not pairs:
        raise ValidationError(f"collection {collection!r} is empty; nothing to tune")
    pairs.sort(key=lambda p: p[0])
    return Corpus([i for i, _ in pairs], np.stack([v for _, v in pairs]), info.metric)


UNTUNED = "untuned hybrid (RRF k=60, equal weights, 100 candidates)"
FUSION = "+ tuned fusion"
ADAPTER = "+ query adapter"
MMR = "+ MMR"


@dataclass
class _CrossValidation:
    stages: list[Stage]
    diagnostics: list[Stage] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)  # the adapter's early-stopped epoch per fold


@dataclass
class _State:
    """What a fold's pipeline currently is: its candidate rows, its fusion, its query vectors."""

    candidates: Candidates
    fusion: Fusion
    queries: F32


class _Tuner:
    def __init__(self, corpus: Corpus, judged: Judged, queries: F32, bm25: list[list[tuple[int, float]]],
                 options: TuneOptions, say: Say) -> None:
        self.corpus, self.judged, self.queries, self.bm25 = corpus, judged, queries, bm25
        self.options, self.say = options, say
        self.grid = fusion_grid(min(options.max_depth, len(corpus.ids)))
        self.depth = max(f.depth for f in self.grid)
        self.n = len(judged.ids)
        self.groups = document_groups(judged.gains) if options.group_by_documents else None

    def candidates(self, queries: F32, rows: npt.NDArray[np.int64] | None = None) -> Candidates:
        """Candidate rows of the judged queries ``rows`` (all by default); ``queries``: their vectors."""
        idx = np.arange(self.n) if rows is None else rows
        sub = Judged([self.judged.ids[i] for i in idx], [self.judged.gains[i] for i in idx])
        return build_candidates(dense_top(queries, self.corpus.vectors, self.depth, self.corpus.metric),
                                [self.bm25[i] for i in idx], sub)

    def best(self, scores: F64, rows: npt.NDArray[np.bool_]) -> int:
        """The setting with the best mean over ``rows`` (the first such: the default wins ties)."""
        return int(np.argmax(scores[:, rows].mean(axis=1)))

    def adapter(self, rows: npt.NDArray[np.int64], fusion: Fusion, seed: int) -> tuple[F32, int]:
        """Train on ``rows`` minus an early-stopping slice; returns the matrix and its epoch."""
        # the stopping slice is split off like a fold (by document groups when the folds are), so the
        # epoch is chosen on the same kind of generalisation the folds measure
        parts = assign_folds(len(rows), max(2, round(1 / self.options.early_stop_fraction)), seed,
                             None if self.groups is None else self.groups[rows])
        stop_rows, fit_rows = rows[parts == 0], rows[parts != 0]
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

    def cross_validate(self, fold: I64, keep: Mapping[str, bool] | None = None) -> _CrossValidation:
        """Every step, chosen on the other folds and scored on each fold. Steps are kept when they gain on
        held-out folds, or as ``keep`` says (to score an already chosen procedure on other folds)."""
        opts, n = self.options, self.n
        base_cand, base_grid = self.base
        baseline = base_grid[0]
        cv = _CrossValidation([Stage(UNTUNED, float(baseline.mean()), 0.0, (0.0, 0.0), True)])
        dense_base = dense_ndcg(self.queries, self.corpus.vectors, self.judged, self.corpus.metric)
        bm25_only = base_cand.ndcg(base_cand.fused(Fusion("rrf", 0.0, 60.0, self.depth)))
        cv.diagnostics += [Stage("dense", float(dense_base.mean()), 0.0, (0.0, 0.0), True),
                           Stage("bm25", float(bm25_only.mean()), 0.0, (0.0, 0.0), True)]
        states = [_State(base_cand, Fusion(), self.queries) for _ in range(opts.folds)]
        current = baseline.copy()

        held, chosen, fusions = np.zeros(n), [], []
        for f in range(opts.folds):
            best = self.best(base_grid, fold != f)
            held[fold == f] = base_grid[best, fold == f]
            chosen.append(self.grid[best].describe())
            fusions.append(self.grid[best])
        fusion_kept = self._stage(cv.stages, FUSION, held, current, chosen, keep)
        if fusion_kept:
            current = held
            for f in range(opts.folds):
                states[f].fusion = fusions[f]
        self.say(f"{FUSION}: {cv.stages[-1].gain:+.4f} nDCG@10 on held-out folds")

        if opts.adapter:
            held, chosen, dense_held, adapted_states = np.zeros(n), [], np.zeros(n), []
            for f in range(opts.folds):
                matrix, epoch = self.adapter(np.flatnonzero(fold != f), states[f].fusion, opts.seed + 1 + f)
                cv.epochs.append(epoch)
                adapted = unit_rows_f32(self.queries @ matrix)
                cand = self.candidates(adapted)
                # the fusion stays the one chosen before the adapter: chosen again on the adapted training
                # queries, it would trust the adapter as much as it fits its own training documents
                fusion = states[f].fusion
                held[fold == f] = cand.ndcg(cand.fused(fusion))[fold == f]
                dense_held[fold == f] = dense_ndcg(adapted, self.corpus.vectors, self.judged,
                                                   self.corpus.metric)[fold == f]
                chosen.append(f"epoch {epoch}")
                adapted_states.append(_State(cand, fusion, adapted))
                self.say(f"adapter, fold {f + 1}/{opts.folds}: epoch {epoch}, held-out nDCG@10 "
                         f"{held[fold == f].mean():.4f} (before {current[fold == f].mean():.4f})")
            mean, low, high = paired_interval(dense_held, dense_base)
            cv.diagnostics.append(Stage("dense + query adapter", float(dense_held.mean()), mean, (low, high), True))
            if self._stage(cv.stages, ADAPTER, held, current, chosen, keep):
                current, states = held, adapted_states

        if opts.mmr:
            held, chosen = current.copy(), []
            cache: dict[tuple[int, Fusion, float], F64] = {}  # folds often share candidates and fusion
            for f in range(opts.folds):
                st = states[f]
                plain = st.candidates.ndcg(st.candidates.fused(st.fusion))  # this fold's pipeline, MMR off
                best_lam, best_score = None, float(plain[fold != f].mean())
                for lam in MMR_LAMBDAS:
                    key = (id(st.candidates), st.fusion, lam)
                    if key not in cache:
                        cache[key] = mmr_ndcg(st.candidates, st.fusion, lam, st.queries, self.corpus.vectors,
                                              self.corpus.metric)
                    if cache[key][fold != f].mean() > best_score:
                        best_lam, best_score = lam, float(cache[key][fold != f].mean())
                if best_lam is not None:
                    held[fold == f] = cache[(id(st.candidates), st.fusion, best_lam)][fold == f]
                chosen.append("off" if best_lam is None else f"lambda {best_lam:g}")
            self._stage(cv.stages, MMR, held, current, chosen, keep)
            self.say(f"{MMR}: {cv.stages[-1].gain:+.4f} nDCG@10 on held-out folds")
        return cv

    def _stage(self, stages: list[Stage], name: str, held: F64, before: F64, chosen: list[str],
               keep: Mapping[str, bool] | None) -> bool:
        mean, low, high = paired_interval(held, before)
        kept = mean > 0 if keep is None else keep.get(name, False)
        stages.append(Stage(name, float(held.mean()), mean, (low, high), kept, chosen))
        return kept

    def final(self, stages: list[Stage]) -> tuple[RetrievalProfile, float, int | None]:
        """Choose every kept step on all judged queries; returns the profile, its fit and the adapter's epoch."""
        base_cand, base_grid = self.base
        kept = {s.name for s in stages if s.kept}
        everyone = np.ones(self.n, dtype=bool)
        fusion = self.grid[self.best(base_grid, everyone)] if FUSION in kept else Fusion()
        cand, queries, adapter, epoch = base_cand, self.queries, None, None
        if ADAPTER in kept:
            self.say("training the final query adapter on all judged queries")
            adapter, epoch = self.adapter(np.arange(self.n), fusion, self.options.seed)
            queries = unit_rows_f32(self.queries @ adapter)
            cand = self.candidates(queries)
        scores = cand.ndcg(cand.fused(fusion))
        mmr = None
        if MMR in kept:
            best = float(scores.mean())
            for lam in MMR_LAMBDAS:
                s = mmr_ndcg(cand, fusion, lam, queries, self.corpus.vectors, self.corpus.metric)
                if s.mean() > best:
                    mmr, best, scores = lam, float(s.mean()), s
        return RetrievalProfile("", self.corpus.fingerprint, fusion, adapter, mmr), float(scores.mean()), epoch


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
    bm25 = [[(row[h.id], h.score) for h in searcher.bm25_hits(collection, q, depth, None) if h.id in row]
            for q in texts]
    seconds["bm25"] = time.perf_counter() - t
    t = time.perf_counter()
    tuner = _Tuner(corpus, judged, vectors, bm25, opts, say)
    cv = tuner.cross_validate(assign_folds(len(judged.ids), opts.folds, opts.seed, tuner.groups))
    seconds["cross_validation"] = time.perf_counter() - t
    report = TuneReport(dataset, split, collection, searcher.embedder.fingerprint, len(corpus.ids), len(judged.ids),
                        opts.folds, opts.seed, "documents" if opts.group_by_documents else "queries", cv.stages,
                        cv.diagnostics)
    if opts.check_new_documents and not opts.group_by_documents:
        t = time.perf_counter()
        say("scoring the chosen steps again on folds that keep each relevant document to one fold")
        again = tuner.cross_validate(assign_folds(len(judged.ids), opts.folds, opts.seed,
                                                  document_groups(judged.gains)),
                                     keep={stage.name: stage.kept for stage in cv.stages})
        report.new_documents = again.stages
        for stage, check in zip(cv.stages[1:], again.stages[1:], strict=True):
            if stage.kept and check.gain < 0:  # a step that helps seen documents only is a bet, not a gain
                stage.kept, stage.note = False, "loses on held-out documents"
        seconds["new_documents_check"] = time.perf_counter() - t
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

