"""A query-side linear adapter: a d x d matrix ``W`` learned from judged (query, relevant document)
pairs so that ``unit(q W)`` ranks a query's relevant documents higher, with the documents' stored
vectors untouched (nothing is re-embedded; any store keeps working).

It is the Cookbook's "customizing embeddings" matrix (:mod:`vectorseam.analysis.customize`) turned to
retrieval: the same identity start, so training only moves away from the base space as far as the
judgements pull it, but a listwise loss instead of a pairwise one. For each pair, the softmax over
``cos(q W, d) / temperature`` of the relevant document against hard negatives (documents the current
retrieval ranks high that are not judged relevant) and the batch's other relevant documents is pushed
towards the relevant one (InfoNCE). A penalty on ``||W - I||^2`` and early stopping on held-out
queries (the epoch with the best nDCG@10 there is kept) stop it from memorising a few hundred queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vectorseam.extras import require
from vectorseam.tune_options import AdapterOptions


@dataclass
class AdapterFit:
    matrix: npt.NDArray[np.float32]
    best_epoch: int  # 0: the identity (no epoch beat the base space on the held-out queries)
    held_out: list[float] = field(default_factory=list)  # held-out score after each epoch; [0] = identity
    losses: list[float] = field(default_factory=list)


def mine_pairs(
    relevant: Sequence[Sequence[int]], retrieved: Sequence[Sequence[int]], hard_negatives: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """One row per (query, relevant document): query row, document row, and its hard negatives (the
    query's best-ranked non-relevant documents, padded by repeating the last one; -1 if there are none)."""
    q_rows: list[int] = []
    pos: list[int] = []
    negs: list[list[int]] = []
    for qi, (rel, ranked) in enumerate(zip(relevant, retrieved, strict=True)):
        wanted = set(rel)
        hard = [d for d in ranked if d not in wanted][:hard_negatives]
        hard += [hard[-1] if hard else -1] * (hard_negatives - len(hard))
        for d in rel:
            q_rows.append(qi)
            pos.append(d)
            negs.append(hard)
    return (np.array(q_rows, dtype=np.int64), np.array(pos, dtype=np.int64),
            np.array(negs, dtype=np.int64).reshape(len(pos), hard_negatives))


def train_adapter(
    queries: npt.NDArray[np.float32],
    documents: npt.NDArray[np.float32],
    relevant: Sequence[Sequence[int]],
    retrieved: Sequence[Sequence[int]],
    held_out_score: Callable[[npt.NDArray[np.float32]], float],
    options: AdapterOptions | None = None,
) -> AdapterFit:
    """Train ``W`` on ``queries`` (unit rows) against ``documents`` (unit rows of the collection);
    ``relevant[i]``/``retrieved[i]``: document rows judged relevant to / retrieved for query i.
    ``held_out_score(W)`` scores a matrix on queries not trained on (higher is better); the best epoch's
    matrix is returned, the identity if no epoch beats it. Deterministic for a seed on one machine."""
    require("local", "training a query adapter (torch)", ("torch",))
    import torch

    opts = (options or AdapterOptions()).check()
    q_rows, pos, negs = mine_pairs(relevant, retrieved, opts.hard_negatives)
    dim = queries.shape[1]
    identity = np.eye(dim, dtype=np.float32)
    fit = AdapterFit(identity, 0, [held_out_score(identity)])
    if len(pos) == 0:
        return fit
    judged = np.zeros((len(relevant), len(documents)), dtype=bool)  # judged[q, d]: d is relevant to q
    for qi, rel in enumerate(relevant):
        judged[qi, list(rel)] = True
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 384 x 384 matrix: threads only contend for the (shared) cores
    try:
        return _train(queries, documents, judged, q_rows, pos, negs, held_out_score, opts, fit)
    finally:
        torch.set_num_threads(threads)


def _train(queries: npt.NDArray[np.float32], documents: npt.NDArray[np.float32], judged: npt.NDArray[np.bool_],
           q_rows: npt.NDArray[np.int64], pos: npt.NDArray[np.int64], negs: npt.NDArray[np.int64],
           held_out_score: Callable[[npt.NDArray[np.float32]], float], opts: AdapterOptions,
           fit: AdapterFit) -> AdapterFit:
    import torch

    dim = queries.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed)
        gen = torch.Generator().manual_seed(opts.seed)
        eye = torch.eye(dim, dtype=torch.float32)
        w = eye.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([w], lr=opts.learning_rate)
        q_all = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        d_all = torch.from_numpy(np.ascontiguousarray(documents, dtype=np.float32))
        t_q, t_pos, t_negs = torch.from_numpy(q_rows), torch.from_numpy(pos), torch.from_numpy(negs)
        t_judged = torch.from_numpy(judged)
        stale = 0
        for epoch in range(1, opts.epochs + 1):
            order = torch.randperm(len(pos), generator=gen)
            total = 0.0
            for start in range(0, len(pos), opts.batch_size):
                idx = order[start : start + opts.batch_size]
                qv = torch.nn.functional.normalize(q_all[t_q[idx]] @ w, dim=1)
                candidates = torch.cat([t_pos[idx][:, None], t_negs[idx]], dim=1)  # (b, 1 + h): positive first
                own = torch.einsum("bd,bcd->bc", qv, d_all[candidates.clamp(min=0)])
                own = own.masked_fill(candidates < 0, float("-inf"))
                # the batch's other relevant documents as further negatives, unless relevant to this query too
                batch_pos = t_pos[idx]
                shared = qv @ d_all[batch_pos].T
                shared = shared.masked_fill(t_judged[t_q[idx]][:, batch_pos], float("-inf"))
                logits = torch.cat([own, shared], dim=1) / opts.temperature
                loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(idx), dtype=torch.long))
                if opts.identity_penalty:
                    loss = loss + opts.identity_penalty * ((w - eye) ** 2).sum()
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            fit.losses.append(total / len(pos))
            matrix = np.ascontiguousarray(w.detach().numpy(), dtype=np.float32)
            fit.held_out.append(held_out_score(matrix))
            if fit.held_out[-1] > max(fit.held_out[:-1]):
                fit.matrix, fit.best_epoch, stale = matrix.copy(), epoch, 0
            else:
                stale += 1
                if stale > opts.patience:
                    break
    return fit
