"""Loading documents into a collection: embed in batches, upsert in batches, count what happened."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from vectorseam.embedders.base import Embedder
from vectorseam.errors import ValidationError
from vectorseam.search import ensure_collection_for
from vectorseam.sources import Document, Reject, RowSpec, to_documents
from vectorseam.store import VectorStore
from vectorseam.types import Record


@dataclass
class IngestReport:
    written: int = 0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejects)


Progress = Callable[[int, int], None]  # (documents written so far, rejects so far)


def _batches(items: Iterable[Document | Reject], size: int) -> Iterator[list[Document | Reject]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def ingest_documents(
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    items: Iterable[Document | Reject],
    batch_size: int = 64,
    strict: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Embed and upsert documents batch by batch; rejects are collected (or raised when ``strict``)."""
    ensure_collection_for(store, collection, embedder)
    report = IngestReport()
    for batch in _batches(items, batch_size):
        docs: list[Document] = []
        for item in batch:
            if isinstance(item, Reject):
                if strict:
                    raise ValidationError(f"{item} (stopped because of --strict; nothing from this batch written)")
                report.rejects.append(item)
            else:
                docs.append(item)
        if docs:
            vectors = embedder.embed_documents([d.text for d in docs])
            store.upsert(
                collection,
                [Record(d.id, v, d.text, d.metadata) for d, v in zip(docs, vectors, strict=True)],
            )
            report.written += len(docs)
        if progress is not None:
            progress(report.written, report.rejected)
    return report


def ingest_file(
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    path: Path,
    spec: RowSpec,
    batch_size: int = 64,
    strict: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    return ingest_documents(store, embedder, collection, to_documents(path, spec), batch_size, strict, progress)
