"""Argument checks every VectorStore implementation shares, so each backend refuses the same bad
calls with the same words (the conformance suite compares them across backends)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from vectorseam.errors import CollectionNotFoundError, DimensionMismatchError, ValidationError
from vectorseam.filters import Filter, FilterLike, matches
from vectorseam.types import CollectionInfo, CollectionSpec, Record


def check_k(k: int, limit: int | None = None, backend: str = "") -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValidationError(f"k must be a positive integer, got {k!r}")
    if limit is not None and k > limit:
        raise ValidationError(f"k is {k}; {backend or 'this backend'} returns at most {limit} results per query")


def check_blob_name(name: object) -> str:
    """A :class:`~vectorseam.store.CollectionBlobs` name: a non-empty string of at most 200 characters
    without NUL (every backend keys blobs by it)."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 200:
        raise ValidationError(f"a blob name is a non-empty string of at most 200 characters without NUL, got {name!r}")
    return name


def check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValidationError(f"batch_size must be a positive integer, got {batch_size!r}")


def filtered_pages(records: Iterable[Record], batch_size: int, f: Filter | None) -> Iterator[list[Record]]:
    """Pages of ``batch_size`` records matching ``f``, for a scan a backend cannot filter itself
    (Pinecone and Weaviate list or page through every record; the reference evaluator decides)."""
    page: list[Record] = []
    for record in records:
        if f is None or matches(f, record.metadata):
            page.append(record)
            if len(page) == batch_size:
                yield page
                page = []
    if page:
        yield page


def check_delete_args(ids: Sequence[str] | None, filter: FilterLike) -> None:
    if (ids is None) == (filter is None or filter == {}):
        raise ValidationError(
            "delete takes either ids or a filter (exactly one); deleting everything is drop_collection"
        )


def check_compatible(existing: CollectionInfo | CollectionSpec, spec: CollectionSpec) -> None:
    """An existing collection must match the requested dimension and metric exactly."""
    if existing.dimension != spec.dimension:
        raise DimensionMismatchError(
            f"collection {spec.name!r} exists with dimension {existing.dimension}, but {spec.dimension} "
            "was requested; use another collection name or re-embed with `vectorseam reindex`"
        )
    if existing.metric != spec.metric:
        raise ValidationError(
            f"collection {spec.name!r} exists with metric {existing.metric!r}, but {spec.metric!r} was requested"
        )


def collection_not_found(backend: str, collection: str, existing: Iterable[str]) -> CollectionNotFoundError:
    """The error ``collection_info`` raises for an absent collection, in every store's words.

    Listing the existing names is fine here: it happens on the error path only, never on a query.
    """
    names = ", ".join(sorted(existing)) or "none"
    return CollectionNotFoundError(
        f"collection {collection!r} does not exist in the {backend} store (existing: {names}); "
        f"create it with `vectorseam ingest FILE --collection {collection}`"
    )
