"""The load job on Ray Data: the same job as :mod:`vectorseam.ingest.job`, spread over a cluster.

One Ray Data pipeline, streamed (memory stays flat whatever the source size):

* **read** (a task per source file or directory; many files or a glob at once): the sources'
  own readers (:class:`~vectorseam.ingest.sources.Source`), so every format, check and reject
  (file:line and reason) is the local job's.
* **plan** (an actor pool; each actor holds a store and a record manager connection): each
  document is claimed for this run in the record manager, then the local job's own planning runs
  (:meth:`IngestJob.plan`): content hash, unchanged documents skipped after checking that their
  chunks really are in the store, chunking.
* **embed** (an actor pool: the model is loaded once per actor; one GPU per actor when the cluster
  has GPUs; for the OpenAI embedder the pool size bounds the requests in flight, and the client
  retries rate limits honouring ``Retry-After``), through a per-node embedding cache.
* **write** (an actor pool of parallel writers, batches of ``batch_size`` documents): the local
  job's write (:meth:`IngestJob.write`): pending mark, upsert, delete of replaced chunks, flush, done
  mark, every store call retried by the same :class:`~vectorseam.retrying.RetryPolicy`.

The driver only counts: it streams small summary rows back for the progress bar and the report,
writes the rejects file, and at the end runs ``--cleanup full`` for each source.

Guarantees, and why they hold on many machines:

* **Incremental and kill-safe.** The record manager lives in PostgreSQL
  (:mod:`vectorseam.ingest.ray_record_manager`), so workers on any machine share it, with the local
  job's pending/done rule. A worker killed mid-batch leaves pending entries (rewritten by the next
  run); Ray Data restarts the actor and retries the batch, which is idempotent. A killed driver takes
  its workers down; its job lock ends with its connection, and the write fence keeps a worker of the
  dead run from writing after the next run started.
* **Embedding cache: per node.** The SQLite cache cannot be shared across machines (SQLite over a
  network file system is not safe), so each embedding actor opens the cache file at the configured
  path on its own node: on a one-machine cluster that is the local job's cache (both engines share
  vectors); on many machines a text is embedded at most once per node. The record manager already
  skips unchanged documents before they reach the embedder, so what a shared cache would add is
  small next to its cost (a network round trip per batch, a service to run).
* **Not supported on Ray:** the duplicate screen (it needs every earlier batch in the store, an
  order a parallel job does not have) and ``--verify`` (a reconciliation over the whole collection:
  run it with the local engine).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import sys
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from vectorseam.config import EmbedderSettings, Settings
from vectorseam.datadir import DataDir
from vectorseam.embedding import Embedder
from vectorseam.errors import ConfigError, ValidationError, VectorseamError
from vectorseam.ingest.job import (
    MAX_REJECTS_KEPT,
    IngestJob,
    IngestReport,
    JobState,
    PlannedBatch,
    PlannedDocument,
    Progress,
    Unread,
    private_file,
)
from vectorseam.ingest.ray_record_manager import DEFAULT_SCHEMA, PgRecordManager, UnseenEntries
from vectorseam.ingest.record_manager import Entry
from vectorseam.ingest.sources import Document, Reject, RowSpec, Source
from vectorseam.ingest_options import IngestOptions
from vectorseam.store import BulkLoading, VectorStore
from vectorseam.types import Capabilities

if TYPE_CHECKING:
    import pyarrow as pa

_log = logging.getLogger(__name__)
# Light stages (reading, planning, writing) wait on files, PostgreSQL and the store: a tenth of a CPU
# each, so the embedding actors, which compute, get the CPUs.
LIGHT_CPUS = 0.1
# Report fields the workers count and the driver adds up.
_COUNTED = ("unchanged", "added", "updated", "restored", "dropped", "chunks_written", "chunks_deleted",
            "embedded", "cached")
_GLOB_CHARS = frozenset("*?[")
BLOCK_BYTES = 8 * 1024 * 1024
MODEL_MEMORY = 1 << 30  # what an actor holding the local model uses (measured: about 850 MiB)


# -- what the driver tells the workers -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RayCluster:
    """Where and how wide the job runs (``[ingest]`` in the configuration)."""

    address: str | None = None  # None: join the cluster this process started, else start a local one
    workers: int | None = None  # embedding actors; None: one per GPU, else one per CPU but one
    writers: int = 2
    planners: int = 1
    record_manager_dsn: str = ""
    record_manager_schema: str = DEFAULT_SCHEMA


@dataclass(frozen=True, slots=True)
class RaySource:
    """One file or directory to read, the source key its records are kept under, and the scope of
    ``--cleanup full`` it belongs to (the file itself, or the glob that matched it)."""

    path: Path
    key: str
    spec: RowSpec = field(default_factory=RowSpec)
    scope: str = ""

    @property
    def cleanup_scope(self) -> str:
        return self.scope or self.key


@dataclass(frozen=True, slots=True)
class _Context:
    """Everything a worker needs to rebuild the job's pieces on its own machine (picklable)."""

    store_name: str
    store_options: dict[str, Any]
    embedder: EmbedderSettings
    collection: str
    store_key: str
    dsn: str
    schema: str
    run: str
    options: IngestOptions
    embed_cache: str | None

    def open(self) -> tuple[VectorStore, Embedder, IngestJob, PgRecordManager]:
        from vectorseam.embedders import build_embedder
        from vectorseam.stores.registry import open_store

        store = open_store(self.store_name, self.store_options)
        embedder = build_embedder(self.embedder)  # for the chunk size and tokenizer; the model is not loaded
        job = IngestJob(store, embedder, self.collection, JobState(DataDir.at("."), self.store_key, None), self.options)
        rm = PgRecordManager(self.dsn, self.store_key, self.collection, self.schema)
        return store, embedder, job, rm


