"""The Python API, and the one orchestration path: the CLI and the HTTP service call this facade.

    from vectorseam import VectorSeam
    with VectorSeam() as vs:
        vs.ingest_file("reviews.csv", collection="reviews", text_template="{Summary}: {Text}")
        for hit in vs.search("delicious beans", collection="reviews", k=5):
            print(hit.score, hit.text)

It builds the configured store and embedder and runs the layers below it (retrieval, ingest,
analysis). ``vectorseam.cli`` and ``vectorseam.service`` import only this module (with the config,
types and errors): they add a terminal or HTTP on top (limits, keys, metrics, output) and decide
nothing about retrieval. An import-linter contract in pyproject.toml keeps it so.

The store is wrapped twice: an :class:`~vectorseam.stores.wrappers.ObservedStore` reports every call
to the observers added with :meth:`VectorSeam.observe_store` (the service's timing and error
metrics hook in there), and a :class:`~vectorseam.retrieval.hybrid.SyncedStore` keeps each
collection's BM25 sidecar in step with every write made through the facade.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from vectorseam.config import Settings, load_settings
from vectorseam.datadir import DataDir
from vectorseam.embedders import Embedder, build_embedder
from vectorseam.embedders.base import FINGERPRINT_KEY
from vectorseam.embedders.fingerprint import ensure_collection_for
from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike
from vectorseam.ingest.job import IngestOptions, IngestReport, JobState, Progress, ingest_source
from vectorseam.ingest.sources import Document, DocumentsSource, RowSpec, Source
from vectorseam.retrieval.search import Searcher
from vectorseam.retrying import RetryPolicy, call_with_retry
from vectorseam.store import Flushable, VectorStore
from vectorseam.stores.registry import open_store
from vectorseam.stores.wrappers import ObservedStore, StoreCall, StoreObserver
from vectorseam.types import CollectionInfo, Hit, Record

if TYPE_CHECKING:  # loaded on first use (see __getattr__ below); re-exported for the CLI and the service
    from vectorseam.analysis.classify import ClassificationResult
    from vectorseam.analysis.classify import LabelSpec as LabelSpec
    from vectorseam.analysis.clustering import ClusteringResult
    from vectorseam.analysis.customize import TrainingOptions as TrainingOptions
    from vectorseam.analysis.customize import TrainingReport
    from vectorseam.analysis.dedup import DedupResult, Method
    from vectorseam.analysis.maps import PROJECTIONS as PROJECTIONS
    from vectorseam.analysis.maps import Projection
    from vectorseam.analysis.pairs import Pair
    from vectorseam.analysis.pairs import read_pairs as read_pairs
    from vectorseam.embedders.custom_matrix import CustomMatrix
    from vectorseam.ingest.aliases import AliasMap
    from vectorseam.ingest.migrate import MigrationProgress
    from vectorseam.ingest.migrate import MigrationReport as MigrationReport
    from vectorseam.ingest.reindex import ReindexProgress
    from vectorseam.ingest.reindex import ReindexReport as ReindexReport
    from vectorseam.retrieval.evaluation import EvalReport as EvalReport
    from vectorseam.retrieval.evaluation import format_table as format_table
    from vectorseam.retrieval.hybrid import DEFAULT_RRF_K as DEFAULT_RRF_K
    from vectorseam.retrieval.hybrid import MODES as MODES
    from vectorseam.retrieval.hybrid import RetrievalSearcher
    from vectorseam.retrieval.qa import Answer as Answer
    from vectorseam.retrieval.qa import AnswerStream as AnswerStream
    from vectorseam.retrieval.qa import Passage as Passage
    from vectorseam.retrieval.qa import QuestionAnswerer
    from vectorseam.retrieval.recommend import STRATEGIES as STRATEGIES
    from vectorseam.retrieval.tune import TuneReport
    from vectorseam.retrieval.tune_profile import ProfileBook, RetrievalProfile
    from vectorseam.state import StateDB

# Names the CLI and the service use from the layers below, loaded when first asked for: the
# analysis layer pulls in scikit-learn and matplotlib, which most commands never need.
_LAZY_EXPORTS: dict[str, str] = {
    "Answer": "vectorseam.retrieval.qa",
    "AnswerStream": "vectorseam.retrieval.qa",
    "Passage": "vectorseam.retrieval.qa",
    "DEFAULT_RRF_K": "vectorseam.retrieval.hybrid",
    "MODES": "vectorseam.retrieval.hybrid",
    "STRATEGIES": "vectorseam.retrieval.recommend",
    "EvalReport": "vectorseam.retrieval.evaluation",
    "format_table": "vectorseam.retrieval.evaluation",
    "LabelSpec": "vectorseam.analysis.classify",
    "TrainingOptions": "vectorseam.analysis.customize",
    "PROJECTIONS": "vectorseam.analysis.maps",
    "read_pairs": "vectorseam.analysis.pairs",
    "MigrationReport": "vectorseam.ingest.migrate",
    "ReindexReport": "vectorseam.ingest.reindex",
}


__all__ = [
    "FINGERPRINT_KEY", "Document", "IngestReport", "PreparedIngest", "Progress", "RetryPolicy", "StoreCall",
    "StoreObserver", "Upserted", "VectorSeam", "migrate", "store_from_settings", "store_key_of", "store_options",
    *_LAZY_EXPORTS,
]


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def store_options(settings: Settings) -> dict[str, Any]:
    """The configured store's options; the embedded memory store persists under ``data_dir`` by default."""
    options = settings.store.factory_options()
    if settings.store.name == "memory" and "path" not in options:
        options["path"] = str(DataDir.at(settings.data_dir).memory_store)
    return options


