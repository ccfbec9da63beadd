"""Durable bytes, done one way: SQLite connections, one atomic file write, one cross-process lock.

Why one module: every piece of state vectorseam keeps on disk (the memory store's collections, the
record manager, the embedding cache, aliases, profiles, job tables) must survive a killed process and
be shared by the server's workers, CLI jobs and scripts at once. SQLite already makes those promises
(crash-safe commits, one writer at a time, readers that never block it in WAL mode), so state lives
there wherever it can. What cannot (a file a user hands to another tool, an ONNX graph) goes through
:func:`atomic_write`; what must be exclusive for longer than a transaction (a load job per collection)
through :class:`FileLock`. Files are created private to the user (0600, directories 0700): a data
directory holds every tenant's records.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

from vectorseam.errors import StoreUnavailableError

FILE_MODE = 0o600
DIR_MODE = 0o700
BUSY_TIMEOUT_S = 60.0
MAX_PARAMETERS = 999  # SQLite's limit on host parameters in older builds


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a directory, every level it creates 0700 (``mkdir(parents=True)`` would give the
    parents the umask's mode, and a listing of ``ingest/rejects/`` names every collection); an
    existing directory keeps its mode."""
    p = Path(path)
    if not p.is_dir():
        missing = [p, *(q for q in p.parents if not q.exists())]
        for level in reversed(missing):
            with contextlib.suppress(FileExistsError):
                level.mkdir(mode=DIR_MODE)
    return p


def _precreate(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use 0644 less the umask); its -wal
    and -shm files then take the same mode."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))


def connect(path: str | os.PathLike[str], *, create: bool = True, readonly: bool = False,
            synchronous: str = "FULL", timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """An autocommit connection (``isolation_level=None``: transactions are explicit, see
    :func:`transaction`) in WAL mode, usable from any thread under the caller's own lock.

    ``create=False`` refuses to make a missing file (a collection dropped meanwhile must not come back
    as an empty database); ``synchronous="FULL"`` makes a commit durable across a power cut, "NORMAL"
    across a killed process only (caches, whose loss costs time, not data).
    """
    p = Path(path)
    if create and not readonly:
        _precreate(p)
    mode = "ro" if readonly else "rw"
    conn = sqlite3.connect(f"file:{quote(str(p))}?mode={mode}", uri=True, timeout=timeout,
                           isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        if not readonly:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """One explicit transaction on an autocommit connection; rolled back when the block raises."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[object]]) -> None:
    """``head`` (e.g. ``INSERT OR REPLACE INTO t (a, b) VALUES``) with as many rows per statement as the
    parameter limit allows: Python's sqlite3 releases the GIL at every step, so one statement per row
    cost milliseconds per batch while embedding threads held it."""
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, MAX_PARAMETERS // width)
    row_marks = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        conn.execute(f"{head} {','.join([row_marks] * len(part))}", [value for row in part for value in row])


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in ``directory`` durable (its entry, not only its bytes)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Rename ``source`` (a file or a directory) to ``target`` on the same file system, durably: a file's
    bytes are synced first, then the directory entries on both sides, so after a power cut the move has
    happened whole or not at all. ``target`` is replaced when it is a file or an empty directory; a
    directory with files in it raises ``OSError`` (callers use that to detect another process's move)."""
    src, dst = Path(source), Path(target)
    if src.is_file():
        with open(src, "rb") as fh:
            os.fsync(fh.fileno())
    os.replace(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)
    return dst


def atomic_write(path: str | os.PathLike[str], data: bytes | Iterable[bytes], mode: int = FILE_MODE) -> Path:
    """Replace ``path`` with ``data`` so that a reader, or the file after a crash, holds the old bytes
    or the new ones, never a mix: temp file, fsync, rename, fsync of the directory. The temp file is
    removed when anything fails. ``data`` may be chunks (a snapshot streams gigabytes)."""
    target = Path(path)
    private_dir(target.parent)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            for chunk in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return target


class FileLock:
    """Exclusive access across processes for longer than one transaction (``flock``: the kernel
    releases it when the holder dies, so a killed job never leaves it stuck).

    ``timeout=0`` fails at once when held; otherwise waits up to ``timeout`` seconds. The holder's pid
    is written into the file so the error can name it: ``busy(pid)`` makes that error (by default a
    transient :class:`StoreUnavailableError` naming ``what``).
    """

    def __init__(self, path: str | os.PathLike[str], what: str, timeout: float = 0.0,
                 busy: Callable[[str], Exception] | None = None) -> None:
        self.path = Path(path)
        self.what = what
        self.timeout = timeout
        self.busy = busy
        self._fd: int | None = None

    def _busy(self, holder: str) -> Exception:
        if self.busy is not None:
            return self.busy(holder)
        waited = f" for {self.timeout:.0f} s" if self.timeout else ""
        return StoreUnavailableError(
            f"{self.what} is in use by another process (pid {holder}, lock {self.path}); waited{waited} and did "
            "nothing: retry when it is done, or stop it")

    def __enter__(self) -> FileLock:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        deadline = time.monotonic() + self.timeout
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise self._busy(holder) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