def expand_sources(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                   spec: RowSpec | None = None) -> list[RaySource]:
    """The files and directories to read: a path, a glob (``data/*.jsonl``, ``**`` for subfolders) or
    a list of them. A plain path is keyed as the local job keys it. A file matched by a glob is keyed
    ``<pattern>|<file>`` and cleaned up with the pattern's scope: ``--cleanup full`` also deletes the
    records of a file that no longer matches, while a row it could not read keeps only that file's
    records."""
    spec = spec or RowSpec()
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise ValidationError("no source given")
    out: list[RaySource] = []
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if path.exists() or path.is_symlink() or not (_GLOB_CHARS & set(text)):
            source = Source(path, spec)
            source.check()
            out.append(RaySource(path, _key(source.key), spec))
            continue
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise ValidationError(f"{text}: no file matches this pattern")
        scope = _key(f"glob:{Path(text).absolute()}")
        for match in matches:
            Source(Path(match), spec).check()
            out.append(RaySource(Path(match).absolute(), f"{scope}|{_key(str(Path(match).absolute()))}", spec,
                                 scope))
    return out


def _key(text: str) -> str:
    """A source key PostgreSQL can store (a path with undecodable bytes holds lone surrogates)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# -- rows flowing through the pipeline -------------------------------------------------------------

def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        ("kind", pa.string()),  # doc | reject | count
        ("source", pa.string()),  # the source key
        ("doc_id", pa.string()),
        ("text", pa.string()),
        ("meta", pa.string()),  # JSON
        ("origin", pa.string()),  # file:line
        ("reason", pa.string()),  # a reject's
        ("subtree", pa.string()),  # a reject's: the id prefix of a folder that could not be listed
        ("unread", pa.bool_()),  # a reject of the read stage: --cleanup full keeps what it names
        ("plan", pa.string()),  # JSON: the planned document
        ("vectors", pa.binary()),  # float32 rows of its chunks
        ("counts", pa.string()),  # JSON: report fields to add up
    ])


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    schema = _schema()
    return pa.Table.from_pylist([{name: row.get(name) for name in schema.names} for row in rows], schema=schema)


def _reject_row(reject: Reject, source: str, unread: bool) -> dict[str, Any]:
    return {"kind": "reject", "source": source, "doc_id": reject.doc_id, "origin": reject.origin,
            "reason": reject.reason, "subtree": reject.subtree, "unread": unread}


def _count_row(**counts: int) -> dict[str, Any]:
    return {"kind": "count", "counts": json.dumps({k: v for k, v in counts.items() if v})}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _by_source(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["kind"] == "doc":
            groups.setdefault(row["source"], []).append(row)
    return groups


# -- stage 1: read ----------------------------------------------------------------------------------

def _read(batch: pa.Table, sources: Sequence[RaySource], batch_size: int) -> Iterator[pa.Table]:
    """Documents and rejects of the sources named by index in ``batch``, ``batch_size`` rows at a time."""
    for index in batch.column("index").to_pylist():
        src = sources[index]
        rows: list[dict[str, Any]] = []
        for item in Source(src.path, src.spec).documents():
            if isinstance(item, Reject):
                rows.append(_reject_row(item, src.key, unread=True))
            else:
                rows.append({"kind": "doc", "source": src.key, "doc_id": item.id, "text": item.text,
                             "meta": _dumps(item.metadata), "origin": item.origin})
            if len(rows) >= batch_size:
                yield _table(rows)
                rows = []
        if rows:
            yield _table(rows)


# -- stage 2: plan ----------------------------------------------------------------------------------

class _Known:
    """The entries a claim returned, as the job's planning looks them up."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self._entries = entries

    def lookup(self, doc_ids: Sequence[str]) -> dict[str, Entry]:
        return {i: self._entries[i] for i in doc_ids if i in self._entries}