def store_from_settings(settings: Settings) -> VectorStore:
    """Open the configured store (without the facade's wrappers: migrations copy between raw stores)."""
    return open_store(settings.store.name, store_options(settings))


def store_key_of(settings: Settings) -> str:
    """Identifies the configured store in job state (record manager, aliases) without secrets."""
    from vectorseam.ingest.record_manager import store_identity

    return store_identity(settings.store.name, store_options(settings))


class Upserted(NamedTuple):
    written: int
    embedded: int  # records whose vector was computed here from their text


@dataclass(frozen=True)
class PreparedIngest:
    """An ingest whose source and target were checked (the collection exists for this embedder);
    :meth:`run` does the work, now or later (the service answers 202 and runs it on a job thread)."""

    collection: str
    _run: Callable[[Progress | None], IngestReport]

    def run(self, progress: Progress | None = None) -> IngestReport:
        return self._run(progress)


class VectorSeam:
    def __init__(self, settings: Settings | None = None, config_file: str | os.PathLike[str] | None = None,
                 **overrides: Any) -> None:
        self.settings = settings or load_settings(config_file, **overrides)

    # -- the store, the embedder, and the hook for observing store calls ------------------------------
    @cached_property
    def data_dir(self) -> DataDir:
        """Where this configuration keeps its files (see :mod:`vectorseam.datadir`)."""
        return DataDir.at(self.settings.data_dir)

    @cached_property
    def state(self) -> StateDB:
        """The data directory's state database: aliases and migration progress."""
        from vectorseam.state import StateDB

        return StateDB(self.data_dir)

    @cached_property
    def _observed(self) -> ObservedStore:
        return ObservedStore(store_from_settings(self.settings))

    @cached_property
    def store(self) -> VectorStore:
        """The configured store, observed, and wrapped so every write also keeps its BM25 sidecar in step."""
        from vectorseam.retrieval.hybrid import SyncedStore

        return SyncedStore(self._observed, self.sidecar_root)

    @cached_property
    def sidecar_root(self) -> Path:
        s = self.settings
        return self.data_dir.bm25_sidecar(s.store.name, s.store.factory_options())

    def observe_store(self, observer: StoreObserver) -> Callable[[], None]:
        """Call ``observer`` with a :class:`StoreCall` (store, operation, seconds, error) after every call
        this facade makes to the store, BM25 sidecar reads included; returns the function that stops it.

        The HTTP service times store calls and counts store failures this way. Opens the store."""
        return self._observed.add_observer(observer)

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings.embedder)

    @property
    def model_name(self) -> str:
        """The embedding model's name (its fingerprint for an embedder without one, e.g. a customized one)."""
        from vectorseam.embedders.local import LocalEmbedder
        from vectorseam.embedders.openai_api import OpenAIEmbedder

        embedder = self.embedder
        if isinstance(embedder, LocalEmbedder):
            return embedder.model_name
        if isinstance(embedder, OpenAIEmbedder):
            return embedder.model
        return embedder.fingerprint

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The embedder's document vectors of ``texts``, one row each."""
        return np.asarray(self.embedder.embed_documents(list(texts)), dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Word pieces by the local model's own tokenizer; whitespace-separated words for other embedders."""
        from vectorseam.embedders.local import LocalEmbedder

        if isinstance(self.embedder, LocalEmbedder):
            encoded = self.embedder.tokenizer(list(texts), add_special_tokens=True, truncation=True)
            return sum(len(ids) for ids in encoded["input_ids"])
        return sum(len(t.split()) for t in texts)

    @cached_property
    def retrieval(self) -> RetrievalSearcher:
        from vectorseam.retrieval.hybrid import RetrievalSearcher

        return RetrievalSearcher(self.store, self.embedder, self.sidecar_root, profiles=self.profiles)

    @property
    def searcher(self) -> Searcher:
        """Dense search (the retrieval searcher's, so the fingerprint checks are shared)."""
        return self.retrieval.dense

    # -- collections and aliases ---------------------------------------------------------------------
    def resolve(self, collection: str | None) -> str:
        """The collection a name means (the configured one for None); aliases resolve to their target."""
        return self.aliases.resolve(collection or self.settings.collection)

    def collections(self) -> list[CollectionInfo]:
        return self.store.collections()

    def collection_info(self, collection: str | None = None) -> CollectionInfo:
        return self.store.collection_info(self.resolve(collection))

    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection``, which must exist."""
        self.store.collection_info(collection)
        self.aliases.set(alias, collection)

    # -- search ---------------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, filter: FilterLike = None,
               collection: str | None = None) -> list[Hit]:
        return self.searcher.search(self.resolve(collection), query, k, filter)

    def search_many(self, queries: list[str], k: int = 10, filter: FilterLike = None,
                    collection: str | None = None) -> list[list[Hit]]:
        return self.searcher.search_many(self.resolve(collection), queries, k, filter)

    def retrieve(self, query: str, k: int = 10, filter: FilterLike = None, collection: str | None = None,
                 mode: str = "dense", mmr: float | None = None, profile: bool = True) -> list[Hit]:
        """Search in ``mode`` dense, bm25 or hybrid; ``mmr`` (a lambda in [0, 1]) re-ranks for diversity.
        The collection's tuned profile (:meth:`tune_beir`) applies unless ``profile`` is False."""
        return self.retrieval.search(self.resolve(collection), query, k, filter, mode, mmr, profile)

    def retrieve_many(self, queries: Sequence[str], k: int = 10, filter: FilterLike = None,
                      collection: str | None = None, mode: str = "dense",
                      mmr: float | None = None, profile: bool = True) -> list[list[Hit]]:
        """Like :meth:`retrieve` for several queries (plain dense ones are embedded as one batch)."""
        return self.retrieval.search_many(self.resolve(collection), queries, k, filter, mode, mmr, profile)

    def search_vector(self, vector: npt.ArrayLike, k: int = 10, filter: FilterLike = None,
                      collection: str | None = None, mmr: float | None = None) -> list[Hit]:
        """Search by a vector of the collection's dimension; ``mmr`` re-ranks for diversity."""
        return self.retrieval.search_vector(self.resolve(collection), vector, k, filter, mmr)

    def recommend(self, positive: Sequence[str] | str, negative: Sequence[str] | str = (), k: int = 10,
                  filter: FilterLike = None, strategy: str = "average_vector",
                  collection: str | None = None) -> list[Hit]:
        from vectorseam.retrieval.recommend import recommend

        return recommend(self.store, self.resolve(collection), positive, negative, k, filter, strategy)

    # -- question answering and evaluation -------------------------------------------------------------
    @property
    def llm_configured(self) -> bool:
        """Whether answers are written by a language model (else they are extracted from the passages)."""
        return self.settings.llm.configured

    def answerer(self, k: int = 5, budget: int = 1500, mode: str = "dense") -> QuestionAnswerer:
        from vectorseam.retrieval.llm import ChatLLM
        from vectorseam.retrieval.qa import QuestionAnswerer

        llm = ChatLLM(self.settings.llm) if self.llm_configured else None
        return QuestionAnswerer(self.retrieval, self.embedder, llm, budget=budget, k=k, mode=mode)

    def ask(self, question: str, k: int = 5, budget: int = 1500, mode: str = "dense",
            filter: FilterLike = None, collection: str | None = None) -> Answer:
        return self.answerer(k, budget, mode).ask(self.resolve(collection), question, filter)

    def ask_stream(self, question: str, k: int = 5, budget: int = 1500, mode: str = "dense",
                   filter: FilterLike = None, collection: str | None = None) -> AnswerStream:
        """Passages are retrieved before this returns (so retrieval errors raise here); iterate for the text."""
        return self.answerer(k, budget, mode).stream(self.resolve(collection), question, filter)

    def evaluate_beir(self, directory: str | os.PathLike[str], split: str = "test",
                      modes: tuple[str, ...] = ("dense", "bm25", "hybrid"), collection: str | None = None,
                      rrf_k: float | None = None, profile: bool = True) -> EvalReport:
        """With the collection's tuned profile unless ``profile`` is False (refused on the split it was tuned on)."""
        from vectorseam.retrieval.evaluation import run_beir

        if rrf_k is not None:
            self.retrieval.rrf_k = rrf_k
        return run_beir(self.retrieval, Path(directory), split, modes, collection, use_profile=profile)

    # -- records ---------------------------------------------------------------------------------------
    def upsert(self, records: Sequence[Record], collection: str | None = None) -> Upserted:
        """Insert or replace records, embedding the text of those given without a vector; durable on return."""
        name = self.resolve(collection)
        to_embed = [i for i, r in enumerate(records) if r.vector is None]
        for i in to_embed:
            if not records[i].text.strip():
                raise ValidationError(f"records[{i}] (id {records[i].id!r}): no vector and no text to "
                                      "embed; give one of them")
        ensure_collection_for(self.store, name, self.embedder)
        batch = list(records)
        if to_embed:
            vectors = self.embedder.embed_documents([records[i].text for i in to_embed])
            for i, vector in zip(to_embed, vectors, strict=True):
                batch[i] = Record(batch[i].id, vector, batch[i].text, batch[i].metadata)
        written = self.store.upsert(name, batch)
        self.flush()
        return Upserted(written, len(to_embed))

    def fetch(self, ids: Sequence[str], collection: str | None = None, include_vectors: bool = False) -> list[Record]:
        return self.store.fetch(self.resolve(collection), ids, include_vectors=include_vectors)

    def delete(self, ids: Sequence[str] | None = None, filter: FilterLike = None,
               collection: str | None = None) -> int:
        """Delete by ids or by filter (exactly one of them); durable on return."""
        deleted = self.store.delete(self.resolve(collection), ids, filter)
        self.flush()
        return deleted

    def flush(self) -> None:
        """Make buffered writes durable (the memory store writes its files); other stores persist on their own."""
        if isinstance(self.store, Flushable):
            self.store.flush()

    # -- ingest ---------------------------------------------------------------------------------------
    def prepare_ingest(
        self,
        source: str | os.PathLike[str] | Sequence[Document] | Sequence[str | os.PathLike[str]],
        collection: str | None = None,
        id_field: str | None = None,
        text_field: str = "text",
        text_template: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        batch_size: int = 64,
        strict: bool = False,
        **options: Any,
    ) -> PreparedIngest:
        """Check an ingest before doing it: the source (a file or directory path, or documents in
        memory) is readable and the collection exists for this embedder (created if need be), so an
        embedder mismatch or a bad path fails here. Arguments as for :meth:`ingest_file`."""
        name = self.resolve(collection)
        engine = options.pop("engine", None) or self.settings.ingest.engine
        ray_options = {key: options.pop(f"ray_{key}") for key in ("address", "workers") if f"ray_{key}" in options}
        if engine == "ray":
            return self._prepare_ray_ingest(source, name, RowSpec(id_field, text_field, text_template, metadata_fields),
                                            batch_size, strict, ray_options, options)
        if engine != "local":
            raise ValidationError(f"ingest engine must be 'local' or 'ray', got {engine!r}")
        if ray_options:
            raise ValidationError("ray_address and ray_workers are options of the Ray engine (engine='ray')")
        src: Source
        if isinstance(source, str | os.PathLike):
            src = Source(Path(source), RowSpec(id_field, text_field, text_template, metadata_fields))
        else:
            docs = [d for d in source if isinstance(d, Document)]
            if len(docs) != len(source):
                raise ValidationError("several paths at once are read by the Ray engine (engine='ray'); the local "
                                      "engine takes one file or directory")
            src = DocumentsSource(Path(f"request:{name}"), RowSpec(), tuple(docs))
        src.check()
        state = JobState.under(self.data_dir, self.store_key, options.pop("use_cache", True),
                               options.pop("embed_cache", None))
        opts = IngestOptions(batch_size=batch_size, strict=strict, **options)
        call_with_retry("creating the collection", lambda: ensure_collection_for(self.store, name, self.embedder),
                        opts.retry)

        def run(progress: Progress | None) -> IngestReport:
            return ingest_source(self.store, self.embedder, name, src, state, opts, progress)

        return PreparedIngest(name, run)

    def _prepare_ray_ingest(self, source: str | os.PathLike[str] | Sequence[Any], name: str, spec: RowSpec,
                            batch_size: int, strict: bool, ray_options: dict[str, Any],
                            options: dict[str, Any]) -> PreparedIngest:
        """The same ingest on a Ray cluster (:mod:`vectorseam.ingest.ray_engine`): files, globs or lists of them."""
        from vectorseam.ingest.ray_engine import (
            check_ray_options,
            check_store_for_ray,
            expand_sources,
            ingest_on_ray,
            ray_cluster_from,
        )
        from vectorseam.retrieval.hybrid import SyncedStore

        paths = [source] if isinstance(source, str | os.PathLike) else list(source)
        if not all(isinstance(p, str | os.PathLike) for p in paths):
            raise ValidationError("the Ray engine reads files and directories (paths or globs), not documents in "
                                  "memory")
        sources = expand_sources(paths, spec)
        cluster = ray_cluster_from(self.settings, ray_options)
        state = JobState.under(self.data_dir, self.store_key, options.pop("use_cache", True),
                               options.pop("embed_cache", None))
        opts = IngestOptions(batch_size=batch_size, strict=strict, **options)
        check_ray_options(opts, cluster)
        check_store_for_ray(self.settings.store.name, store_options(self.settings))
        call_with_retry("creating the collection", lambda: ensure_collection_for(self.store, name, self.embedder),
                        opts.retry)

        def run(progress: Progress | None) -> IngestReport:
            try:
                return ingest_on_ray(self.store, self.embedder, name, sources, store_name=self.settings.store.name,
                                     store_options=store_options(self.settings), store_key=self.store_key,
                                     embedder_settings=self.settings.embedder, cluster=cluster, options=opts,
                                     embed_cache=state.embed_cache, progress=progress)
            finally:  # the workers wrote past this facade's BM25 sidecar: rebuilt on its next use
                if isinstance(self.store, SyncedStore):
                    self.store.sidecar(name).discard()

        return PreparedIngest(name, run)

    def ingest_file(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        collection: str | None = None,
        id_field: str | None = None,
        text_field: str = "text",
        text_template: str | None = None,
        metadata_fields: list[str] | None = None,
        batch_size: int = 64,
        strict: bool = False,
        progress: Progress | None = None,
        **options: Any,
    ) -> IngestReport:
        """Ingest a .csv/.tsv/.jsonl/.parquet file or a directory of .txt/.md/.html/.pdf files.

        ``options`` are :class:`vectorseam.ingest.job.IngestOptions` fields (cleanup, verify, chunk_tokens,
        rejects_path, retry, ...), plus ``use_cache=False`` to bypass the embedding cache or
        ``embed_cache=PATH`` to use another cache file.

        ``engine="ray"`` (default: ``[ingest] engine``) runs it on a Ray cluster (``ray_address``:
        ``"auto"`` or ``"ray://HOST:PORT"``; ``ray_workers``: embedding actors), where ``path`` may also
        be a glob or a list of paths: see :mod:`vectorseam.ingest.ray_engine`.
        """
        return self.prepare_ingest(path, collection, id_field, text_field, text_template, metadata_fields,
                                   batch_size, strict, **options).run(progress)

    def ingest_documents(self, documents: Sequence[Document], collection: str | None = None, batch_size: int = 64,
                         progress: Progress | None = None, **options: Any) -> IngestReport:
        """Ingest documents held in memory, incrementally like a file (their source is ``request:<collection>``)."""
        return self.prepare_ingest(documents, collection, batch_size=batch_size, **options).run(progress)

    # ---- analysis (vectorseam.analysis): any collection of any store, read through scan
    def cluster(self, collection: str | None = None, k: int | None = None, k_range: tuple[int, int] = (2, 10),
                filter: FilterLike = None, seed: int = 0, name: bool = False,
                assign_field: str | None = None) -> ClusteringResult:
        from vectorseam.analysis.clustering import cluster_collection

        return cluster_collection(self.store, self.resolve(collection), k, k_range, filter, seed,
                                  llm=self.settings.llm if name else None, assign_field=assign_field)

    def cluster_map(self, result: ClusteringResult, prefix: str | os.PathLike[str],
                    projection: Projection = "tsne", color_by: str = "cluster",
                    seed: int = 0) -> tuple[Path, Path]:
        from vectorseam.analysis.clustering import map_categories
        from vectorseam.analysis.maps import write_map

        data = result.data
        return write_map(Path(prefix), data.vectors, data.ids, data.texts, map_categories(result, color_by),
                         projection, f"{result.collection}: coloured by {color_by}", seed)

    def dedup(self, collection: str | None = None, threshold: float = 0.95,
              method: Method = "auto",
              filter: FilterLike = None) -> DedupResult:
        from vectorseam.analysis.dedup import find_duplicates

        return find_duplicates(self.store, self.resolve(collection), threshold, method, filter)

    def classify(self, collection: str | None, labels: Sequence[LabelSpec | str], filter: FilterLike = None,
                 write_field: str | None = None) -> ClassificationResult:
        from vectorseam.analysis.classify import LabelSpec, classify_collection

        specs = [lab if isinstance(lab, LabelSpec) else LabelSpec.parse(lab) for lab in labels]
        return classify_collection(self.store, self.embedder, self.resolve(collection), specs, filter,
                                   write_field)

    def train_custom_matrix(self, pairs: Sequence[Pair],
                            options: TrainingOptions | None = None) -> tuple[CustomMatrix, TrainingReport]:
        from vectorseam.analysis.customize import train_matrix
        from vectorseam.embedders.custom_matrix import CustomizedEmbedder

        base = self.embedder.base if isinstance(self.embedder, CustomizedEmbedder) else self.embedder
        return train_matrix(pairs, base.embed_documents, base.fingerprint, options)

    def apply_custom_matrix(self, collection: str, matrix: str | os.PathLike[str] | CustomMatrix,
                            into: str) -> tuple[int, CustomMatrix]:
        from vectorseam.analysis.customize import apply_matrix
        from vectorseam.embedders.custom_matrix import CustomMatrix

        custom = matrix if isinstance(matrix, CustomMatrix) else CustomMatrix.load(Path(matrix))
        return apply_matrix(self.store, collection, into, custom), custom

    # -- load jobs: aliases, reindex (vectorseam.ingest.aliases, vectorseam.ingest.reindex) -------------
    @cached_property
    def store_key(self) -> str:
        """Identifies the configured store in job state (record manager, aliases) without secrets."""
        return store_key_of(self.settings)

    @cached_property
    def aliases(self) -> AliasMap:
        from vectorseam.ingest.aliases import AliasMap

        return AliasMap(self.state, self.store_key)

    def reindex(self, collection: str, embedder: str, model: str | None = None, base_url: str | None = None,
                dimension: int | None = None, into: str | None = None, batch_size: int = 64,
                progress: ReindexProgress | None = None) -> tuple[ReindexReport, str]:
        """Re-embed ``collection`` with another embedder ('local' or 'openai', the configured one's
        settings otherwise) into a new collection, then point the alias ``collection`` at it.
        Returns the report and the new embedder's fingerprint."""
        from vectorseam.ingest.reindex import reindex_collection

        if embedder not in ("local", "openai"):
            raise ValidationError(f"--embedder must be 'local' or 'openai', got {embedder!r}")
        overrides: dict[str, Any] = {"name": embedder}
        if model is not None:
            overrides["model"] = model
        if base_url is not None:
            overrides["base_url"] = base_url
        if dimension is not None:
            overrides["dimension"] = dimension
        if embedder != self.settings.embedder.name and model is None:
            overrides["model"] = None
        new = build_embedder(self.settings.embedder.model_copy(update=overrides))
        state = JobState.under(self.data_dir, self.store_key)
        report = reindex_collection(self.store, self.aliases, collection, new, state, into, batch_size,
                                    progress=progress)
        return report, new.fingerprint

    def close(self) -> None:
        if "state" in self.__dict__:
            self.state.close()
        if "store" in self.__dict__:
            self.store.close()
        elif "_observed" in self.__dict__:
            self._observed.close()

    def __enter__(self) -> VectorSeam:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tuned retrieval profiles (vectorseam.retrieval.tune) ------------------------------------------
    @cached_property
    def profiles(self) -> ProfileBook:
        """Where this store's collections keep their tuned profiles: ``DATA_DIR/profiles/<store hash>/``."""
        from vectorseam.retrieval.tune_profile import ProfileBook

        return ProfileBook(self.data_dir.profiles(self.store_key), self.embedder)

    def tune(self, queries: dict[str, str], qrels: dict[str, dict[str, int]], collection: str | None = None,
             dataset: str = "", split: str = "", save: bool = True, say: Callable[[str], None] | None = None,
             **options: Any) -> tuple[RetrievalProfile, TuneReport]:
        """Learn a retrieval profile for ``collection`` from judged queries (``qrels[query id][document id]``
        = grade, > 0 relevant) by cross-validation, and save it with the collection (unless ``save`` is
        False); search and eval use it from then on unless told not to. ``options`` are
        :class:`vectorseam.retrieval.tune.TuneOptions` fields (folds, seed, adapter, mmr, ...)."""
        from vectorseam.retrieval.tune import TuneOptions, tune_collection

        name = self.resolve(collection)
        profile, report = tune_collection(self.retrieval, name, queries, qrels, dataset, split,
                                          TuneOptions(**options), say)
        return (self._save_profile(name, profile, report) if save else profile), report

    def tune_beir(self, directory: str | os.PathLike[str], split: str = "train", collection: str | None = None,
                  save: bool = True, say: Callable[[str], None] | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  **options: Any) -> tuple[RetrievalProfile, TuneReport]:
        """Embed a BEIR data set (as ``eval beir`` does, reusing its collection) and tune on one split's
        judgements; arguments as for :meth:`tune`."""
        from vectorseam.retrieval.tune import TuneOptions, tune_beir

        name, profile, report = tune_beir(self.retrieval, Path(directory), split, collection,
                                          TuneOptions(**options), say, progress)
        return (self._save_profile(name, profile, report) if save else profile), report

    def _save_profile(self, name: str, profile: RetrievalProfile, report: TuneReport) -> RetrievalProfile:
        report.profile_path = str(self.profiles.path(name))
        saved = replace(profile, report=report.to_dict())
        self.profiles.save(name, saved)
        return saved

    def profile(self, collection: str | None = None) -> RetrievalProfile | None:
        """The collection's saved profile, unchecked (to show it), or None."""
        return self.profiles.find(self.resolve(collection))

    def remove_profile(self, collection: str | None = None) -> bool:
        """Forget the collection's tuned profile; search goes back to the untuned defaults."""
        return self.profiles.remove(self.resolve(collection))


def migrate(collection: str, from_config: str | os.PathLike[str], to_config: str | os.PathLike[str],
            to_collection: str | None = None, batch_size: int = 500, sample: int = 200,
            progress: MigrationProgress | None = None) -> MigrationReport:
    """Copy ``collection`` between the stores two configuration files name; resumable (the state
    lives under the target's data directory), verified on a sample at the end."""
    from vectorseam.ingest.migrate import migrate_collection
    from vectorseam.state import MigrationState, StateDB

    src_settings, dst_settings = load_settings(from_config), load_settings(to_config)
    src_key, dst_key = store_key_of(src_settings), store_key_of(dst_settings)
    target_name = to_collection or collection
    if src_key == dst_key and target_name == collection:
        raise ValidationError("--from and --to name the same store and collection; nothing to migrate")
    key = f"{src_key}|{collection}|{dst_key}|{target_name}"
    state = StateDB(DataDir.at(dst_settings.data_dir))
    source = store_from_settings(src_settings)
    try:
        target = store_from_settings(dst_settings)
        try:
            return migrate_collection(source, target, collection, MigrationState(state, key), to_collection,
                                      batch_size, sample, progress=progress)
        finally:
            target.close()
    finally:
        source.close()
        state.close()
