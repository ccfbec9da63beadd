"""The options of tuning, one typed object each from the CLI and the Python API down to the code that
tunes: a retrieval profile (:class:`TuneOptions`, with its query adapter's :class:`AdapterOptions` and
learned ranker's :class:`RankerOptions`), a fine-tuned local model (:class:`FinetuneOptions`) and a
customized embedding matrix (:class:`TrainingOptions`).

They live in the core, beside :mod:`vectorseam.ingest_options` and :mod:`vectorseam.query`, so the CLI
builds them without reaching below the facade; the retrieval and analysis layers read them. Each
``check`` states the rules between fields, with the field named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from vectorseam.errors import ValidationError

RankerKind: TypeAlias = Literal["linear", "lambdamart"]
LEAD_WORDS = 20  # a text's lead when no title field is named: its first words (a title, in "title text")


@dataclass(frozen=True)
class AdapterOptions:
    epochs: int = 40  # at most; early stopping usually ends sooner
    patience: int = 6  # epochs without a better held-out score before stopping
    learning_rate: float = 1e-3
    batch_size: int = 64
    temperature: float = 0.05
    hard_negatives: int = 30  # per pair, from the top of the current retrieval
    # Weight of ||W - I||^2. Without it, W learns to send queries to the documents their training
    # queries were judged on: a large gain for queries about those documents, a loss for queries about
    # others. On SciFact train (5 folds, hybrid nDCG@10 of 0.7285 before), by-query / document-grouped
    # folds: 0: 0.826 / 0.718; 0.03: 0.809 / 0.734; 0.1: 0.780 / 0.736; 0.3: 0.750 / 0.734.
    identity_penalty: float = 0.03
    seed: int = 0

    def check(self) -> AdapterOptions:
        if min(self.epochs, self.batch_size, self.hard_negatives) <= 0 or self.patience < 0:
            raise ValidationError("adapter epochs, batch size and hard negatives must be positive")
        if self.learning_rate <= 0 or self.temperature <= 0 or self.identity_penalty < 0:
            raise ValidationError("adapter learning rate and temperature must be positive, the penalty >= 0")
        return self


@dataclass(frozen=True)
class RankerOptions:
    depth: int = 50  # the union of each list's top ``depth`` is re-ranked
    kinds: tuple[RankerKind, ...] = ("linear", "lambdamart")
    l2: float = 1.0  # the linear model's penalty on its weights (standardised features)
    trees: int = 400  # LambdaMART: at most, early-stopped
    leaves: int = 7
    learning_rate: float = 0.05
    min_queries_per_leaf: int = 20
    metadata_fields: tuple[str, ...] = ()
    lead_words: int = LEAD_WORDS
    title_field: str | None = None

    def check(self) -> RankerOptions:
        if self.depth < 10 or self.l2 < 0 or self.trees <= 0 or self.leaves < 2 or self.lead_words <= 0:
            raise ValidationError("ranker: depth >= 10, l2 >= 0, trees > 0, leaves >= 2 and lead_words > 0")
        unknown = [k for k in self.kinds if k not in ("linear", "lambdamart")]
        if unknown or not self.kinds:
            raise ValidationError(f"ranker kinds are 'linear' and 'lambdamart', got {list(self.kinds)}")
        return self


@dataclass(frozen=True)
class TuneOptions:
    folds: int = 5
    seed: int = 0
    adapter: bool = True
    feedback: bool = True
    ranker: bool = True
    mmr: bool = True
    max_depth: int = 200  # the deepest candidate list searched
    # Folds by query (the default) estimate the gain for new queries like the judged ones, which may ask
    # about the same documents. Grouping queries that share a relevant document into one fold estimates it
    # for queries about documents no training query was judged on; a query adapter mostly helps the former.
    group_by_documents: bool = False
    check_new_documents: bool = True  # with query folds, also score the chosen steps on document-grouped folds
    early_stop_fraction: float = 0.2  # of each fold's training queries, held out to stop the adapter/ranker
    hard_negative_depth: int = 50  # hard negatives come from this top of the current hybrid ranking
    adapter_options: AdapterOptions = field(default_factory=AdapterOptions)
    ranker_options: RankerOptions = field(default_factory=RankerOptions)

    def check(self, judged: int) -> TuneOptions:
        if self.folds < 2:
            raise ValidationError(f"cross-validation needs at least 2 folds, got {self.folds}")
        if judged < 2 * self.folds:
            raise ValidationError(f"{judged} judged queries are too few for {self.folds}-fold cross-validation; "
                                  f"judge at least {2 * self.folds}")
        if not 0 < self.early_stop_fraction < 1 or self.max_depth <= 0:
            raise ValidationError("early_stop_fraction must be in (0, 1) and max_depth positive")
        self.adapter_options.check()
        self.ranker_options.check()
        return self


@dataclass(frozen=True)
class FinetuneOptions:
    epochs: int = 4  # at most; early stopping usually ends sooner
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup: float = 0.1  # share of the steps with a rising learning rate
    temperature: float = 0.05  # sentence-transformers' MNRL scale of 20
    hard_negatives: int = 1  # per pair, from the top of the current ranking
    max_seq_length: int = 256
    seed: int = 0
    device: str = "cpu"
    max_steps: int | None = None  # a bound for tests and quick looks
    # keep the last epoch even when no epoch beat the base model on the held-out queries (tests, or a
    # collection whose judged queries are too few to hold any out meaningfully)
    keep_without_gain: bool = False

    def check(self) -> FinetuneOptions:
        if min(self.epochs, self.batch_size, self.max_seq_length) <= 0 or self.hard_negatives < 0:
            raise ValidationError("fine-tuning epochs, batch size and sequence length must be positive")
        if self.learning_rate <= 0 or self.temperature <= 0 or not 0 <= self.warmup < 1:
            raise ValidationError("fine-tuning learning rate and temperature must be positive, warmup in [0, 1)")
        return self


@dataclass(frozen=True)
class TrainingOptions:
    seed: int = 123
    test_fraction: float = 0.5
    negatives_per_positive: int = 1
    epochs: int = 30
    learning_rate: float = 0.01
    batch_size: int = 100
    dropout: float = 0.0
    dimension: int | None = None  # output dimension; default: the input dimension
    # "identity" starts from the base space (training can only move away from it as far as the data
    # pulls); "random" is the Cookbook's N(0, 1) start, which needs a large learning rate (~100).
    init: Literal["identity", "random"] = "identity"

    def check(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.learning_rate <= 0:
            raise ValidationError("epochs, batch size and learning rate must be positive")
        if not 0 <= self.dropout < 1:
            raise ValidationError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.init not in ("identity", "random"):
            raise ValidationError(f"init must be 'identity' or 'random', got {self.init!r}")
        if self.dimension is not None and self.dimension <= 0:
            raise ValidationError(f"output dimension must be positive, got {self.dimension}")
