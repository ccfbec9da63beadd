"""What the LangChain, LlamaIndex and Haystack integrations share: one collection of the facade's store,
bound to the vector space that fills it.

The frameworks disagree on who embeds. A LangChain vector store is handed an ``Embeddings`` object (or
none, and then vectorseam's configured embedder does it); LlamaIndex nodes and Haystack documents
arrive with vectors the framework already computed. :class:`BoundCollection` serves both cases with
the rule the rest of vectorseam keeps: a collection records the fingerprint of the space its vectors
live in (:mod:`vectorseam.embedding`), and text is only ever embedded by the embedder whose
fingerprint that is. Everything goes through the facade's store, so the BM25 sidecar stays in step with
every write and hybrid search works on whichever backend the configuration selects.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from vectorseam.api import VectorSeamAPI
from vectorseam.client import VectorSeam
from vectorseam.config import Settings
from vectorseam.embedding import FINGERPRINT_KEY, Embedder, WordTokens, check_embedder
from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.filters import FilterLike
from vectorseam.query import Query, query_of, vector_query
from vectorseam.types import CollectionInfo, CollectionSpec, Hit, Metric, Record

if TYPE_CHECKING:  # both sides of the API satisfy the protocol the integrations are written against
    from vectorseam.remote import RemoteVectorSeam

    _local: type[VectorSeamAPI] = VectorSeam
    _remote: type[VectorSeamAPI] = RemoteVectorSeam

T = TypeVar("T")


def open_vectorseam(
    vectorseam: VectorSeamAPI | None = None,
    config_file: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> VectorSeamAPI:
    """The facade an integration runs over: the one given (a :class:`VectorSeam`, or a
    :class:`~vectorseam.remote.RemoteVectorSeam` for a remote service), or one built from settings or a
    config file (``vectorseam.toml`` / ``VECTORSEAM_*`` when neither is given)."""
    if sum(x is not None for x in (vectorseam, config_file, settings)) > 1:
        raise ValidationError("give one of a VectorSeam, settings or a config file, not several")
    if vectorseam is not None:
        return vectorseam
    return VectorSeam(settings=settings, config_file=config_file)


class FunctionEmbedder(WordTokens):
    """A framework's embedding model seen as a vectorseam :class:`~vectorseam.embedding.Embedder`.

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


