"""A learned ranker: the scores the platform computes per (query, candidate) as features of one model.

Fusion (:mod:`~vectorseam.retrieval.tune_profile`) combines two scores with one weight. A query's
candidates carry more evidence than that: the dense cosine with the query as typed and through the
tuned adapter, BM25 over the whole text and over its *lead* (the title, or its first words), each
list's rank, how far a score stands from the best of its list, whether a document is in both lists,
the reciprocal-rank and z-score fusions, its length, its cosine with the query's pseudo-relevance
feedback vector, and numbers the user names from its metadata. :class:`Ranker` learns how to weigh
them from judged queries and re-orders the union of the dense and BM25 top ``depth`` after candidate
generation, in every search path (the tuner scores exactly the features search computes: both call
:func:`feature_matrix`).

Two model families are measured against each other on held-out queries (the tuner keeps the better
per fold, see :mod:`~vectorseam.retrieval.tune`):

* ``linear``: standardised features, weights fitted by a listwise softmax loss (the judged gains as
  the target distribution over a query's candidates) with an L2 penalty, by L-BFGS. Cheap to apply
  and hard to overfit with a few hundred queries.
* ``lambdamart``: LightGBM's LambdaMART (``lightgbm``, the ``rank`` extra), small trees, early-stopped
  on held-out queries. It can use interactions (a BM25 match matters more when the dense score is
  low) at the price of variance.

No feature names a document, so what is learned transfers to documents nobody judged; the tuner
checks that on folds that hold out whole documents.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ConfigError
from vectorseam.keywords import idf, term_weight, tokenize
from vectorseam.tune_options import LEAD_WORDS, RankerKind, RankerOptions

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
ABSENT = np.iinfo(np.int32).max  # the rank of a candidate a list does not hold (as in tune_profile)
MAX_LEAD_TERMS = 50_000  # the lead vocabulary kept with the ranker; rarer terms count as seen once

# The features, in the model's column order; metadata features follow under their own names.
BASE_FEATURES: tuple[str, ...] = (
    "dense", "dense_raw", "dense_gap", "dense_z", "dense_rank", "in_dense",
    "bm25", "bm25_rel", "bm25_z", "bm25_rank", "in_bm25",
    "rrf", "zfused", "lead_bm25", "lead_cover", "length", "prf",
)


@dataclass(frozen=True)
class LeadIndex:
    """BM25 statistics of the documents' leads (a title field, or the first words of the text): the
    number of documents, the mean lead length and each lead term's document frequency. Kept with the
    ranker so a search scores a candidate's lead without a second keyword index."""

    documents: int
    avgdl: float
    df: dict[str, int]
    words: int = LEAD_WORDS
    field: str | None = None  # a metadata field holding the title; None: the text's first words

    def lead(self, text: str, metadata: Mapping[str, Any] | None = None) -> str:
        if self.field is not None and metadata is not None:
            value = metadata.get(self.field)
            if isinstance(value, str) and value.strip():
                return value
        return " ".join(text.split()[: self.words])

    @classmethod
    def build(cls, leads: Sequence[list[str]], words: int = LEAD_WORDS, field: str | None = None) -> LeadIndex:
        counts: Counter[str] = Counter()
        for tokens in leads:
            counts.update(set(tokens))
        kept = dict(counts.most_common(MAX_LEAD_TERMS))
        avgdl = float(np.mean([len(t) for t in leads])) if leads else 1.0
        return cls(len(leads), avgdl or 1.0, kept, words, field)

    def scores(self, query: Mapping[str, int], leads: Sequence[Sequence[str]]) -> tuple[F64, F64]:
        """BM25 of each lead for the query's terms, and the idf-weighted share of the query's terms it holds."""
        weights = {t: float(idf(self.documents, self.df.get(t, 1))) for t in query}
        total = sum(weights[t] * n for t, n in query.items()) or 1.0
        bm25, cover = np.zeros(len(leads)), np.zeros(len(leads))
        for j, tokens in enumerate(leads):
            tf = Counter(tokens)
            dl = len(tokens)
            for t, n in query.items():
                if tf.get(t):
                    bm25[j] += n * weights[t] * float(term_weight(tf[t], dl, self.avgdl))
                    cover[j] += n * weights[t]
        return bm25, cover / total

    def to_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "avgdl": self.avgdl, "df": self.df, "words": self.words,
                "field": self.field}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LeadIndex:
        return cls(int(d["documents"]), float(d["avgdl"]), {str(k): int(v) for k, v in d["df"].items()},
                   int(d.get("words", LEAD_WORDS)), d.get("field"))


