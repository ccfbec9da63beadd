"""Customized embeddings: a matrix, learned from labelled pairs, that maps embeddings to task-specific
ones (the Cookbook's "Customizing embeddings"), and the embedder and collections that use it.

Training minimises the squared error between the cosine similarity of the transformed pair and its
label (+1/-1), by mini-batch gradient descent in torch. Everything random (initial matrix, batch
order, dropout, negative sampling, split) comes from one seed, so a seed reproduces the matrix.

The similarity threshold that turns a cosine into "similar or not" is chosen on the training split
only, and accuracy is reported on the test split with a 95% interval; the Cookbook tunes it on the
test set it scores, which flatters both figures, so that figure is reported too, marked as such.

A collection is customized by writing transformed vectors into a new collection whose embedder
fingerprint records the matrix's hash (``<base fingerprint>+custom:<sha256[:12]>``); configuring
``embedder.custom_matrix`` makes queries go through the same matrix, and any mix-up between the
two is caught by the fingerprint check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.analysis.pairs import Pair, complete_negatives, stratified_split
from vectorseam.embedders.custom_matrix import CustomMatrix
from vectorseam.embedding import FINGERPRINT_KEY
from vectorseam.errors import (
    DimensionMismatchError,
    EmbedderMismatchError,
    ValidationError,
)
from vectorseam.extras import require
from vectorseam.similarity import unit_rows_f32
from vectorseam.store import VectorStore
from vectorseam.tune_options import TrainingOptions
from vectorseam.types import CollectionSpec, Record

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Accuracy:
    accuracy: float
    ci95: float  # half-width of the normal-approximation 95% interval (1.96 standard errors)
    n: int
    threshold: float

    def __str__(self) -> str:
        return f"{100 * self.accuracy:.1f}% ± {100 * self.ci95:.1f}% (n={self.n}, threshold {self.threshold:+.3f})"


THRESHOLDS = np.arange(-1000, 1000, dtype=np.float64) / 1000.0  # the Cookbook's grid


def accuracy_at(scores: npt.NDArray[np.floating[Any]], labels: npt.NDArray[np.int64], threshold: float) -> Accuracy:
    """Accuracy of "similar iff cosine > threshold" with its 95% interval."""
    predicted = np.where(scores > threshold, 1, -1)
    a = float(np.mean(predicted == labels)) if len(labels) else 0.0
    n = len(labels)
    return Accuracy(a, 1.96 * math.sqrt(a * (1 - a) / n) if n else 0.0, n, float(threshold))


def best_threshold(scores: npt.NDArray[np.floating[Any]], labels: npt.NDArray[np.int64]) -> float:
    """The grid threshold with the highest accuracy on these pairs (lowest one on ties)."""
    predicted = scores[None, :] > THRESHOLDS[:, None]
    correct = (predicted == (labels > 0)[None, :]).sum(axis=1)
    return float(THRESHOLDS[int(np.argmax(correct))])


def pair_cosines(e1: npt.NDArray[np.float32], e2: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return np.asarray(np.sum(unit_rows_f32(e1) * unit_rows_f32(e2), axis=1), dtype=np.float64)


@dataclass
class TrainingReport:
    train_pairs: int
    train_positives: int
    test_pairs: int
    test_positives: int
    synthesized_negatives: bool
    seed: int
    epochs: int
    losses: list[float]
    before_train_threshold: Accuracy | None = None  # test accuracy, threshold chosen on train
    after_train_threshold: Accuracy | None = None
    before_test_tuned: Accuracy | None = None  # the Cookbook's (optimistic) figure
    after_test_tuned: Accuracy | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- training


def fit_matrix(
    e1: npt.NDArray[np.float32], e2: npt.NDArray[np.float32], labels: npt.NDArray[np.int64],
    options: TrainingOptions,
) -> tuple[npt.NDArray[np.float32], list[float]]:
    """Gradient descent on mean((cos(e1 M, e2 M) - label)^2); deterministic for a seed on one machine."""
    require("local", "training a custom matrix (torch)", ("torch",))
    import torch

    d_in = e1.shape[1]
    d_out = options.dimension or d_in
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        gen = torch.Generator().manual_seed(options.seed)
        if options.init == "identity":
            matrix = torch.eye(d_in, d_out, dtype=torch.float32)  # extra columns (d_out > d_in) start at 0
        else:
            matrix = torch.randn(d_in, d_out, generator=gen, dtype=torch.float32)
        matrix.requires_grad_(True)
        a, b = torch.from_numpy(e1.astype(np.float32)), torch.from_numpy(e2.astype(np.float32))
        y = torch.from_numpy(labels.astype(np.float32))
        losses: list[float] = []
        for _ in range(options.epochs):
            order = torch.randperm(len(y), generator=gen)
            total = 0.0
            for start in range(0, len(y), options.batch_size):
                idx = order[start:start + options.batch_size]
                xa = torch.nn.functional.dropout(a[idx], p=options.dropout)
                xb = torch.nn.functional.dropout(b[idx], p=options.dropout)
                sim = torch.nn.functional.cosine_similarity(xa @ matrix, xb @ matrix)
                loss = torch.mean((sim - y[idx]) ** 2)
                loss.backward()  # type: ignore[no-untyped-call]
                with torch.no_grad():
                    assert matrix.grad is not None
                    matrix -= matrix.grad * options.learning_rate
                    matrix.grad.zero_()
                total += float(loss.detach()) * len(idx)
            losses.append(total / len(y))
    return np.ascontiguousarray(matrix.detach().numpy(), dtype=np.float32), losses


def _embed_pairs(pairs: Sequence[Pair], embed: Embed) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    texts = list(dict.fromkeys([p.text_1 for p in pairs] + [p.text_2 for p in pairs]))
    vectors = embed(texts)
    row = {t: i for i, t in enumerate(texts)}
    return vectors[[row[p.text_1] for p in pairs]], vectors[[row[p.text_2] for p in pairs]]


def train_matrix(
    pairs: Sequence[Pair], embed: Embed, base_fingerprint: str, options: TrainingOptions | None = None
) -> tuple[CustomMatrix, TrainingReport]:
    """Split, complete negatives per split, train on train, evaluate on test; returns matrix and report."""
    options = options or TrainingOptions()
    options.check()
    has_negatives = any(p.label < 0 for p in pairs)
    # Split the given pairs first (stratified), then make negatives within each split, as the
    # Cookbook does, so no text pairing leaks from test into training.
    train, test = stratified_split(pairs, options.test_fraction, options.seed)
    train = complete_negatives(train, options.negatives_per_positive, options.seed)
    if test:
        test = complete_negatives(test, options.negatives_per_positive, options.seed + 1)
    e1, e2 = _embed_pairs(train, embed)
    y = np.array([p.label for p in train], dtype=np.int64)
    matrix, losses = fit_matrix(e1, e2, y, options)
    custom_probe = CustomMatrix(matrix, base_fingerprint)
    before_train = pair_cosines(e1, e2)
    after_train = pair_cosines(custom_probe.transform(e1), custom_probe.transform(e2))
    t_before, t_after = best_threshold(before_train, y), best_threshold(after_train, y)
    report = TrainingReport(
        train_pairs=len(train), train_positives=int((y > 0).sum()), test_pairs=len(test),
        test_positives=sum(1 for p in test if p.label > 0), synthesized_negatives=not has_negatives,
        seed=options.seed, epochs=options.epochs, losses=losses,
    )
    if test:
        t1, t2 = _embed_pairs(test, embed)
        yt = np.array([p.label for p in test], dtype=np.int64)
        before_test = pair_cosines(t1, t2)
        after_test = pair_cosines(custom_probe.transform(t1), custom_probe.transform(t2))
        report.before_train_threshold = accuracy_at(before_test, yt, t_before)
        report.after_train_threshold = accuracy_at(after_test, yt, t_after)
        report.before_test_tuned = accuracy_at(before_test, yt, best_threshold(before_test, yt))
        report.after_test_tuned = accuracy_at(after_test, yt, best_threshold(after_test, yt))
    info = {"options": asdict(options), "train_pairs": len(train), "test_pairs": len(test)}
    return CustomMatrix(matrix, base_fingerprint, t_after, info), report


# ---------------------------------------------------------------- applying to a collection


def apply_matrix(
    store: VectorStore, source: str, target: str, custom: CustomMatrix, batch_size: int = 500
) -> int:
    """Write ``source``'s records, vectors transformed, into the new collection ``target``.

    Not in place: the store protocol fixes a collection's dimension and fingerprint at creation,
    and keeping the original lets one compare and go back. Returns how many records were written.
    """
    if source == target:
        raise ValidationError(
            f"cannot customize {source!r} in place: a collection's dimension and embedder fingerprint are "
            "fixed when it is created; give a new target collection (and drop the old one afterwards if you like)"
        )
    info = store.collection_info(source)
    recorded = info.metadata.get(FINGERPRINT_KEY)
    if recorded is not None and recorded != custom.base_fingerprint:
        raise EmbedderMismatchError(
            f"collection {source!r} holds {recorded!r} embeddings, but the matrix was trained on "
            f"{custom.base_fingerprint!r}; train a matrix on this collection's embedder"
        )
    if info.dimension != custom.input_dimension:
        raise DimensionMismatchError(
            f"the matrix maps {custom.input_dimension}-d vectors but collection {source!r} holds "
            f"{info.dimension}-d vectors; train a matrix with this collection's embedder"
        )
    spec = CollectionSpec(target, custom.output_dimension, "cosine",
                          {FINGERPRINT_KEY: custom.fingerprint, "customized_from": source})
    created = store.ensure_collection(spec)
    existing = created.metadata.get(FINGERPRINT_KEY)
    if existing is not None and existing != custom.fingerprint:
        raise EmbedderMismatchError(
            f"target collection {target!r} already exists with embedder {existing!r}; choose another name"
        )
    written = 0
    for batch in store.scan(source, batch_size=batch_size, include_vectors=True):
        if not batch:
            continue
        if any(r.vector is None for r in batch):
            raise ValidationError(f"the {store.capabilities.name} store returned records without vectors from scan")
        vectors = custom.transform(np.stack([np.asarray(r.vector, dtype=np.float32) for r in batch]))
        records = [Record(r.id, v, r.text, r.metadata) for r, v in zip(batch, vectors, strict=True)]
        written += store.upsert(target, records)
    return written
