"""What the routes share: the client (the facade every route calls), limits, keys, metrics and jobs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from vectorseam.client import VectorSeam, store_options
from vectorseam.config import ServiceSettings
from vectorseam.datadir import DataDir
from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.service.auth import Caller, KeyRing, Scope, not_visible
from vectorseam.service.hosts import HostPolicy
from vectorseam.service.instrumented import store_metrics
from vectorseam.service.jobs import JobBoard, JobRunner, PostgresJobBoard, SqliteJobBoard
from vectorseam.service.limits import check_filter, check_input_chars
from vectorseam.service.metrics import Metrics
from vectorseam.service.off_loop import OffLoop
from vectorseam.service.roots import PathScrubber, check_roots, known_paths


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ServiceState:
    client: VectorSeam
    settings: ServiceSettings
    metrics: Metrics = field(default_factory=Metrics)
    ready: threading.Event = field(default_factory=threading.Event)
    warmup_error: str | None = None

    def __post_init__(self) -> None:
        self.keys = KeyRing(self.settings.api_keys, self.settings.ingest_dirs)
        protected = check_ingest_dirs(self.client, self.settings)  # ConfigError: the server does not start
        self.scrub = PathScrubber(known_paths(self.settings, protected))
        self.hosts = HostPolicy(self.settings.allowed_hosts, self.keys.open, self.settings.cors_origins)
        # Time every store call the client makes and count the store's failures (the facade's hook).
        self.stop_observing = self.client.observe_store(store_metrics(self.metrics))
        # Requests in flight share the memory store's scans (issue 24: throughput grows with them).
        self.client.batch_concurrent_queries()
        self.jobs = JobRunner(self.metrics, job_board(self.client))
        self.off_loop = OffLoop(alone=self.serving_only_one)  # the hot read routes' work (service/off_loop.py)

    def serving_only_one(self) -> bool:
        """Whether the request asking is all this process is doing: no other request, no ingest job."""
        return self.metrics.series.in_flight == 1 and not self.jobs.busy

    def resolve(self, name: str) -> str:
        """The collection a name means: an alias (``vectorseam alias set``) resolves to its target."""
        return self.client.resolve(name)

    # --- limits from the configuration, narrower than the schema's hard ceilings ---------------

    def check_k(self, k: int) -> None:
        if k > self.settings.max_k:
            raise ValidationError(f"k={k} is over this server's limit of {self.settings.max_k} "
                                  "(service.max_k)")

    def check_text(self, text: str, field_name: str) -> None:
        if len(text) > self.settings.max_text_chars:
            raise ValidationError(
                f"{field_name}: {len(text)} characters, over this server's limit of "
                f"{self.settings.max_text_chars} (service.max_text_chars); split the text"
            )

    def check_depth(self, depth: int, group_size: int = 1) -> None:
        """How deep one page may reach into a ranking (offset + k, and hits per group): ten pages of
        ``service.max_k``, as a search engine bounds from + size."""
        limit = self.settings.max_k * 10
        if depth > limit or depth * group_size > limit * 10:
            raise ValidationError(f"offset + k = {depth}{f' groups of {group_size}' if group_size > 1 else ''} reaches "
                                  f"deeper than this server's limit of {limit} results (10 x service.max_k); "
                                  "narrow the query with a filter, or page with a cursor from nearer the top")

    def check_input_chars(self, texts: list[str], what: str) -> None:
        """The per-request budget on text to embed (``service.max_input_chars``), before any work: 413."""
        check_input_chars(texts, what, self.settings)

    def check_filter(self, spec: dict[str, Any] | None) -> None:
        """Depth, ``$in`` length and cost limits (:mod:`vectorseam.service.limits`), before any store call."""
        check_filter(spec, self.settings)

    def check_batch(self, n: int, what: str) -> None:
        if n > self.settings.max_batch:
            raise ValidationError(
                f"{n} {what} in one request; this server takes at most {self.settings.max_batch} "
                "(service.max_batch): send several requests"
            )


def protected_paths(client: VectorSeam) -> list[tuple[Path, str]]:
    """What no ingest directory may overlap: the data directory, the store's files (any store option
    naming a path, such as the memory store's or Qdrant's ``path``) and the BM25 sidecar."""
    found = [(client.data_dir.root, "the data directory"), (client.sidecar_root, "the BM25 index files")]
    for option, value in store_options(client.settings).items():
        if isinstance(value, str | PurePath) and option.lower().endswith(("path", "dir", "directory")):
            found.append((Path(value), f"the store's files (store.options.{option})"))
    return found


def check_ingest_dirs(client: VectorSeam, settings: ServiceSettings) -> list[tuple[Path, str]]:
    """Refuse ingest directories that overlap the data or each other (:func:`check_roots`); also called
    by ``vectorseam serve`` before it starts worker processes, which would each fail and be restarted."""
    protected = protected_paths(client)
    check_roots(settings, protected)
    return protected


def job_board(client: VectorSeam) -> JobBoard:
    """Where ingest jobs are recorded: a poll may reach any worker process, or any replica.

    PostgreSQL when there is one to share (``service.jobs_dsn``, or the database the store lives in),
    so replicas on several machines see each other's jobs; otherwise SQLite in ``data_dir``, shared by
    the worker processes of this machine.
    """
    settings = client.settings
    dsn = client.shared_database(settings.service.jobs_dsn)
    if dsn is not None:
        return PostgresJobBoard(dsn, settings.service.jobs_schema)
    return SqliteJobBoard(DataDir.at(settings.data_dir).service_jobs)


async def get_state(request: Request) -> ServiceState:
    """``async``, as every dependency here: FastAPI runs a plain ``def`` dependency in the thread pool, a hop
    there and back per dependency that cost more than the route's own work (py-spy, load_search)."""
    state: ServiceState = request.app.state.service
    return state


def caller_of(request: Request) -> Caller | None:
    """The caller the auth dependency identified for this request (None before it ran)."""
    found = request.scope.get("state", {}).get("vs_caller")
    return found if isinstance(found, Caller) else None


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


def require(scope: Scope) -> Any:
    """A dependency that admits callers whose key has ``scope`` (admin keys have every scope) and, on
    routes with a ``{name}`` collection, whose key may use that collection: both the name given and,
    for an alias, its target (else 404, see :mod:`vectorseam.service.auth`)."""

    async def dependency(
        request: Request,
        state: Annotated[ServiceState, Depends(get_state)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> Caller:
        if state.keys.open:
            caller = state.keys.anonymous
        else:
            presented = bearer.credentials if bearer is not None else header
            if not presented:
                raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>' "
                                     "or 'X-API-Key: <key>'")
            found = state.keys.identify(presented)
            if found is None:
                raise AuthError(401, "invalid API key")
            caller = found
        request_state = request.scope.setdefault("state", {})
        request_state["caller"] = caller.name  # for the access log
        request_state["vs_caller"] = caller
        if not caller.allows(scope):
            raise AuthError(403, f"the key {caller.name!r} has the {caller.scope!r} scope; "
                                 f"this route needs {scope!r}")
        name = request.path_params.get("name")
        if caller.scoped and isinstance(name, str) and not (caller.sees(name) and caller.sees(state.resolve(name))):
            raise CollectionNotFoundError(not_visible(name))
        return caller

    return Depends(dependency)