@dataclass
class RankInputs:
    """One row per query, one column per candidate (the union of its dense and BM25 top lists); padding
    columns have ``valid`` False. ``dense`` is the cosine with the (adapted) query for every candidate,
    ``dense_rank``/``bm25_rank`` its place in each list from 0 (``ABSENT`` if not in it)."""

    valid: npt.NDArray[np.bool_]
    dense: F64
    dense_raw: F64
    dense_rank: I32
    bm25: F64
    bm25_rank: I32
    lead_bm25: F64
    lead_cover: F64
    length: F64
    prf: F64
    metadata: F64  # (queries, candidates, fields)


def _row_stats(values: F64, present: npt.NDArray[np.bool_]) -> tuple[F64, F64, F64]:
    count = np.maximum(present.sum(axis=1, keepdims=True), 1)
    mean = np.where(present, values, 0.0).sum(axis=1, keepdims=True) / count
    var = np.where(present, (values - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count
    top = np.where(present, values, -np.inf).max(axis=1, keepdims=True)
    return mean, np.sqrt(var) + 1e-9, np.where(np.isfinite(top), top, 0.0)


def feature_matrix(x: RankInputs, rrf_k: float = 60.0) -> F64:
    """The features of every candidate: shape (queries, candidates, features), in :data:`BASE_FEATURES`
    order, then the metadata fields. Per-query normalisations use only that query's candidates, so a
    score's scale (BM25 grows with the query's length) does not leak into the model."""
    valid = x.valid
    in_dense, in_bm25 = valid & (x.dense_rank != ABSENT), valid & (x.bm25_rank != ABSENT)
    d_mean, d_std, d_top = _row_stats(x.dense, valid)
    b_mean, b_std, b_top = _row_stats(x.bm25, in_bm25)
    dense_z = (x.dense - d_mean) / d_std
    bm25_z = (x.bm25 - b_mean) / b_std
    width = max(valid.shape[1], 1)
    d_rank = np.log1p(np.where(in_dense, x.dense_rank, width).astype(np.float64))
    b_rank = np.log1p(np.where(in_bm25, x.bm25_rank, width).astype(np.float64))
    rrf = (np.where(in_dense, 1.0 / (rrf_k + x.dense_rank + 1.0), 0.0)
           + np.where(in_bm25, 1.0 / (rrf_k + x.bm25_rank + 1.0), 0.0))
    floor = np.where(in_bm25, bm25_z, np.inf).min(axis=1, keepdims=True)
    zb = np.where(in_bm25, bm25_z, np.where(np.isfinite(floor), floor, 0.0))
    columns = [
        x.dense, x.dense_raw, x.dense - d_top, dense_z, d_rank, in_dense.astype(np.float64),
        np.where(in_bm25, x.bm25, 0.0), np.where(in_bm25, x.bm25 / np.maximum(b_top, 1e-9), 0.0), zb, b_rank,
        in_bm25.astype(np.float64), rrf, 0.5 * dense_z + 0.5 * zb, x.lead_bm25, x.lead_cover, x.length, x.prf,
    ]
    out = np.stack(columns, axis=2)
    if x.metadata.shape[2]:
        out = np.concatenate([out, x.metadata], axis=2)
    return np.where(valid[:, :, None], out, 0.0)


def metadata_values(metadata: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> F64:
    """Named numeric metadata of each candidate (booleans as 0/1; missing or not a number: 0)."""
    out = np.zeros((len(metadata), len(fields)))
    for i, meta in enumerate(metadata):
        for j, name in enumerate(fields):
            value = meta.get(name)
            if isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(float(value))):
                out[i, j] = float(value)
    return out


def text_length(texts: Sequence[str]) -> F64:
    return np.log1p(np.array([len(t.split()) for t in texts], dtype=np.float64))


@dataclass(frozen=True)
class Ranker:
    """A trained ranker: what it scores (``features``), how (``kind`` with its parameters), over how many
    candidates per list (``depth``), and the lead statistics its lead features need."""

    kind: RankerKind
    features: tuple[str, ...]
    depth: int
    lead: LeadIndex
    mean: tuple[float, ...] = ()  # linear: the standardisation
    scale: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    booster: str = ""  # lambdamart: LightGBM's model text
    metadata_fields: tuple[str, ...] = ()
    _model: list[Any] = field(default_factory=list, compare=False, repr=False)  # the loaded booster, once

    def score(self, features: F64) -> F64:
        """Scores of a (candidates, features) or (queries, candidates, features) array; higher is better."""
        flat = features.reshape(-1, features.shape[-1])
        if flat.shape[1] != len(self.features):
            raise ConfigError(f"the ranker was trained on {len(self.features)} features, got {flat.shape[1]}")
        if self.kind == "linear":
            z = (flat - np.asarray(self.mean)) / np.asarray(self.scale)
            out = z @ np.asarray(self.weights)
        else:
            out = np.asarray(self.booster_model().predict(flat), dtype=np.float64)
        shaped: F64 = np.asarray(out, dtype=np.float64).reshape(features.shape[:-1])
        return shaped

    def booster_model(self) -> Any:
        if not self._model:
            lightgbm = import_lightgbm()
            self._model.append(lightgbm.Booster(model_str=self.booster))
        return self._model[0]

    def describe(self) -> str:
        what = "linear" if self.kind == "linear" else f"LambdaMART ({self.booster.count('Tree=')} trees)"
        return f"learned ranker: {what} over {len(self.features)} features, top {self.depth} of each list"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "features": list(self.features), "depth": self.depth, "lead": self.lead.to_dict(),
                "mean": list(self.mean), "scale": list(self.scale), "weights": list(self.weights),
                "booster": self.booster, "metadata_fields": list(self.metadata_fields)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ranker:
        kind = d["kind"]
        if kind not in ("linear", "lambdamart"):
            raise ValueError(f"unknown ranker kind {kind!r}")
        ranker = cls(kind, tuple(d["features"]), int(d["depth"]), LeadIndex.from_dict(d["lead"]),
                     tuple(map(float, d["mean"])), tuple(map(float, d["scale"])), tuple(map(float, d["weights"])),
                     str(d.get("booster", "")), tuple(d.get("metadata_fields", ())))
        if kind == "linear" and not (len(ranker.mean) == len(ranker.scale) == len(ranker.weights)
                                     == len(ranker.features)):
            raise ValueError("the linear ranker's weights do not match its features")
        return ranker

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def import_lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise ConfigError("the LambdaMART ranker needs LightGBM: pip install 'vectorseam[rank]'") from None
    return lightgbm


def feature_names(metadata_fields: Sequence[str]) -> tuple[str, ...]:
    return (*BASE_FEATURES, *(f"meta:{f}" for f in metadata_fields))


# -- training ---------------------------------------------------------------------------------------

def _listwise(features: F64, gains: F64, valid: npt.NDArray[np.bool_], l2: float) -> F64:
    """Weights minimising the softmax cross-entropy of each query's candidate scores against its gains
    (normalised to a distribution), plus ``l2 * |w|^2`` per query; queries without a gain count 0."""
    from scipy.optimize import minimize

    target = np.where(valid, gains, 0.0)
    mass = target.sum(axis=1, keepdims=True)
    rows = mass[:, 0] > 0
    feats, target, mask = features[rows], target[rows] / mass[rows], valid[rows]
    n = max(len(feats), 1)

    def loss(w: F64) -> tuple[float, F64]:
        s = np.where(mask, feats @ w, -np.inf)
        top = s.max(axis=1, keepdims=True)
        e = np.where(mask, np.exp(s - top), 0.0)
        z = e.sum(axis=1, keepdims=True)
        p = e / z
        logp = np.where(mask, s - top - np.log(z), 0.0)
        value = -float((target * logp).sum()) / n + l2 * float(w @ w) / n
        grad = np.einsum("qc,qcf->f", p - target, feats) / n + 2 * l2 * w / n
        return value, grad

    w0 = np.zeros(features.shape[2])
    result = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(result.x, dtype=np.float64)


def fit_linear(features: F64, gains: F64, valid: npt.NDArray[np.bool_], names: tuple[str, ...], depth: int,
               lead: LeadIndex, options: RankerOptions) -> Ranker:
    flat = features[valid]
    mean = flat.mean(axis=0) if len(flat) else np.zeros(features.shape[2])
    scale = flat.std(axis=0) + 1e-6 if len(flat) else np.ones(features.shape[2])
    weights = _listwise((features - mean) / scale, gains, valid, options.l2)
    return Ranker("linear", names, depth, lead, tuple(mean.tolist()), tuple(scale.tolist()), tuple(weights.tolist()),
                  metadata_fields=options.metadata_fields)


def _groups(valid: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.bool_], list[int]]:
    return valid, [int(v) for v in valid.sum(axis=1)]


def fit_lambdamart(features: F64, gains: F64, valid: npt.NDArray[np.bool_], stop: tuple[F64, F64,
                   npt.NDArray[np.bool_]] | None, names: tuple[str, ...], depth: int, lead: LeadIndex,
                   options: RankerOptions, seed: int = 0) -> Ranker:
    """LambdaMART on the candidates of the training queries, early-stopped on ``stop``'s queries (nDCG@10)."""
    lightgbm = import_lightgbm()
    keep = gains.sum(axis=1) > 0  # a query without a relevant candidate has no pairs to learn from
    train = lightgbm.Dataset(features[keep][valid[keep]], label=np.rint(gains[keep][valid[keep]]).astype(int),
                             group=_groups(valid[keep])[1], free_raw_data=False)
    params = {"objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10], "learning_rate": options.learning_rate,
              "num_leaves": options.leaves, "min_data_in_leaf": options.min_queries_per_leaf,
              "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
              "seed": seed, "deterministic": True, "num_threads": 1, "verbose": -1}
    callbacks = []
    valid_sets = []
    if stop is not None:
        s_feat, s_gain, s_valid = stop
        s_keep = s_gain.sum(axis=1) > 0
        if s_keep.any():
            valid_sets = [lightgbm.Dataset(s_feat[s_keep][s_valid[s_keep]],
                                           label=np.rint(s_gain[s_keep][s_valid[s_keep]]).astype(int),
                                           group=_groups(s_valid[s_keep])[1], reference=train)]
            callbacks = [lightgbm.early_stopping(30, verbose=False)]
    booster = lightgbm.train(params, train, num_boost_round=options.trees, valid_sets=valid_sets, callbacks=callbacks)
    text = booster.model_to_string(num_iteration=booster.best_iteration or None)
    return Ranker("lambdamart", names, depth, lead, booster=text, metadata_fields=options.metadata_fields)


def query_leads(lead: LeadIndex, query: str, texts: Sequence[str],
                metadata: Sequence[Mapping[str, Any]]) -> tuple[F64, F64]:
    """The lead features of one query's candidates (search time: their leads tokenized here)."""
    tokens = [tokenize(lead.lead(t, m)) for t, m in zip(texts, metadata, strict=True)]
    return lead.scores(Counter(tokenize(query)), tokens)