def _plan_json(p: PlannedDocument) -> str:
    prev = p.previous
    return _dumps({"hash": p.content_hash, "ids": p.chunk_ids, "texts": p.chunk_texts, "metas": p.chunk_metadata,
                   "kind": p.kind, "previous": None if prev is None else
                   [prev.doc_id, prev.source, prev.content_hash, list(prev.chunk_ids), prev.state]})


class _Planner:
    """Claims each document for this run, then plans it with the local job's own planning."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.store, _, self.job, self.rm = ctx.open()

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        out = [r for r in rows if r["kind"] != "doc"]
        for key, docs in _by_source(rows).items():
            with self.rm.fenced(self.ctx.run):
                before, clashes = self.rm.claim(self.ctx.run, key, [d["doc_id"] for d in docs])
            keep: list[Document] = []
            for d in docs:
                other = clashes.get(d["doc_id"])
                if other is None:
                    keep.append(Document(d["doc_id"], d["text"], json.loads(d["meta"]), d["origin"]))
                else:
                    out.append(_reject_row(Reject(d["origin"], f"duplicate id {d['doc_id']!r}: the source {other} "
                                                  "of this run has it too; kept that one (give each document its "
                                                  "own id)"), key, unread=False))
            rejects: list[Reject] = []
            planned = self.job.plan(keep, _Known(before), rejects)
            out.extend(_reject_row(r, key, unread=False) for r in rejects)
            out.extend({"kind": "doc", "source": key, "doc_id": p.doc.id, "origin": p.doc.origin,
                        "plan": _plan_json(p)} for p in planned.planned)
            if planned.unchanged:
                out.append(_count_row(unchanged=planned.unchanged))
        return _table(out)


# -- stage 3: embed ---------------------------------------------------------------------------------

class _Embedder:
    """Holds the model (loaded once, on the GPU Ray gave this actor if any) and the node's cache."""

    def __init__(self, ctx: _Context, threads: int) -> None:
        from vectorseam.embedders import build_embedder
        from vectorseam.ingest.embed_cache import CachingEmbedder, EmbeddingCache

        embedder = build_embedder(ctx.embedder, device=_place(threads))
        cache = EmbeddingCache(ctx.embed_cache) if ctx.embed_cache else None
        self.embedder = CachingEmbedder(embedder, cache)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        docs = [r for r in rows if r["kind"] == "doc"]
        plans = [json.loads(r["plan"]) for r in docs]
        texts = [t for p in plans for t in p["texts"]]
        if not texts:
            return batch
        embedded, cached = self.embedder.embedded, self.embedder.cached
        vectors = np.ascontiguousarray(self.embedder.embed(texts), dtype=np.float32)
        start = 0
        for row, plan in zip(docs, plans, strict=True):
            end = start + len(plan["texts"])
            row["vectors"] = vectors[start:end].tobytes()
            start = end
        rows.append(_count_row(embedded=self.embedder.embedded - embedded, cached=self.embedder.cached - cached))
        return _table(rows)


def _place(threads: int) -> str:
    """Where this actor's model computes: the GPU Ray assigned to it (CUDA_VISIBLE_DEVICES names it), if
    any, else the CPU with ``threads`` threads (an HTTP embedder computes nothing here either way)."""
    import ray

    if ray.get_gpu_ids():
        return "cuda"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:  # read when torch is imported: only if a text misses the cache (the import alone takes seconds)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return "cpu"


# -- stage 4: write ---------------------------------------------------------------------------------

