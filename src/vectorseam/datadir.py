"""Every file under the data directory, named in one place.

Why: the server's workers, CLI jobs and scripts open one data directory at once, and each kind of
state in it has its own owner (the memory store, the load jobs, the service). When every module chose
its own paths, two of them could pick one file, a tenant-facing feature could be pointed into the
directory by accident, and nobody could say what a backup must hold. Here is the whole layout::

    DATA_DIR/
      memory/<collection>/           the memory store (see vectorseam.stores.memory_db): records.sqlite3
                                     is the truth, snapshot-*.npy a cache that may be deleted
      state.sqlite3                  small shared state: aliases, migration progress
      profiles/<store hash>/*.npz    tuned retrieval profiles (stores without collection blobs)
      models/<name>/                 local models fine-tuned by `vectorseam tune --finetune`
      ingest/records.sqlite          the record manager (what each load job wrote)
      ingest/embeddings.sqlite       the embedding cache
      ingest/locks/<key>.lock        one load job per collection
      ingest/rejects/<collection>.txt
      service/jobs.sqlite3           the HTTP service's ingest jobs (one machine's workers)
      bm25/<kind>-<hash>/            the BM25 sidecar of stores without native keyword search

Everything that is not a SQLite database is written through :func:`vectorseam.durable.atomic_write`
or guarded by :class:`vectorseam.durable.FileLock`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vectorseam.durable import private_dir

STATE_DB = "state.sqlite3"


def options_digest(options: dict[str, Any], length: int = 16) -> str:
    """A stable short hash of store options: names a store without its secrets (see store identities in
    :func:`vectorseam.ingest.record_manager.store_identity`)."""
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:length]


def store_folder(store_key: str) -> str:
    """The one folder name of a store's state under the data directory: its kind, then a hash of its
    identity (``store_key``), so two stores never share state and no secret appears in a path."""
    kind = store_key.split(":", 1)[0]
    return f"{kind}-{hashlib.sha256(store_key.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class DataDir:
    """The data directory's layout (see the module docstring). Naming a path creates nothing; the
    owner of each file creates it (0600, directories 0700) when it first writes."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> DataDir:
        return cls(Path(root).expanduser())

    def ensure(self) -> DataDir:
        private_dir(self.root)
        return self

    # -- stores -----------------------------------------------------------------------------------
    @property
    def memory_store(self) -> Path:
        """The memory store's default root (its ``path`` option)."""
        return self.root / "memory"

    def bm25_sidecar(self, store_key: str) -> Path:
        """The BM25 sidecar of one store's collections (derived state: rebuilt from the store if lost)."""
        return self.root / "bm25" / store_folder(store_key)

    # -- shared state -----------------------------------------------------------------------------
    @property
    def state_db(self) -> Path:
        """Aliases, tuned profiles and migration progress (:mod:`vectorseam.state`)."""
        return self.root / STATE_DB

    def profiles(self, store_key: str) -> Path:
        """The tuned retrieval profiles of one store's collections (one ``.npz`` each), for stores that
        keep no collection blobs (the others keep a profile with its collection)."""
        return self.root / "profiles" / hashlib.sha256(store_key.encode()).hexdigest()[:16]

    def finetuned_model(self, name: str) -> Path:
        """A model written by ``vectorseam tune --finetune`` (a sentence-transformers folder): the local
        embedder loads it with ``model = "<this path>"``."""
        return self.root / "models" / name

    # -- load jobs --------------------------------------------------------------------------------
    @property
    def ingest(self) -> Path:
        return self.root / "ingest"

    @property
    def record_manager(self) -> Path:
        return self.ingest / "records.sqlite"

    @property
    def embedding_cache(self) -> Path:
        return self.ingest / "embeddings.sqlite"

    def job_lock(self, store_key: str, collection: str) -> Path:
        key = hashlib.sha256(f"{store_key}\x00{collection}".encode()).hexdigest()[:24]
        return self.ingest / "locks" / f"{key}.lock"

    def rejects(self, collection: str) -> Path:
        return self.ingest / "rejects" / f"{collection}.txt"

    # -- the service ------------------------------------------------------------------------------
    @property
    def service_jobs(self) -> Path:
        return self.root / "service" / "jobs.sqlite3"

    # -- files written by releases before the state database, imported on first use ---------------
    @property
    def legacy_aliases(self) -> Path:
        return self.root / "aliases.json"

    @property
    def legacy_migrations(self) -> Path:
        return self.root / "migrations"

    def contains(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` lies inside the data directory or is an ancestor of it (after resolving
        links): a directory users may read files from must be neither."""
        root = self.root.resolve()
        p = Path(path).resolve()
        return p == root or root in p.parents or p in root.parents
