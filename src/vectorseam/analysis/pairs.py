"""Labelled text pairs for customizing embeddings: reading them, splitting them, making negatives.

Labels are +1 (similar) and -1 (dissimilar); 0 is read as dissimilar so 0/1 files (MRPC-style) work.
A file of positives only gets negatives synthesized from unrelated pairs, as in the Cookbook: two
texts drawn from different positive pairs are assumed unrelated, which is true often enough to teach
the matrix what "dissimilar" means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vectorseam.errors import ValidationError
from vectorseam.extras import require
from vectorseam.ingest.sources import Reject, read_rows


@dataclass(frozen=True, slots=True)
class Pair:
    text_1: str
    text_2: str
    label: int  # +1 similar, -1 dissimilar


_POSITIVE = {"1", "+1", "1.0", "true", "similar"}
_NEGATIVE = {"-1", "-1.0", "0", "0.0", "false", "dissimilar"}


def read_pairs(
    path: Path,
    text_1: str = "text_1",
    text_2: str = "text_2",
    label: str = "label",
    positive: str | None = None,
    negative: Sequence[str] = (),
) -> tuple[list[Pair], int]:
    """Pairs from a CSV/TSV/JSONL file, and how many rows were skipped (other label values).

    With ``positive`` (e.g. "entailment"), rows whose label equals it are +1, rows equal to one of
    ``negative`` are -1, and other rows are skipped and counted; without it labels must read as +1/-1.
    """
    if not path.is_file():
        raise ValidationError(f"{path}: no such pairs file")
    pairs: list[Pair] = []
    skipped = 0
    for line_no, row in read_rows(path):
        if isinstance(row, Reject):
            raise ValidationError(f"pairs file {row}")
        missing = [c for c in (text_1, text_2, label) if c not in row]
        if missing:
            raise ValidationError(
                f"{path}:{line_no}: missing column(s) {', '.join(missing)}; the file has "
                f"{', '.join(map(str, row)) or 'no columns'}. Name the columns with --text1-col, "
                "--text2-col and --label-col"
            )
        a, b, raw = str(row[text_1]).strip(), str(row[text_2]).strip(), str(row[label]).strip().lower()
        if not a or not b:
            raise ValidationError(f"{path}:{line_no}: empty text in column {text_1 if not a else text_2!r}")
        if positive is not None:
            if raw == positive.lower():
                pairs.append(Pair(a, b, 1))
            elif raw in {n.lower() for n in negative}:
                pairs.append(Pair(a, b, -1))
            else:
                skipped += 1
            continue
        if raw in _POSITIVE:
            pairs.append(Pair(a, b, 1))
        elif raw in _NEGATIVE:
            pairs.append(Pair(a, b, -1))
        else:
            raise ValidationError(
                f"{path}:{line_no}: label {row[label]!r} is not +1/-1 (or 1/0); to use a category such as "
                "'entailment' as the positive label, pass --positive entailment"
            )
    if not pairs:
        raise ValidationError(f"{path}: no labelled pairs" + (f" ({skipped} rows had other labels)" if skipped else ""))
    return pairs, skipped


def synthesize_negatives(positives: Sequence[Pair], count: int, seed: int) -> list[Pair]:
    """``count`` dissimilar pairs made of texts from different positive pairs (reproducible by seed)."""
    texts = sorted({p.text_1 for p in positives} | {p.text_2 for p in positives})
    known = {(p.text_1, p.text_2) for p in positives} | {(p.text_2, p.text_1) for p in positives}
    possible = len(texts) * (len(texts) - 1) // 2 - len({tuple(sorted(k)) for k in known})
    if count > 0 and possible < count:
        raise ValidationError(
            f"the pairs hold only positives and too few distinct texts ({len(texts)}) to synthesize {count} "
            "negatives from unrelated pairs; add rows labelled -1 or more positive pairs"
        )
    rng = np.random.default_rng(seed)
    chosen: set[tuple[str, str]] = set()
    out: list[Pair] = []
    while len(out) < count:
        i, j = (int(v) for v in rng.integers(0, len(texts), size=2))
        if i == j:
            continue
        a, b = (texts[i], texts[j]) if i < j else (texts[j], texts[i])
        if (a, b) in known or (a, b) in chosen:
            continue
        chosen.add((a, b))
        out.append(Pair(a, b, -1))
    return out


def complete_negatives(pairs: Sequence[Pair], per_positive: int, seed: int) -> list[Pair]:
    """The pairs, plus synthesized negatives when there are none."""
    positives = [p for p in pairs if p.label > 0]
    if not positives:
        raise ValidationError("the pairs hold no positive (+1) pair; a similarity can't be learned from negatives only")
    if len(positives) < len(pairs):
        return list(pairs)
    if per_positive <= 0:
        raise ValidationError(
            "the pairs hold only positives and negatives_per_positive is 0: there is no way to make negatives; "
            "add rows labelled -1 or allow synthesized negatives"
        )
    return list(pairs) + synthesize_negatives(positives, len(positives) * per_positive, seed)


def stratified_split(pairs: Sequence[Pair], test_fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """scikit-learn's stratified train_test_split, so a seed reproduces the Cookbook's split."""
    if test_fraction == 0:
        return list(pairs), []
    if not 0 < test_fraction < 1:
        raise ValidationError(f"test fraction must be in [0, 1), got {test_fraction}")
    require("analysis", "splitting labelled pairs", ("sklearn",))
    from sklearn.model_selection import train_test_split

    labels = [p.label for p in pairs]
    stratify = labels if len(set(labels)) > 1 else None
    try:
        train, test = train_test_split(list(pairs), test_size=test_fraction, stratify=stratify, random_state=seed)
    except ValueError as exc:
        raise ValidationError(f"cannot split {len(pairs)} pairs into train and test: {exc}") from None
    return list(train), list(test)