class _Writer:
    """Writes each batch with the local job's write: pending mark, upsert, stale delete, flush, done mark."""

    _FIELDS = ("added", "updated", "restored", "dropped", "chunks_written", "chunks_deleted")

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.store, self.embedder, self.job, self.rm = ctx.open()

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        out = [{k: r[k] for k in ("kind", "source", "doc_id", "origin", "reason", "subtree", "unread", "counts")}
               for r in rows if r["kind"] != "doc"]
        groups = _by_source(rows)
        if not groups:
            return _table(out)
        report = self.job.report
        before = {f: getattr(report, f) for f in self._FIELDS}
        dimension = self.embedder.dimension
        with self.rm.fenced(self.ctx.run):
            for key, docs in groups.items():
                planned = []
                for d in docs:
                    p = json.loads(d["plan"])
                    prev = p["previous"]
                    planned.append(PlannedDocument(
                        Document(d["doc_id"], "", {}, d["origin"]), p["hash"], p["ids"], p["texts"], p["metas"],
                        None if prev is None else Entry(prev[0], prev[1], prev[2], tuple(prev[3]), prev[4]),
                        p["kind"]))
                vectors = np.concatenate([np.frombuffer(d["vectors"], dtype=np.float32).reshape(-1, dimension)
                                          for d in docs])
                self.job.write(PlannedBatch(planned, 0, 0, vectors), self.rm, key)
        out.append(_count_row(**{f: getattr(report, f) - before[f] for f in self._FIELDS}))
        return _table(out)


# -- the driver -------------------------------------------------------------------------------------