class BoundCollection:
    """One collection of a facade's store and the vector space that fills it.

    With an ``embedder`` (a :class:`FunctionEmbedder`, or ``None`` for the facade's configured one) texts
    are embedded here and the collection is created with that embedder's fingerprint, exactly as
    ``vectorseam ingest`` would (so either can read what the other wrote). With ``source`` instead, the
    vectors come from the framework: the collection is created on the first write, with the dimension
    of those vectors and the fingerprint ``<source>:<dimension>`` (or ``fingerprint``, when the framework
    embedded with a model vectorseam knows: then vectorseam's own text search reads the collection too),
    and searches take vectors.

    The name is resolved through the facade's aliases on every call (an alias may be switched by
    ``vectorseam reindex`` while a framework app runs). A collection that does not exist yet reads as
    empty: frameworks query before their first write.
    """

    def __init__(self, vs: VectorSeamAPI, collection: str, embedder: Embedder | None = None,
                 source: str | None = None, metric: Metric = "cosine", fingerprint: str | None = None) -> None:
        if (embedder is not None) and (source is not None):
            raise ValidationError("a collection is filled by an embedder or with the framework's vectors, not both")
        if fingerprint is not None and source is None:
            raise ValidationError("a fingerprint names the space of the framework's vectors: give it with source=")
        CollectionSpec(collection, 1, metric)  # validates the name and the metric up front
        self.vs = vs
        self.collection = collection
        self.metric: Metric = metric
        self.source = source
        self.fingerprint = fingerprint
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
            return self.vs.collection_info(self.collection)
        except CollectionNotFoundError:
            return None

    def ensure(self, dimension: int | None = None) -> CollectionInfo:
        """The collection, created if need be (``dimension``: that of the framework's vectors)."""
        if self.source is None:
            embedder = self.embedder
            info = self.vs.create_collection(self.collection, embedder.dimension, self.metric,
                                             {FINGERPRINT_KEY: embedder.fingerprint})
            check_embedder(info, embedder)
            return info
        existing = self.info()
        if existing is not None:
            return existing  # the store checks each vector's dimension against it
        if dimension is None:
            raise ValidationError(f"collection {self.collection!r} does not exist yet and no vector says its "
                                  "dimension")
        return self.vs.create_collection(self.collection, dimension, self.metric,
                                         {FINGERPRINT_KEY: self.fingerprint or f"{self.source}:{dimension}"})

    def _or_empty(self, fn: Callable[[str], T], empty: T) -> T:
        """``fn`` of the collection's name (which the facade or the server resolves: it may be an alias);
        ``empty`` for a collection that does not exist yet."""
        try:
            return fn(self.collection)
        except CollectionNotFoundError:
            return empty

    # -- records --------------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.embedder.embed_documents(list(texts))

    def upsert(self, records: Sequence[Record]) -> int:
        """Write records (with vectors) into the collection, which must exist (see :meth:`ensure`)."""
        if not records:
            return 0
        return self.vs.upsert(records, self.collection).written  # durable on return

    def fetch(self, ids: Sequence[str], include_vectors: bool = False) -> list[Record]:
        if not ids:
            return []
        return self._or_empty(lambda n: self.vs.fetch(list(ids), n, include_vectors=include_vectors), [])

    def delete(self, ids: Sequence[str] | None = None, filter: FilterLike = None) -> int:
        return self._or_empty(lambda n: self.vs.delete(None if ids is None else list(ids), filter, n), 0)

    def count(self, filter: FilterLike = None) -> int:
        return self._or_empty(lambda n: self.vs.count(filter, n), 0)

    def scan(self, filter: FilterLike = None, include_vectors: bool = False) -> Iterator[Record]:
        """Every record ``filter`` admits, page by page (a cursor: valid while records are written)."""
        cursor: str | None = None
        while True:
            try:
                page = self.vs.scroll(self.collection, filter, 1000, cursor, include_vectors)
            except CollectionNotFoundError:
                return
            yield from page.records
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def drop(self) -> bool:
        return self._or_empty(self.vs.drop_collection, False)

    # -- search ---------------------------------------------------------------------------------------
    def _query(self, query: Query) -> list[Hit]:
        return self._or_empty(lambda n: self.vs.query(query, n).hits, [])

    def search_text(self, query: str, k: int, filter: FilterLike = None, mode: str = "dense",
                    mmr: float | None = None) -> list[Hit]:
        """Dense, BM25 or hybrid search for text, embedded by the collection's embedder: the facade's (or the
        server's), or the framework's, whose vector then goes along with the text."""
        if self._embedder is None or (mode == "bm25" and mmr is None):
            return self._query(query_of(text=query, k=k, filter=filter, mode=mode, mmr=mmr))
        info = self.info()
        if info is None:
            return []
        check_embedder(info, self._embedder)  # a collection filled by another model is refused, as the facade does
        return self.search_given(query, self._embedder.embed_query(query), k, filter, mode, mmr, None)

    def search_vector(self, vector: npt.ArrayLike, k: int, filter: FilterLike = None,
                      include_vectors: bool = False) -> list[Hit]:
        return self._query(vector_query(vector, k, filter, include_vectors=include_vectors))

    def mmr_vector(self, vector: npt.ArrayLike, k: int, fetch_k: int, lambda_: float,
                   filter: FilterLike = None) -> list[Hit]:
        """The top ``fetch_k`` neighbours of ``vector``, re-ranked by MMR down to ``k`` (``lambda_`` = 1 is
        plain relevance, 0 pure diversity): the search's own MMR, over the facade or the server."""
        return self._query(vector_query(vector, k, filter, mmr=lambda_, candidates=max(k, fetch_k)))

    def search_given(self, query: str, vector: npt.ArrayLike | None, k: int, filter: FilterLike = None,
                     mode: str = "hybrid", mmr: float | None = None,
                     weights: tuple[float, float] | None = (1.0, 1.0)) -> list[Hit]:
        """Dense, hybrid or BM25 search (optionally MMR) where the framework supplies the query's vector (the
        dense side; the text is the keyword side). ``weights`` are the RRF weights of the dense and the BM25
        ranking. The collection's tuned profile applies as for vectorseam's own search: the framework's
        vector is in the collection's space (its fingerprint was checked), the space the profile was tuned in."""
        given = None if vector is None else tuple(np.asarray(vector, dtype=np.float32).ravel().tolist())
        if given is None and (mode != "bm25" or mmr is not None):
            raise ValidationError("this search needs the query's embedding as well as its text")
        return self._query(query_of(text=query, vector=given, k=k, filter=filter, mode=mode, mmr=mmr,
                                    weights=weights))

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
