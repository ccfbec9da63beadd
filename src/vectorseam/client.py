"""The Python API: one object that builds the configured store and embedder and runs the layers.

    from vectorseam import VectorSeam
    with VectorSeam() as vs:
        vs.ingest_file("reviews.csv", collection="reviews", text_template="{Summary}: {Text}")
        for hit in vs.search("delicious beans", collection="reviews", k=5):
            print(hit.score, hit.text)
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vectorseam.config import Settings, load_settings
from vectorseam.embedders import Embedder, build_embedder
from vectorseam.filters import FilterLike
from vectorseam.ingest.job import IngestReport, Progress, ingest_file
from vectorseam.ingest.sources import RowSpec
from vectorseam.retrieval.search import Searcher
from vectorseam.store import VectorStore
from vectorseam.stores.registry import open_store
from vectorseam.types import CollectionInfo, Hit

if TYPE_CHECKING:  # retrieval layers, imported lazily by the methods that use them
    from collections.abc import Sequence

    from vectorseam.analysis.classify import ClassificationResult, LabelSpec
    from vectorseam.analysis.clustering import ClusteringResult
    from vectorseam.analysis.customize import TrainingOptions, TrainingReport
    from vectorseam.analysis.dedup import DedupResult, Method
    from vectorseam.analysis.maps import Projection
    from vectorseam.analysis.pairs import Pair
    from vectorseam.embedders.custom_matrix import CustomMatrix
    from vectorseam.ingest.aliases import AliasMap
    from vectorseam.retrieval.evaluation import EvalReport
    from vectorseam.retrieval.hybrid import RetrievalSearcher
    from vectorseam.retrieval.qa import Answer, AnswerStream, QuestionAnswerer


def store_from_settings(settings: Settings) -> VectorStore:
    """Open the configured store; the embedded memory store persists under ``data_dir`` by default."""
    options = settings.store.factory_options()
    if settings.store.name == "memory" and "path" not in options:
        options["path"] = str(Path(settings.data_dir) / "memory")
    return open_store(settings.store.name, options)


class VectorSeam:
    def __init__(self, settings: Settings | None = None, config_file: str | os.PathLike[str] | None = None,
                 **overrides: Any) -> None:
        self.settings = settings or load_settings(config_file, **overrides)

    @cached_property
    def store(self) -> VectorStore:
        """The configured store, wrapped so every write also keeps its BM25 sidecar index in step."""
        from vectorseam.retrieval.hybrid import SyncedStore, sidecar_root

        s = self.settings
        return SyncedStore(store_from_settings(s), sidecar_root(s.data_dir, s.store.name, s.store.factory_options()))

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings.embedder)

    @cached_property
    def searcher(self) -> Searcher:
        return Searcher(self.store, self.embedder)

    def _collection(self, collection: str | None) -> str:
        """The collection a name means: aliases (see vectorseam.ingest.aliases) resolve to their target."""
        return self.aliases.resolve(collection or self.settings.collection)

    def collections(self) -> list[CollectionInfo]:
        return self.store.collections()

    def search(self, query: str, k: int = 10, filter: FilterLike = None,
               collection: str | None = None) -> list[Hit]:
        return self.searcher.search(self._collection(collection), query, k, filter)

    def search_many(self, queries: list[str], k: int = 10, filter: FilterLike = None,
                    collection: str | None = None) -> list[list[Hit]]:
        return self.searcher.search_many(self._collection(collection), queries, k, filter)

    def ingest_file(
        self,
        path: str | os.PathLike[str],
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
        rejects_path, ...), plus ``use_cache=False`` to bypass the embedding cache or ``embed_cache=PATH``
        to use another cache file.
        """
        from vectorseam.ingest.job import IngestOptions, JobState

        spec = RowSpec(id_field, text_field, text_template, metadata_fields)
        state = JobState.under(self.settings.data_dir, self.store_key, options.pop("use_cache", True),
                               options.pop("embed_cache", None))
        opts = IngestOptions(batch_size=batch_size, strict=strict, **options)
        return ingest_file(self.store, self.embedder, self._collection(collection), Path(path), spec,
                           state, opts, progress)

    # -- retrieval layers: recommend, search modes, question answering, evaluation ------------------
    @cached_property
    def retrieval(self) -> RetrievalSearcher:
        from vectorseam.retrieval.hybrid import RetrievalSearcher, sidecar_root

        root = sidecar_root(self.settings.data_dir, self.settings.store.name, self.settings.store.factory_options())
        return RetrievalSearcher(self.store, self.embedder, root)

    def recommend(self, positive: Sequence[str] | str, negative: Sequence[str] | str = (), k: int = 10,
                  filter: FilterLike = None, strategy: str = "average_vector",
                  collection: str | None = None) -> list[Hit]:
        from vectorseam.retrieval.recommend import recommend

        return recommend(self.store, self._collection(collection), positive, negative, k, filter,
                         strategy)  # type: ignore[arg-type]

    def retrieve(self, query: str, k: int = 10, filter: FilterLike = None, collection: str | None = None,
                 mode: str = "dense", mmr: float | None = None) -> list[Hit]:
        """Search in ``mode`` dense, bm25 or hybrid; ``mmr`` (a lambda in [0, 1]) re-ranks for diversity."""
        return self.retrieval.search(self._collection(collection), query, k, filter, mode, mmr)

    def answerer(self, k: int = 5, budget: int = 1500, mode: str = "dense") -> QuestionAnswerer:
        from vectorseam.retrieval.llm import ChatLLM
        from vectorseam.retrieval.qa import QuestionAnswerer

        llm = ChatLLM(self.settings.llm) if self.settings.llm.configured else None
        return QuestionAnswerer(self.retrieval, self.embedder, llm, budget=budget, k=k, mode=mode)

    def ask(self, question: str, k: int = 5, budget: int = 1500, mode: str = "dense",
            filter: FilterLike = None, collection: str | None = None) -> Answer:
        return self.answerer(k, budget, mode).ask(self._collection(collection), question, filter)

    def ask_stream(self, question: str, k: int = 5, budget: int = 1500, mode: str = "dense",
                   filter: FilterLike = None, collection: str | None = None) -> AnswerStream:
        return self.answerer(k, budget, mode).stream(self._collection(collection), question, filter)

    def evaluate_beir(self, directory: str | os.PathLike[str], split: str = "test",
                      modes: tuple[str, ...] = ("dense", "bm25", "hybrid"), collection: str | None = None,
                      rrf_k: float | None = None) -> EvalReport:
        from vectorseam.retrieval.evaluation import run_beir

        if rrf_k is not None:
            self.retrieval.rrf_k = rrf_k
        return run_beir(self.retrieval, Path(directory), split, modes, collection)

    # ---- analysis (vectorseam.analysis): any collection of any store, read through scan
    def cluster(self, collection: str | None = None, k: int | None = None, k_range: tuple[int, int] = (2, 10),
                filter: FilterLike = None, seed: int = 0, name: bool = False,
                assign_field: str | None = None) -> ClusteringResult:
        from vectorseam.analysis.clustering import cluster_collection

        return cluster_collection(self.store, self._collection(collection), k, k_range, filter, seed,
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

        return find_duplicates(self.store, self._collection(collection), threshold, method, filter)

    def classify(self, collection: str | None, labels: Sequence[LabelSpec | str], filter: FilterLike = None,
                 write_field: str | None = None) -> ClassificationResult:
        from vectorseam.analysis.classify import LabelSpec, classify_collection

        specs = [lab if isinstance(lab, LabelSpec) else LabelSpec.parse(lab) for lab in labels]
        return classify_collection(self.store, self.embedder, self._collection(collection), specs, filter,
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

    # -- load jobs: aliases, reindex (vectorseam.ingest.aliases, vectorseam.ingest.reindex) ---------------------------
    @cached_property
    def store_key(self) -> str:
        """Identifies the configured store in job state (record manager, aliases) without secrets."""
        from vectorseam.ingest.record_manager import store_identity

        options = self.settings.store.factory_options()
        if self.settings.store.name == "memory" and "path" not in options:
            options["path"] = str(Path(self.settings.data_dir) / "memory")
        return store_identity(self.settings.store.name, options)

    @cached_property
    def aliases(self) -> AliasMap:
        from vectorseam.ingest.aliases import AliasMap

        return AliasMap(self.settings.data_dir, self.store_key)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> VectorSeam:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