def _connect(address: str | None) -> bool:
    """Join (or start) the cluster; True when this call started or joined it (and should leave it)."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = None  # the dashboard where ray[default] is installed
    ray.init(address=address, **kwargs)
    return True


def _sizes(cluster: RayCluster, embedder: EmbedderSettings) -> tuple[int, int, dict[str, float]]:
    """Embedding actors, the threads of each and what each asks Ray for: a GPU each when the cluster
    has GPUs (local model); otherwise a share of the CPUs (an OpenAI actor only waits on HTTP).

    The CPUs asked for are bookkeeping, not a limit: they leave one CPU free for Ray Data's own tasks
    (the repartition between reading and planning), which would otherwise wait for CPUs the actors
    hold for the whole run. Each CPU actor computes with its share of the cluster's cores."""
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    cpus = float(resources.get("CPU", 1.0))
    gpus = int(resources.get("GPU", 0))
    if embedder.name == "openai":
        return cluster.workers or 4, 1, {"num_cpus": LIGHT_CPUS}
    if gpus:
        return cluster.workers or gpus, 1, {"num_cpus": 1.0, "num_gpus": 1, "memory": MODEL_MEMORY}
    workers = cluster.workers or max(1, int(cpus) - 1)
    spare = cpus - 1.0 - LIGHT_CPUS * (1 + cluster.planners + cluster.writers)
    share = max(0.01, min(1.0, spare / workers))
    return workers, max(1, int(cpus) // workers), {"num_cpus": round(share, 3), "memory": MODEL_MEMORY}


def _pipeline(ctx: _Context, sources: Sequence[RaySource], cluster: RayCluster) -> Any:
    import ray.data
    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # the driver shows its own progress and summary
    data_ctx = ray.data.DataContext.get_current()
    data_ctx.enable_progress_bars = False  # the driver shows its own (records/s, rejects)
    data_ctx.print_on_execution_start = False
    # A reading task hands on what it read in blocks of at most this size (Ray's default, 128 MiB, would
    # hold a large file's first documents back until that much was read).
    data_ctx.target_max_block_size = BLOCK_BYTES
    workers, threads, embed_resources = _sizes(cluster, ctx.embedder)
    batch = ctx.options.batch_size
    ds: Any = ray.data.from_items([{"index": i} for i in range(len(sources))], override_num_blocks=len(sources))
    ds = ds.map_batches(_read, batch_size=1, batch_format="pyarrow", fn_kwargs={"sources": list(sources),
                        "batch_size": batch}, compute=TaskPoolStrategy(size=max(1, len(sources))),
                        num_cpus=LIGHT_CPUS)
    # A source is read by one task; its documents are cut into blocks of one batch, streamed, so every
    # later stage spreads one file's batches over its actors.
    ds = ds.repartition(target_num_rows_per_block=batch)
    ds = ds.map_batches(_Planner, fn_constructor_kwargs={"ctx": ctx}, batch_size=batch, batch_format="pyarrow",
                        compute=ActorPoolStrategy(size=cluster.planners), num_cpus=LIGHT_CPUS)
    ds = ds.map_batches(_Embedder, fn_constructor_kwargs={"ctx": ctx, "threads": threads}, batch_size=batch,
                        batch_format="pyarrow", compute=ActorPoolStrategy(size=workers), **embed_resources)
    return ds.map_batches(_Writer, fn_constructor_kwargs={"ctx": ctx}, batch_size=batch, batch_format="pyarrow",
                          compute=ActorPoolStrategy(size=cluster.writers), num_cpus=LIGHT_CPUS)


def _unwrap(exc: BaseException) -> BaseException:
    """The worker's own error (a StoreUnavailableError, a ValidationError) rather than Ray's wrapper."""
    seen = 0
    while seen < 10:
        cause = getattr(exc, "cause", None) or exc.__cause__
        if isinstance(exc, VectorseamError) or cause is None:
            return exc
        exc, seen = cause, seen + 1
    return exc


def check_ray_options(options: IngestOptions, cluster: RayCluster) -> None:
    """What the Ray engine refuses, said before anything is created."""
    if not cluster.record_manager_dsn:
        raise ConfigError("the Ray engine keeps its record manager in PostgreSQL, shared by every worker: set "
                          "ingest.record_manager_dsn (VECTORSEAM_INGEST__RECORD_MANAGER_DSN), or use the pgvector "
                          "store, whose database is used by default")
    if options.duplicates != "off":
        raise ValidationError("the duplicate screen needs the rows in order, which a parallel job does not have: "
                              "run it with the local engine (--engine local)")
    if options.verify:
        raise ValidationError("--verify reconciles the whole collection in one process: run it with the local "
                              "engine (--engine local)")


def check_store_for_ray(capabilities: Capabilities) -> None:
    """Stores that live inside one process cannot take writes from Ray's worker processes: each
    writer actor would open its own copy, and the driver would never see the records."""
    if capabilities.one_process is not None:
        raise ConfigError(f"the {capabilities.name} store here {capabilities.one_process}; the Ray engine writes "
                          "from other processes, which would each hold their own copy. Use a store they reach, or "
                          "the local engine (--engine local)")


def check_single_node_for(capabilities: Capabilities) -> None:
    """A store on one machine's disk (the memory store's directory: its lock and log need one kernel):
    writer actors on other nodes would each write to their own disk."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    if capabilities.one_machine is not None and len(nodes) > 1:
        raise ConfigError(f"the {capabilities.name} store {capabilities.one_machine}, and this Ray cluster has "
                          f"{len(nodes)} nodes: writers elsewhere would write their own copies. Use a store every "
                          "node reaches (a server or a database: pgvector, qdrant with a url) for a multi-node "
                          "cluster, or a single-node one")


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """What every worker opens its own store and embedder from (the driver's own do not travel): the
    configured store's plugin name and options, its identity in job state, the embedder's settings."""

    store_name: str
    store_options: dict[str, Any]
    store_key: str
    embedder: EmbedderSettings


def ingest_on_ray(
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    sources: Sequence[RaySource],
    setup: WorkerSetup,
    cluster: RayCluster,
    options: IngestOptions | None = None,
    embed_cache: Path | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Run the load job on Ray over ``sources`` into ``collection`` (which must exist for ``embedder``).

    ``store`` and ``embedder`` serve the driver (cleanup, the bulk-load mode); the workers open their
    own as ``setup`` says.
    """
    opts = options or IngestOptions()
    check_ray_options(opts, cluster)
    check_store_for_ray(store.capabilities)
    if not sources:
        raise ValidationError("no source given")
    started = time.monotonic()
    report = IngestReport(collection=collection)
    estimates = [Source(s.path, s.spec).estimate() for s in sources]
    report.expected = None if None in estimates else sum(e or 0 for e in estimates)
    ctx = _Context(setup.store_name, setup.store_options, setup.embedder, collection, setup.store_key,
                   cluster.record_manager_dsn, cluster.record_manager_schema, uuid.uuid4().hex, opts,
                   str(embed_cache) if embed_cache else None)
    rm = PgRecordManager(cluster.record_manager_dsn, setup.store_key, collection, cluster.record_manager_schema)
    try:
        rm.create_schema()
        if not rm.try_job_lock():
            raise VectorseamError(f"another job is writing to collection {collection!r} of this store; wait for it "
                                  "to finish (or stop it) and run again")
        rm.begin_run(ctx.run)
        _run(store, embedder, ctx, rm, sources, cluster, report, progress)
    finally:
        rm.close()  # also ends the job lock
    report.seconds = time.monotonic() - started
    if progress is not None:
        progress(report)
    return report


def _run(store: VectorStore, embedder: Embedder, ctx: _Context, rm: PgRecordManager, sources: Sequence[RaySource],
         cluster: RayCluster, report: IngestReport, progress: Progress | None) -> None:
    """The pipeline on the cluster (joined, or started and stopped here), then ``--cleanup full``."""
    opts = ctx.options
    joined = _connect(cluster.address)
    bulk: contextlib.AbstractContextManager[None] = (
        store.bulk_load(ctx.collection) if isinstance(store, BulkLoading) else contextlib.nullcontext())
    unread: dict[str, Unread] = {s.key: Unread() for s in sources}
    rejects_cm = (open(opts.rejects_path, "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                       opener=private_file) if opts.rejects_path is not None else contextlib.nullcontext())
    try:
        check_single_node_for(store.capabilities)
        with rejects_cm as rejects_file, bulk, warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"ray\.")  # advice on pool sizes for small inputs
            _drive(_pipeline(ctx, sources, cluster), report, unread, rejects_file, opts, progress)
        if opts.cleanup == "full":
            _cleanup(store, embedder, ctx.collection, ctx, rm, sources, unread, report)
    except BaseException as exc:
        raise _unwrap(exc) from None
    finally:
        if joined:
            import ray

            ray.shutdown()


def _drive(ds: Any, report: IngestReport, unread: dict[str, Unread], rejects_file: IO[str] | None,
           opts: IngestOptions, progress: Progress | None) -> None:
    """Stream the pipeline's summary rows: counts, rejects (file:line) into the report and the rejects file."""
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        lines = []
        for row in batch.select(["kind", "source", "doc_id", "origin", "reason", "subtree", "unread",
                                 "counts"]).to_pylist():
            if row["kind"] == "count":
                for name, value in json.loads(row["counts"]).items():
                    setattr(report, name, getattr(report, name) + value)
            elif row["kind"] == "reject":
                reject = Reject(row["origin"], row["reason"], row["doc_id"], row["subtree"])
                report.rejected += 1
                if len(report.rejects) < MAX_REJECTS_KEPT:
                    report.rejects.append(reject)
                if row["unread"]:
                    unread[row["source"]].add(reject)
                lines.append(str(reject))
                if opts.strict:
                    _write_lines(rejects_file, lines)
                    raise ValidationError(
                        f"{reject} (stopped at the first bad row because of --strict; rows read in parallel may "
                        "have been written; fix it, or run without --strict to collect bad rows in a rejects file)")
        _write_lines(rejects_file, lines)
        if progress is not None:
            progress(report)


def _write_lines(fh: IO[str] | None, lines: list[str]) -> None:
    if fh is not None and lines:
        fh.write("".join(f"{line}\n" for line in lines))
        fh.flush()


def _cleanup(store: VectorStore, embedder: Embedder, collection: str, ctx: _Context, rm: PgRecordManager,
             sources: Sequence[RaySource], unread: dict[str, Unread], report: IngestReport) -> None:
    """The local job's ``--cleanup full`` for each source with records this run did not see ("seen" is
    this run's claims in PostgreSQL), including files a glob no longer matches."""
    job = IngestJob(store, embedder, collection, JobState(DataDir.at("."), ctx.store_key, None), ctx.options)
    entries = UnseenEntries(rm, ctx.run)
    for scope in dict.fromkeys(s.cleanup_scope for s in sources):
        for key in rm.unseen_sources(scope, ctx.run):
            job.check_empty_source(entries, key, report.processed - report.rejected)
            job.cleanup(entries, key, set(), unread.get(key, Unread()))
    report.deleted += job.report.deleted
    report.kept += job.report.kept
    report.chunks_deleted += job.report.chunks_deleted


def ray_cluster_from(settings: Settings, record_manager_dsn: str | None,
                     overrides: Mapping[str, object] | None = None) -> RayCluster:
    """The cluster settings of a :class:`vectorseam.config.Settings` (``overrides``: address, workers);
    the record manager lives in the PostgreSQL database ``record_manager_dsn`` (the facade's
    :meth:`~vectorseam.client.VectorSeam.shared_database`)."""
    ing = settings.ingest
    dsn = record_manager_dsn or ""
    cluster = RayCluster(ing.ray_address, ing.ray_workers, ing.ray_writers, record_manager_dsn=dsn,
                         record_manager_schema=ing.record_manager_schema)
    return replace(cluster, **dict(overrides or {}))  # type: ignore[arg-type]


__all__ = ["RayCluster", "RaySource", "WorkerSetup", "check_ray_options", "expand_sources", "ingest_on_ray",
           "ray_cluster_from"]
