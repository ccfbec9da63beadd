"""What the LangChain, LlamaIndex and Haystack integrations share: one collection of the facade's store,
bound to the vector space that fills it.

The frameworks disagree on who embeds. A LangChain vector store is handed an ``Embeddings`` object (or
none, and then vectorseam's configured embedder does it); LlamaIndex nodes and Haystack documents
arrive with vectors the framework already computed. :class:`BoundCollection` serves both cases with
the rule the rest of vectorseam keeps: a collection records the fingerprint of the space its vectors
live in (:mod:`vectorseam.embedders.fingerprint`), and text is only ever embedded by the embedder whose
fingerprint that is. Everything goes through the facade's store, so the BM25 sidecar stays in step with
every write and hybrid search works on whichever backend the configuration selects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from vectorseam.client import VectorSeam
from vectorseam.config import Settings
from vectorseam.embedders.base import FINGERPRINT_KEY, Embedder
from vectorseam.embedders.fingerprint import check_embedder, collection_spec
from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.filters import FilterLike, parse_filter
from vectorseam.retrieval.hybrid import RetrievalSearcher
from vectorseam.retrieval.mmr import check_lambda, mmr_order
from vectorseam.types import CollectionInfo, CollectionSpec, Hit, Metric, Record

T = TypeVar("T")


def open_vectorseam(
    vectorseam: VectorSeam | None = None,
    config_file: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> VectorSeam:
    """The facade an integration runs over: the one given, or one built from settings or a config file
    (``vectorseam.toml`` / ``VECTORSEAM_*`` when neither is given)."""
    if sum(x is not None for x in (vectorseam, config_file, settings)) > 1:
        raise ValidationError("give one of a VectorSeam, settings or a config file, not several")
    if vectorseam is not None:
        return vectorseam
    return VectorSeam(settings=settings, config_file=config_file)


class FunctionEmbedder:
    """A framework's embedding model seen as a vectorseam :class:`~vectorseam.embedders.base.Embedder`.

    ``name`` identifies the model (``langchain:<class>[:<model>]``); the fingerprint adds the dimension,
    which is learnt from the first vectors the model returns (a probe query when asked before that), so a
    collection filled by one model is never searched with another.
    """

    def __init__(
        self,
        name: str,
        embed_documents: Callable[[list[str]], Sequence[Sequence[float]]],
        embed_query: Callable[[str], Sequence[float]],
    ) -> None:
        self.name = name
        self._embed_documents = embed_documents
        self._embed_query = embed_query
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed_query("dimension probe")
        assert self._dimension is not None
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:{self.dimension}"

    def _checked(self, matrix: npt.NDArray[np.float32], rows: int) -> npt.NDArray[np.float32]:
        if matrix.ndim != 2 or matrix.shape[0] != rows:
            raise ValidationError(f"the embedding model {self.name} returned {matrix.shape[0] if matrix.ndim else 0} "
                                  f"vectors for {rows} texts")
        if self._dimension is None:
            self._dimension = int(matrix.shape[1])
        elif matrix.shape[1] != self._dimension:
            raise ValidationError(f"the embedding model {self.name} returned {matrix.shape[1]}-d vectors after "
                                  f"{self._dimension}-d ones")
        return matrix

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._checked(np.asarray(self._embed_documents(list(texts)), dtype=np.float32), len(texts))

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self._checked(np.asarray([self._embed_query(text)], dtype=np.float32), 1)[0]
        return vector


class GivenQueryVector:
    """An Embedder whose query embedding is a vector the framework already computed.

    Hybrid and BM25 search (:class:`~vectorseam.retrieval.hybrid.RetrievalSearcher`) take query text and
    embed it themselves; LlamaIndex and Haystack hand over the text *and* its vector. This stand-in lets
    them run unchanged: it answers ``embed_query`` with that vector and carries the collection's own
    fingerprint, because the caller vouches that the vector is of the collection's space.
    """

    def __init__(self, vector: npt.ArrayLike | None, dimension: int, fingerprint: str) -> None:
        self._vector = None if vector is None else np.asarray(vector, dtype=np.float32)
        self._dimension = dimension
        self._fingerprint = fingerprint

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def embed_documents(self, texts: Sequence[str], batch_size: int | None = None) -> npt.NDArray[np.float32]:
        raise ValidationError("this collection's vectors come from the framework: pass them in, vectorseam "
                              "does not embed its texts")

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        if self._vector is None:
            raise ValidationError("this search needs the query's embedding as well as its text")
        return self._vector


class BoundCollection:
    """One collection of a facade's store and the vector space that fills it.

    With an ``embedder`` (a :class:`FunctionEmbedder`, or ``None`` for the facade's configured one) texts
    are embedded here and the collection is created with that embedder's fingerprint, exactly as
    ``vectorseam ingest`` would (so either can read what the other wrote). With ``source`` instead, the
    vectors come from the framework: the collection is created on the first write, with the dimension
    of those vectors and the fingerprint ``<source>:<dimension>``, and searches take vectors.

    The name is resolved through the facade's aliases on every call (an alias may be switched by
    ``vectorseam reindex`` while a framework app runs). A collection that does not exist yet reads as
    empty: frameworks query before their first write.
    """

    def __init__(self, vs: VectorSeam, collection: str, embedder: Embedder | None = None,
                 source: str | None = None, metric: Metric = "cosine") -> None:
        if (embedder is not None) and (source is not None):
            raise ValidationError("a collection is filled by an embedder or with the framework's vectors, not both")
        CollectionSpec(collection, 1, metric)  # validates the name and the metric up front
        self.vs = vs
        self.collection = collection
        self.metric: Metric = metric
        self.source = source
        self._embedder = embedder

    # -- the collection -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.vs.resolve(self.collection)

    @property
    def embedder(self) -> Embedder:
        """The embedder whose vectors fill the collection (loads the facade's model on first use)."""
        if self.source is not None:
            raise ValidationError(f"this {self.source} store takes vectors, not text: embed with the framework")
        return self._embedder if self._embedder is not None else self.vs.embedder

    def info(self) -> CollectionInfo | None:
        try:
            return self.vs.store.collection_info(self.name)
        except CollectionNotFoundError:
            return None

    def ensure(self, dimension: int | None = None) -> CollectionInfo:
        """The collection, created if need be (``dimension``: that of the framework's vectors)."""
        name = self.name
        if self.source is None:
            info = self.vs.store.ensure_collection(collection_spec(name, self.embedder, self.metric))
            check_embedder(info, self.embedder)
            return info
        existing = self.info()
        if existing is not None:
            return existing  # the store checks each vector's dimension against it
        if dimension is None:
            raise ValidationError(f"collection {name!r} does not exist yet and no vector says its dimension")
        spec = CollectionSpec(name, dimension, self.metric, {FINGERPRINT_KEY: f"{self.source}:{dimension}"})
        return self.vs.store.ensure_collection(spec)

    def _or_empty(self, fn: Callable[[str], T], empty: T) -> T:
        try:
            return fn(self.name)
        except CollectionNotFoundError:
            return empty

    # -- records --------------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.embedder.embed_documents(list(texts))

    def upsert(self, records: Sequence[Record]) -> int:
        """Write records (with vectors) into the collection, which must exist (see :meth:`ensure`)."""
        if not records:
            return 0
        written = self.vs.store.upsert(self.name, records)
        self.vs.flush()
        return written

    def fetch(self, ids: Sequence[str], include_vectors: bool = False) -> list[Record]:
        if not ids:
            return []
        return self._or_empty(lambda n: self.vs.store.fetch(n, list(ids), include_vectors=include_vectors), [])

    def delete(self, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        removed = self._or_empty(lambda n: self.vs.store.delete(n, None if ids is None else list(ids), filter), 0)
        if removed:
            self.vs.flush()
        return removed

    def count(self, filter: FilterLike = None) -> int:
        return self._or_empty(lambda n: self.vs.store.count(n, filter), 0)

    def scan(self, filter: FilterLike = None, include_vectors: bool = False) -> Iterator[Record]:
        try:  # a store's scan may be lazy: the error for a missing collection can come with the first page
            for page in self.vs.store.scan(self.name, filter=filter, include_vectors=include_vectors):
                yield from page
        except CollectionNotFoundError:
            return

    def drop(self) -> bool:
        dropped = self.vs.store.drop_collection(self.name)
        self.vs.flush()
        return dropped

    # -- search ---------------------------------------------------------------------------------------
    @cached_property
    def _retrieval(self) -> RetrievalSearcher:
        if self._embedder is None:
            return self.vs.retrieval
        return RetrievalSearcher(self.vs.store, self._embedder, self.vs.sidecar_root)

    def search_text(self, query: str, k: int, filter: FilterLike = None, mode: str = "dense",
                    mmr: float | None = None) -> list[Hit]:
        """Dense, BM25 or hybrid search for text, embedded by the collection's embedder."""
        return self._or_empty(lambda n: self._retrieval.search(n, query, k, filter, mode, mmr), [])

    def search_vector(self, vector: npt.ArrayLike, k: int, filter: FilterLike = None,
                      include_vectors: bool = False) -> list[Hit]:
        return self._or_empty(
            lambda n: self.vs.store.query(n, vector, k=k, filter=parse_filter(filter),
                                          include_vectors=include_vectors)[0], [])

    def mmr_vector(self, vector: npt.ArrayLike, k: int, fetch_k: int, lambda_: float,
                   filter: FilterLike = None) -> list[Hit]:
        """The top ``fetch_k`` neighbours of ``vector``, re-ranked by MMR down to ``k`` (``lambda_`` = 1 is
        plain relevance, 0 pure diversity)."""
        lam = check_lambda(lambda_)
        info = self.info()
        if info is None:
            return []
        pool = self.search_vector(vector, max(k, fetch_k), filter, include_vectors=True)
        if not pool:
            return []
        matrix = np.stack([np.asarray(h.vector) for h in pool])
        order = mmr_order(np.asarray(vector, dtype=np.float32), matrix, k, lam, info.metric)
        return [Hit(pool[i].id, pool[i].score, pool[i].text, pool[i].metadata) for i in order]

    def search_given(self, query: str, vector: npt.ArrayLike | None, k: int, filter: FilterLike = None,
                     mode: str = "hybrid", mmr: float | None = None,
                     weights: tuple[float, float] = (1.0, 1.0)) -> list[Hit]:
        """Hybrid or BM25 search (optionally MMR) where the framework supplies the query's vector.

        ``weights`` are the RRF weights of the dense and the BM25 ranking."""
        info = self.info()
        if info is None:
            return []
        fingerprint = str(info.metadata.get(FINGERPRINT_KEY, ""))
        searcher = RetrievalSearcher(self.vs.store, GivenQueryVector(vector, info.dimension, fingerprint),
                                     self.vs.sidecar_root, weights=weights)
        return searcher.search(info.name, query, k, filter, mode, mmr)

    def close(self) -> None:
        self.vs.close()


def describe_embeddings(obj: Any, framework: str) -> str:
    """``<framework>:<module>.<class>[:<model>]``: the name a framework's embedding model gets in
    fingerprints (the model name, where the object has one, tells two models of one class apart)."""
    cls = type(obj)
    name = f"{framework}:{cls.__module__}.{cls.__qualname__}"
    for attr in ("model", "model_name", "deployment"):
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value:
            return f"{name}:{value}"
    return name
