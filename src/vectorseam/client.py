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
metrics hook in there), and a :class:`~vectorseam.stores.keyword_fallback.KeywordFallback` gives it
keyword and hybrid search whatever the backend, so every caller sees one kind of store.

Every search (``search``, ``search_vector``, ``recommend``, ``query``, ``ask``; the service's routes, the
CLI's commands and the framework integrations through them) is one typed :class:`~vectorseam.query.Query`
run by :class:`~vectorseam.retrieval.engine.QueryRunner`; the collection's tuned profile applies unless
``profile=False``. Ingest and tuning take typed options (:mod:`vectorseam.ingest_options`,
:mod:`vectorseam.tune_options`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vectorseam.api import QueryShortcuts
from vectorseam.config import Settings, load_settings
from vectorseam.datadir import DataDir
from vectorseam.embedders import build_embedder, model_name
from vectorseam.embedding import FINGERPRINT_KEY, Embedder, ensure_collection_for
from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.extras import require
from vectorseam.filters import FilterLike, parse_filter
from vectorseam.ingest.job import IngestReport, JobState, Progress, ingest_source
from vectorseam.ingest.migrate import MigrationProgress, MigrationReport
from vectorseam.ingest.reindex import ReindexProgress, ReindexReport
from vectorseam.ingest.sources import Document, DocumentsSource, RowSpec, Source
from vectorseam.ingest_options import IngestOptions
from vectorseam.query import (
    Answer,
    CollectionDescription,
    Query,
    ScrollPage,
    SearchResult,
    Upserted,
    text_query,
)
from vectorseam.retrying import call_with_retry
from vectorseam.store import VectorStore
from vectorseam.stores.keyword_fallback import KeywordFallback
from vectorseam.stores.registry import open_store
from vectorseam.stores.wrappers import ObservedStore, StoreCall, StoreObserver
from vectorseam.tune_options import FinetuneOptions, TrainingOptions, TuneOptions
from vectorseam.types import CollectionInfo, CollectionSpec, Hit, Metric, Record

if TYPE_CHECKING:  # the layers below, loaded where a method needs them (analysis pulls in scikit-learn)
    from pydantic import SecretStr

    from vectorseam.analysis.classify import ClassificationResult, LabelSpec
    from vectorseam.analysis.clustering import ClusteringResult
    from vectorseam.analysis.customize import TrainingReport
    from vectorseam.analysis.dedup import DedupResult, Method
    from vectorseam.analysis.fields import FieldSummary
    from vectorseam.analysis.map_points import ClusterMap
    from vectorseam.analysis.maps import Projection
    from vectorseam.analysis.pairs import Pair
    from vectorseam.embedders.custom_matrix import CustomMatrix
    from vectorseam.ingest.aliases import AliasMap
    from vectorseam.retrieval.engine import QueryRunner
    from vectorseam.retrieval.evaluation import EvalReport
    from vectorseam.retrieval.finetune import FinetuneReport
    from vectorseam.retrieval.hybrid import RetrievalSearcher
    from vectorseam.retrieval.qa import AnswerStream, QuestionAnswerer
    from vectorseam.retrieval.tune import TuneReport
    from vectorseam.retrieval.tune_profile import ProfileBook, RetrievalProfile
    from vectorseam.state import StateDB
    from vectorseam.stores.memory_doctor import Health, Recovery

# What the facade's methods take and return beyond the core's types: part of its API.
__all__ = [
    "Document", "IngestReport", "MigrationReport", "PreparedIngest", "Progress", "ReindexReport", "StoreCall",
    "StoreObserver", "VectorSeam", "migrate", "store_from_settings", "store_key_of", "store_options",
]


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


@dataclass(frozen=True)
class PreparedIngest:
    """An ingest whose source and target were checked (the collection exists for this embedder);
    :meth:`run` does the work, now or later (the service answers 202 and runs it on a job thread)."""

    collection: str
    _run: Callable[[Progress | None], IngestReport]

    def run(self, progress: Progress | None = None) -> IngestReport:
        return self._run(progress)


class VectorSeam(QueryShortcuts):
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
    def store(self) -> KeywordFallback:
        """The configured store, observed, with keyword and hybrid search for every collection (its own
        index where it has one, else the BM25 sidecar every write through here keeps in step)."""
        return KeywordFallback(self._observed, self.sidecar_root)

    @cached_property
    def sidecar_root(self) -> Path:
        return self.data_dir.bm25_sidecar(self.store_key)

    def observe_store(self, observer: StoreObserver) -> Callable[[], None]:
        """Call ``observer`` with a :class:`StoreCall` (store, operation, seconds, error) after every call
        this facade makes to the store, BM25 sidecar reads included; returns the function that stops it.

        The HTTP service times store calls and counts store failures this way. Opens the store."""
        return self._observed.add_observer(observer)

    def batch_concurrent_queries(self) -> bool:
        """Let single-vector queries from concurrent threads share one store call when the store scans a
        batch in one pass (the memory store; :mod:`vectorseam.stores.batched`): the HTTP service's
        requests in flight. Each still gets the hits it gets alone. True when the store is batched."""
        from vectorseam.stores.batched import BatchedQueries

        observed = self._observed
        if observed.capabilities.name != "memory":
            return False  # a database server runs concurrent queries in parallel already
        if not isinstance(observed.inner, BatchedQueries):
            observed.inner = BatchedQueries(observed.inner)
        return True

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings.embedder)

    @property
    def model_name(self) -> str:
        """The embedding model's name (the fingerprint of a customized space, which no model name describes)."""
        if self.settings.embedder.custom_matrix is not None:
            return self.embedder.fingerprint
        return model_name(self.settings.embedder)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The embedder's document vectors of ``texts``, one row each."""
        return np.asarray(self.embedder.embed_documents(list(texts)), dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> int:
        """The tokens the embedding model reads of ``texts`` (:meth:`vectorseam.embedding.Embedder.count_tokens`)."""
        return self.embedder.count_tokens(texts)

    def shared_database(self, explicit: SecretStr | None) -> str | None:
        """The PostgreSQL DSN for state that processes on several machines share (the Ray record manager,
        the service's job table): ``explicit`` when set, else the database the store lives in ('' when it
        connects through libpq's PG* variables; see ``Capabilities.database_option``), else None."""
        if explicit is not None and explicit.get_secret_value():
            return explicit.get_secret_value()
        option = self.store.capabilities.database_option
        if option is None:
            return None
        return str(store_options(self.settings).get(option) or "")

    @cached_property
    def retrieval(self) -> RetrievalSearcher:
        from vectorseam.retrieval.hybrid import RetrievalSearcher

        return RetrievalSearcher(self.store, self.embedder, profiles=self.profiles)

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

    def remove_alias(self, alias: str) -> bool:
        """Forget ``alias`` (the collection it names stays); False when there was no such alias."""
        return self.aliases.remove(alias)

    def list_aliases(self) -> dict[str, str]:
        """Every alias of this store and the collection it names."""
        return self.aliases.all()

    def create_collection(self, name: str, dimension: int | None = None, metric: Metric = "cosine",
                          metadata: Mapping[str, str] | None = None) -> CollectionInfo:
        """Create collection ``name`` (an alias creates its target), or return it when it exists alike.

        Without ``dimension`` it is made for the configured embedder (its dimension and fingerprint), as
        ingest makes it; with one, for vectors the caller brings, whose space ``metadata`` may name
        (``{"embedder": "..."}``). An existing collection of another dimension, metric or embedder raises."""
        from vectorseam.ingest.portable import ensure_spec

        target = self.resolve(name)
        if dimension is None:
            from vectorseam.embedding import collection_spec

            spec = collection_spec(target, self.embedder, metric)
            spec = CollectionSpec(target, spec.dimension, metric, {**dict(metadata or {}), **spec.metadata})
        else:
            spec = CollectionSpec(target, dimension, metric, dict(metadata or {}))
        info = ensure_spec(self.store, spec)
        return info

    def drop_collection(self, collection: str) -> bool:
        """Remove a collection, its records and its tuned profile; False if it did not exist. An alias
        drops the collection it names."""
        name = self.resolve(collection)
        self.remove_profile(name)
        dropped = self.store.drop_collection(name)
        return dropped

    def describe(self, collection: str | None = None) -> CollectionDescription:
        """A collection's spec, record count, embedder fingerprint, size, aliases and whether it is tuned."""
        info = self.collection_info(collection)
        return CollectionDescription(
            info, info.metadata.get(FINGERPRINT_KEY), info.count * info.dimension * 4,
            sorted(a for a, target in self.aliases.all().items() if target == info.name),
            self.profile(info.name) is not None)

    def count(self, filter: FilterLike = None, collection: str | None = None) -> int:
        """How many records the collection holds (matching ``filter`` if given)."""
        return self.store.count(self.resolve(collection), filter)

    def scroll(self, collection: str | None = None, filter: FilterLike = None, limit: int = 1000,
               cursor: str | None = None, include_vectors: bool = False) -> ScrollPage:
        """A page of the records ``filter`` admits; pass ``page.next_cursor`` back for the next one. The
        cursor is a position (a record key), valid while records are written: see :mod:`vectorseam.retrieval.scroll`."""
        from vectorseam.retrieval.scroll import scroll

        return scroll(self.store, self.resolve(collection), limit, cursor, filter, include_vectors)

    # -- export, import, snapshots (vectorseam.ingest.portable) -------------------------------------------
    def export(self, collection: str | None = None, filter: FilterLike = None,
               format: str = "ndjson") -> Iterator[bytes]:
        """The collection's records (those ``filter`` admits) with its spec, as NDJSON or Parquet chunks.
        The collection and the filter are checked before this returns; the records are read as it is iterated."""
        from vectorseam.ingest.portable import check_format, export_collection

        return export_collection(self.store, self.resolve(collection), check_format(format), parse_filter(filter))

    def import_records(self, source: IO[bytes], collection: str | None = None, format: str = "ndjson") -> int:
        """Import an export (or any NDJSON/Parquet of records) into ``collection`` (default: the name in its
        header), created from the header's spec if absent; records without a vector are embedded. Returns
        how many records were written."""
        from vectorseam.ingest.portable import Header, check_format, import_stream, open_stream

        opened = open_stream(check_format(format), source)
        name = self.resolve(collection or (opened.header.collection if opened.header else None))

        def ensure(header: Header | None) -> None:
            if header is not None:
                self.create_collection(name, header.dimension, header.metric, header.metadata)

        return import_stream(opened, ensure, lambda batch: self.upsert(batch, name).written)

    def snapshot(self, collection: str | None = None) -> Iterator[bytes]:
        """One portable file (Parquet) holding the collection's spec, every record with its vector, and its
        tuned profile: :meth:`restore` makes the same collection in any store, under any name. The records
        are read as it is iterated (pause writes for a point in time)."""
        from vectorseam.ingest.portable import snapshot_collection

        name = self.resolve(collection)
        profile = self.profile(name)
        return snapshot_collection(self.store, name, None if profile is None else profile.to_bytes())

    def save_snapshot(self, path: str | os.PathLike[str], collection: str | None = None) -> Path:
        """:meth:`snapshot` into the file ``path``, replaced atomically."""
        from vectorseam.durable import atomic_write

        return atomic_write(path, self.snapshot(collection))

    def restore(self, source: str | os.PathLike[str] | IO[bytes], collection: str | None = None,
                replace: bool = False) -> CollectionInfo:
        """Make ``collection`` (default: the snapshot's own name) from a snapshot file or stream: spec,
        records, vectors and tuned profile. A collection of that name that holds records is refused
        unless ``replace``, which drops it first."""
        from vectorseam.ingest.portable import restore_collection
        from vectorseam.retrieval.tune_profile import RetrievalProfile

        name = None if collection is None else self.resolve(collection)
        with contextlib.ExitStack() as stack:
            stream = source if not isinstance(source, str | os.PathLike) else stack.enter_context(open(source, "rb"))
            info, profile = restore_collection(self.store, stream, name, replace, drop=self.drop_collection)
        if profile is not None:
            where = f"the snapshot's profile of {info.name!r}"
            self.profiles.save(info.name, RetrievalProfile.from_bytes(profile, where))
        return info

    # -- search: every kind is one typed Query, run by the one path (vectorseam.retrieval.engine) ------
    def search_many(self, queries: Sequence[str], k: int = 10, filter: FilterLike = None,
                    collection: str | None = None, mode: str = "dense", mmr: float | None = None,
                    profile: bool = True) -> list[list[Hit]]:
        """Like :meth:`search` for several queries (plain dense ones are embedded as one batch)."""
        name = self.resolve(collection)
        return self.runner.hits_many(name, [text_query(q, k, filter, mode, mmr, profile) for q in queries])

    retrieve_many = search_many

    # -- one typed query (vectorseam.query): pages, cursors, groups, facets, highlights, thresholds ----
    @cached_property
    def runner(self) -> QueryRunner:
        from vectorseam.retrieval.engine import QueryRunner

        return QueryRunner(self.retrieval)

    def query(self, query: Query, collection: str | None = None) -> SearchResult:
        """Run one :class:`~vectorseam.query.Query` (text, a vector, or example ids, with its search
        options): a page of hits, or of groups, with facet counts, highlights and the next page's cursor."""
        return self.runner.run(self.resolve(collection), query)

    def multi_search(self, searches: Sequence[tuple[str | None, Query]]) -> list[SearchResult]:
        """Several queries, each over its own collection (None: the configured one), answered in order."""
        return [self.query(q, collection) for collection, q in searches]

    # -- question answering and evaluation -------------------------------------------------------------
    @property
    def llm_configured(self) -> bool:
        """Whether answers are written by a language model (else they are extracted from the passages)."""
        return self.settings.llm.configured

    def answerer(self, k: int = 5, budget: int = 1500, mode: str = "dense") -> QuestionAnswerer:
        from vectorseam.retrieval.llm import ChatLLM
        from vectorseam.retrieval.qa import QuestionAnswerer

        llm = ChatLLM(self.settings.llm) if self.llm_configured else None
        return QuestionAnswerer(self.runner, self.embedder, llm, budget=budget, k=k, mode=mode)

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
        if to_embed or not self._exists(name):
            ensure_collection_for(self.store, name, self.embedder)
        # else the vectors are the caller's: the store checks their length; their space is the caller's word
        batch = list(records)
        if to_embed:
            vectors = self.embedder.embed_documents([records[i].text for i in to_embed])
            for i, vector in zip(to_embed, vectors, strict=True):
                batch[i] = Record(batch[i].id, vector, batch[i].text, batch[i].metadata)
        written = self.store.upsert(name, batch)
        return Upserted(written, len(to_embed))

    def _exists(self, name: str) -> bool:
        try:
            self.store.collection_info(name)
        except CollectionNotFoundError:
            return False
        return True

    def fetch(self, ids: Sequence[str], collection: str | None = None, include_vectors: bool = False) -> list[Record]:
        return self.store.fetch(self.resolve(collection), ids, include_vectors=include_vectors)

    def delete(self, ids: Sequence[str] | None = None, filter: FilterLike = None,
               collection: str | None = None) -> int:
        """Delete by ids or by filter (exactly one of them); durable on return."""
        deleted = self.store.delete(self.resolve(collection), ids, filter)
        return deleted

    # -- ingest ---------------------------------------------------------------------------------------
    def prepare_ingest(
        self,
        source: str | os.PathLike[str] | Sequence[Document] | Sequence[str | os.PathLike[str]],
        collection: str | None = None,
        id_field: str | None = None,
        text_field: str = "text",
        text_template: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        options: IngestOptions | None = None,
    ) -> PreparedIngest:
        """Check an ingest before doing it: the source (a file or directory path, or documents in
        memory) is readable and the collection exists for this embedder (created if need be), so an
        embedder mismatch or a bad path fails here. Arguments as for :meth:`ingest_file`."""
        name = self.resolve(collection)
        rows = RowSpec(id_field, text_field, text_template, metadata_fields)
        opts = options or IngestOptions()
        engine = opts.engine or self.settings.ingest.engine
        if engine == "ray":
            return self._prepare_ray_ingest(source, name, rows, opts)
        if opts.ray_overrides:
            raise ValidationError("ray_address and ray_workers are options of the Ray engine (engine='ray')")
        src = self._local_source(source, name, rows)
        src.check()
        state = JobState.under(self.data_dir, self.store_key, opts.use_cache, opts.embed_cache)
        call_with_retry("creating the collection", lambda: ensure_collection_for(self.store, name, self.embedder),
                        opts.retry)

        def run(progress: Progress | None) -> IngestReport:
            return ingest_source(self.store, self.embedder, name, src, state, opts, progress)

        return PreparedIngest(name, run)

    @staticmethod
    def _local_source(source: str | os.PathLike[str] | Sequence[Any], name: str, rows: RowSpec) -> Source:
        if isinstance(source, str | os.PathLike):
            return Source(Path(source), rows)
        docs = [d for d in source if isinstance(d, Document)]
        if len(docs) != len(source):
            raise ValidationError("several paths at once are read by the Ray engine (engine='ray'); the local "
                                  "engine takes one file or directory")
        return DocumentsSource(Path(f"request:{name}"), RowSpec(), tuple(docs))

    def _prepare_ray_ingest(self, source: str | os.PathLike[str] | Sequence[Any], name: str, rows: RowSpec,
                            opts: IngestOptions) -> PreparedIngest:
        """The same ingest on a Ray cluster (:mod:`vectorseam.ingest.ray_engine`): files, globs or lists of them."""
        from vectorseam.ingest.ray_engine import (
            WorkerSetup,
            check_ray_options,
            check_store_for_ray,
            expand_sources,
            ingest_on_ray,
            ray_cluster_from,
        )

        require("ray")
        paths = [source] if isinstance(source, str | os.PathLike) else list(source)
        if not all(isinstance(p, str | os.PathLike) for p in paths):
            raise ValidationError("the Ray engine reads files and directories (paths or globs), not documents in "
                                  "memory")
        sources = expand_sources(paths, rows)
        cluster = ray_cluster_from(self.settings, self.shared_database(self.settings.ingest.record_manager_dsn),
                                   opts.ray_overrides)
        state = JobState.under(self.data_dir, self.store_key, opts.use_cache, opts.embed_cache)
        check_ray_options(opts, cluster)
        check_store_for_ray(self.store.capabilities)
        call_with_retry("creating the collection", lambda: ensure_collection_for(self.store, name, self.embedder),
                        opts.retry)
        setup = WorkerSetup(self.settings.store.name, store_options(self.settings), self.store_key,
                            self.settings.embedder)

        def run(progress: Progress | None) -> IngestReport:
            try:
                return ingest_on_ray(self.store, self.embedder, name, sources, setup, cluster, opts,
                                     state.embed_cache, progress)
            finally:  # the workers wrote past this facade's store: its BM25 sidecar, if any, is rebuilt
                self.store.written_elsewhere(name)

        return PreparedIngest(name, run)

    def ingest_file(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        collection: str | None = None,
        id_field: str | None = None,
        text_field: str = "text",
        text_template: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        options: IngestOptions | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest a .csv/.tsv/.jsonl/.parquet file or a directory of .txt/.md/.html/.pdf files.

        ``id_field``, ``text_field`` (or ``text_template``) and ``metadata_fields`` say how rows become
        documents; ``options`` (:class:`~vectorseam.ingest_options.IngestOptions`) how the job runs:
        batches, cleanup, chunking, duplicates, retries, the embedding cache, and the engine.
        ``engine="ray"`` (default: ``[ingest] engine``) runs it on a Ray cluster, where ``path`` may also
        be a glob or a list of paths: see :mod:`vectorseam.ingest.ray_engine`.
        """
        return self.prepare_ingest(path, collection, id_field, text_field, text_template, metadata_fields,
                                   options).run(progress)

    def ingest_documents(self, documents: Sequence[Document], collection: str | None = None,
                         options: IngestOptions | None = None, progress: Progress | None = None) -> IngestReport:
        """Ingest documents held in memory, incrementally like a file (their source is ``request:<collection>``)."""
        return self.prepare_ingest(documents, collection, options=options).run(progress)

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

    def cluster_points(self, collection: str | None = None, k: int | None = None, projection: Projection = "tsne",
                       seed: int = 0, max_points: int = 2000) -> ClusterMap:
        """The collection's clusters (as :meth:`cluster` finds them) as 2-D points in [0, 1] with ids, cluster
        numbers and short texts, for an interactive map; cached per collection state (any write that
        changes an id, text or vector computes it anew). See :mod:`vectorseam.analysis.map_points`."""
        from vectorseam.analysis.map_points import MapCache
        from vectorseam.analysis.vectors import load_collection

        require("analysis", "a collection map", ("sklearn",))
        cache: MapCache = self.__dict__.setdefault("_map_cache", MapCache())
        return cache.get(load_collection(self.store, self.resolve(collection)), k, projection, seed, max_points)

    def field_summary(self, collection: str | None = None, filter: FilterLike = None,
                      top: int = 5) -> tuple[int, list[FieldSummary]]:
        """How many records ``filter`` admits and each metadata field's kind, value range and commonest
        values (times recognised as such): see :mod:`vectorseam.analysis.fields`."""
        from vectorseam.analysis.fields import summarize_fields

        return summarize_fields(self.store, self.resolve(collection), filter, top)

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
        """A matrix that maps the base model's vectors (the configured model without any matrix) so that
        the ``pairs`` labelled similar come closer; see :mod:`vectorseam.analysis.customize`."""
        from vectorseam.analysis.customize import train_matrix

        base = self.embedder
        if self.settings.embedder.custom_matrix is not None:
            base = build_embedder(self.settings.embedder.model_copy(update={"custom_matrix": None}))
        return train_matrix(pairs, base.embed_documents, base.fingerprint, options)

    def read_pairs(self, path: str | os.PathLike[str], text1: str = "text_1", text2: str = "text_2",
                   label: str = "label", positive: str | None = None,
                   negative: Sequence[str] = ()) -> tuple[list[Pair], int]:
        """Labelled text pairs for :meth:`train_custom_matrix` from a CSV/TSV/JSONL file, and how many rows
        with other labels were skipped (see :func:`vectorseam.analysis.pairs.read_pairs`)."""
        from vectorseam.analysis.pairs import read_pairs

        return read_pairs(Path(path), text1, text2, label, positive, list(negative))

    @staticmethod
    def check_projection(projection: str) -> Projection:
        """``projection`` if a cluster map can be drawn with it (checked before any clustering work)."""
        from vectorseam.analysis.maps import PROJECTIONS

        if projection not in PROJECTIONS:
            raise ValidationError(f"--projection must be one of {', '.join(PROJECTIONS)}, got {projection!r}")
        return projection

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
        def carry(done: ReindexReport) -> None:  # the profile moves with the alias (reported, not applied)
            from vectorseam.retrieval.tune_profile import carry_profile

            done.profile = carry_profile(self.profiles, self.profiles, done.source, done.target, new.fingerprint)

        report = reindex_collection(self.store, self.aliases, collection, new, state, into, batch_size,
                                    progress=progress, before_switch=carry)
        return report, new.fingerprint

    # -- the embedded store's health (vectorseam.stores.memory_doctor) -----------------------------------
    def doctor(self, collection: str | None = None, recover: bool = False,
               upgrade: bool = False) -> list[tuple[Health, Recovery | None]]:
        """Check the memory store's collections (one, or all): SQLite's integrity check, every record's
        checksum, the snapshots. ``recover`` rebuilds a damaged one from its intact records (the damaged
        file is kept); ``upgrade`` converts directories of releases before the SQLite store."""
        from vectorseam.errors import UnsupportedOperationError
        from vectorseam.stores import legacy_format3, memory_doctor

        if self.settings.store.name != "memory":
            raise UnsupportedOperationError(
                f"doctor checks the embedded memory store's files; the configured store is "
                f"{self.settings.store.name!r}, whose own tools check its data (PostgreSQL: amcheck)")
        root = Path(str(store_options(self.settings)["path"]))
        if collection is not None:
            names = [self.resolve(collection)]
            if not (root / names[0]).is_dir():
                raise ValidationError(f"no collection {names[0]!r} in {root}")
        else:
            names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
                if root.is_dir() else []
        durability = self.settings.store.factory_options().get("durability", "power")
        out: list[tuple[Health, Recovery | None]] = []
        for name in names:
            directory = root / name
            if upgrade and legacy_format3.is_legacy(directory):
                memory_doctor.upgrade(directory, durability)
            health = memory_doctor.check(directory)
            recovery = None
            if recover and not health.ok and not legacy_format3.is_legacy(directory):
                recovery = memory_doctor.recover(directory, durability)
                health = memory_doctor.check(directory)
            out.append((health, recovery))
        return out

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

        return ProfileBook(self.data_dir.profiles(self.store_key), self.embedder, self.store)

    def tune(self, queries: dict[str, str], qrels: dict[str, dict[str, int]], collection: str | None = None,
             dataset: str = "", split: str = "", save: bool = True, say: Callable[[str], None] | None = None,
             options: TuneOptions | None = None) -> tuple[RetrievalProfile, TuneReport]:
        """Learn a retrieval profile for ``collection`` from judged queries (``qrels[query id][document id]``
        = grade, > 0 relevant) by cross-validation, and save it with the collection (unless ``save`` is
        False); search and eval use it from then on unless told not to. ``options``: the folds, the seed,
        which steps to try (:class:`~vectorseam.tune_options.TuneOptions`)."""
        from vectorseam.retrieval.tune import tune_collection

        name = self.resolve(collection)
        profile, report = tune_collection(self.retrieval, name, queries, qrels, dataset, split,
                                          options or TuneOptions(), say)
        return (self._save_profile(name, profile, report) if save else profile), report

    def tune_beir(self, directory: str | os.PathLike[str], split: str = "train", collection: str | None = None,
                  save: bool = True, say: Callable[[str], None] | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  options: TuneOptions | None = None) -> tuple[RetrievalProfile, TuneReport]:
        """Embed a BEIR data set (as ``eval beir`` does, reusing its collection) and tune on one split's
        judgements; arguments as for :meth:`tune`."""
        from vectorseam.retrieval.tune import tune_beir

        name, profile, report = tune_beir(self.retrieval, Path(directory), split, collection,
                                          options or TuneOptions(), say, progress)
        return (self._save_profile(name, profile, report) if save else profile), report

    def _save_profile(self, name: str, profile: RetrievalProfile, report: TuneReport) -> RetrievalProfile:
        report.profile_path = self.profiles.where
        saved = replace(profile, report=report.to_dict())
        report.profile_path = str(self.profiles.save(name, replace(saved, report=report.to_dict())))
        return replace(saved, report=report.to_dict())

    def profile(self, collection: str | None = None) -> RetrievalProfile | None:
        """The collection's saved profile, unchecked (to show it), or None."""
        return self.profiles.find(self.resolve(collection))

    def remove_profile(self, collection: str | None = None) -> bool:
        """Forget the collection's tuned profile; search goes back to the untuned defaults."""
        return self.profiles.remove(self.resolve(collection))

    def profile_note(self, collection: str | None = None) -> str | None:
        """Why the collection's tuned profile was not applied to its last search (None: it was, or it has none)."""
        return self.retrieval.profile_note(self.resolve(collection))

    def finetune_beir(self, directory: str | os.PathLike[str], split: str = "train", collection: str | None = None,
                      reindex: bool = True, say: Callable[[str], None] | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      options: FinetuneOptions | None = None) -> tuple[FinetuneReport, ReindexReport | None]:
        """Fine-tune the local model on a BEIR split's judgements (``vectorseam tune --finetune``), write it to
        ``DATA_DIR/models/<name>`` and, unless ``reindex`` is False, re-embed the collection with it behind
        its alias (searches keep the base model's collection until the new one is complete; it is kept).
        ``options``: epochs, batches, learning rate (:class:`~vectorseam.tune_options.FinetuneOptions`)."""
        from vectorseam.retrieval.evaluation import beir_collection, load_beir, prepare_collection
        from vectorseam.retrieval.tune import finetune_collection

        if self.settings.embedder.name != "local":
            raise ValidationError("fine-tuning trains the local model; the configured embedder is "
                                  f"{self.settings.embedder.name!r}")
        root = Path(directory)
        data = load_beir(root, split)
        name = self.resolve(collection or beir_collection(root))
        prepare_collection(self.store, self.embedder, name, data, progress)
        report = finetune_collection(self.retrieval, name, data.queries, data.qrels, self.data_dir.finetuned_model,
                                     model_name(self.settings.embedder), root.name, split,
                                     options or FinetuneOptions(), say)
        if not report.path or not reindex:
            return report, None
        if say is not None:
            say(f"re-embedding {name!r} with {report.path} behind the alias {collection or name!r}")
        alias = collection or beir_collection(root)
        done, _ = self.reindex(alias, "local", model=report.path)
        return report, done


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
            report = migrate_collection(source, target, collection, MigrationState(state, key), to_collection,
                                        batch_size, sample, progress=progress)
            from vectorseam.retrieval.tune_profile import ProfileBook, carry_profile

            report.profile = carry_profile(  # the tuned profile goes with the collection, into the target's home
                ProfileBook(DataDir.at(src_settings.data_dir).profiles(src_key), None, source),
                ProfileBook(DataDir.at(dst_settings.data_dir).profiles(dst_key), None, target),
                collection, target_name)
            return report
        finally:
            target.close()
    finally:
        source.close()
        state.close()
