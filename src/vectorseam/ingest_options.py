"""The options of an ingest, one typed object from the CLI, the service and the Python API down to the
load job and the Ray engine's workers (which receive it pickled).

Why a frozen dataclass and not keyword arguments passed along: a misspelt option fails where it is
written (``IngestOptions(cleanp="full")`` is a TypeError at the call, not a key some layer never reads),
an editor shows every option with its default, and the rules between options are checked once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

from vectorseam.errors import ValidationError
from vectorseam.retrying import RetryPolicy
from vectorseam.similarity import check_threshold

Cleanup: TypeAlias = Literal["none", "full"]
Duplicates: TypeAlias = Literal["off", "tag", "drop"]
Engine: TypeAlias = Literal["local", "ray"]


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How an ingest runs.

    * ``batch_size`` documents per batch; ``strict`` stops at the first bad row (else rows are rejected
      into the ``rejects_path`` file, by file:line, and the rest is written);
    * ``cleanup="full"`` also deletes the records of documents the source no longer has, refused for a
      source that yields none unless ``allow_empty_source``; ``verify`` reconciles the store with the
      record manager record by record;
    * ``chunk_tokens`` per chunk (None: the embedder's limit; 0: never split), ``chunk_overlap`` shared;
    * ``duplicates`` ``"tag"`` or ``"drop"`` near-duplicates (cosine from ``duplicate_threshold``) of the
      collection and of earlier rows;
    * ``retry`` of store calls; ``checkpoint_seconds`` between the record manager's done marks (None:
      spaced by their own cost); ``queue_depth`` batches between the job's stages;
    * the embedding cache: ``use_cache=False`` embeds every text again, ``embed_cache`` is another file;
    * ``engine`` ``"local"`` (this process) or ``"ray"`` (None: the configured ``[ingest] engine``), and
      the Ray cluster's ``ray_address`` (``"auto"``, ``"ray://HOST:PORT"``) and ``ray_workers``.
    """

    batch_size: int = 64
    strict: bool = False
    cleanup: Cleanup = "none"
    verify: bool = False
    chunk_tokens: int | None = None
    chunk_overlap: int = 32
    checkpoint_seconds: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rejects_path: Path | None = None
    queue_depth: int = 2
    duplicates: Duplicates = "off"
    duplicate_threshold: float = 0.98
    allow_empty_source: bool = False
    use_cache: bool = True
    embed_cache: Path | None = None
    engine: Engine | None = None
    ray_address: str | None = None
    ray_workers: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValidationError(f"batch size must be at least 1, got {self.batch_size}")
        if self.cleanup not in ("none", "full"):
            raise ValidationError(f"cleanup must be 'none' or 'full', got {self.cleanup!r}")
        if self.duplicates not in ("off", "tag", "drop"):
            raise ValidationError(f"duplicates must be 'off', 'tag' or 'drop', got {self.duplicates!r}")
        if self.engine not in (None, "local", "ray"):
            raise ValidationError(f"ingest engine must be 'local' or 'ray', got {self.engine!r}")
        if self.ray_workers is not None and self.ray_workers < 1:
            raise ValidationError(f"ray_workers must be at least 1, got {self.ray_workers}")
        try:
            check_threshold(self.duplicate_threshold)
        except ValidationError as exc:
            raise ValidationError(f"duplicate threshold: {exc}") from None

    @property
    def ray_overrides(self) -> dict[str, object]:
        """The Ray cluster settings these options give (address, workers), for the configured ones."""
        given = {"address": self.ray_address, "workers": self.ray_workers}
        return {key: value for key, value in given.items() if value is not None}
