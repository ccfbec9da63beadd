"""The ingest job against hostile and unreadable input (issue 13): every input row lands or is in the
rejects file with file:line and reason, one bad row never stops the job, and ``--cleanup full`` never
deletes a record whose source it could not read. Real model, real memory store (and real pgvector for
the NUL row that used to fail a whole batch there)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_ingest_helpers import write_jsonl
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.errors import CollectionNotFoundError, ValidationError
from vectorseam.ingest.job import IngestOptions, IngestReport, JobState, ingest_file
from vectorseam.ingest.sources import RowSpec
from vectorseam.retrying import RetryPolicy
from vectorseam.stores.memory import MemoryStore

FAST_RETRY = RetryPolicy(attempts=2, backoff=0.01)


def run(store: Any, emb: LocalEmbedder, path: Path, state: JobState | None, spec: RowSpec | None = None,
        **options: Any) -> IngestReport:
    options.setdefault("retry", FAST_RETRY)
    return ingest_file(store, emb, "docs", path, spec or RowSpec(), state, IngestOptions(**options))


def stored(store: Any, collection: str = "docs") -> dict[str, str]:
    return {r.id: r.text for page in store.scan(collection, include_vectors=False) for r in page}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


@contextlib.contextmanager
def permissions_enforced() -> Iterator[None]:
    """Make file permissions bind the calling thread even as root.

    The suite runs as root, for whom mode 000 means nothing. Linux capabilities are per thread: this
    thread drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its *effective* set (keeping them
    permitted, so they come back afterwards), and the job's reader, which runs in the caller's
    thread, meets a real EACCES. Threads started meanwhile inherit the reduced set.
    """
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    version_3 = 0x20080522
    header, data = _CapHeader(version_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        pytest.skip(f"capget failed (errno {ctypes.get_errno()}): cannot make files unreadable for root")
    saved = [(d.effective, d.permitted, d.inheritable) for d in data]
    data[0].effective &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.capset(ctypes.byref(_CapHeader(version_3, 0)), data) != 0:
        pytest.skip(f"capset failed (errno {ctypes.get_errno()}): cannot make files unreadable for root")
    try:
        yield
    finally:
        for d, (eff, perm, inh) in zip(data, saved, strict=True):
            d.effective, d.permitted, d.inheritable = eff, perm, inh
        assert libc.capset(ctypes.byref(_CapHeader(version_3, 0)), data) == 0


@pytest.fixture
def state(tmp_path: Path) -> JobState:
    return JobState.under(tmp_path / "data", "memory:hostile")


def test_cleanup_full_keeps_the_records_of_files_and_folders_it_could_not_read(
    tmp_path: Path, state: JobState, local_embedder: LocalEmbedder
) -> None:
    root = tmp_path / "docs"
    (root / "locked").mkdir(parents=True)
    names = ["gone.txt", "dangling.txt", "loop.txt", "pipe.txt", "denied.txt", "kept.txt", "locked/inner.txt"]
    for name in names:
        (root / name).write_text(f"A short note called {name} about rivers and tea.")
    store = MemoryStore(tmp_path / "data" / "memory")
    first = run(store, local_embedder, root, state)
    assert (first.added, first.rejected) == (7, 0)

    (root / "gone.txt").unlink()  # really gone: its records go
    for name in ("dangling.txt", "loop.txt", "pipe.txt"):
        (root / name).unlink()
    (root / "dangling.txt").symlink_to(root / "nowhere.txt")
    (root / "loop.txt").symlink_to(root / "loop.txt")
    os.mkfifo(root / "pipe.txt")
    (root / "denied.txt").chmod(0)
    (root / "locked").chmod(0)
    rejects = tmp_path / "rejects.txt"
    try:
        with permissions_enforced():
            with pytest.raises(PermissionError):
                (root / "denied.txt").read_bytes()
            report = run(store, local_embedder, root, state, cleanup="full", rejects_path=rejects)
    finally:
        (root / "denied.txt").chmod(0o644)
        (root / "locked").chmod(0o755)
    assert (report.deleted, report.kept, report.rejected, report.unchanged) == (1, 5, 5, 1)
    assert "kept 5 whose source could not be read" in report.summary()
    assert sorted(stored(store)) == sorted(n for n in names if n != "gone.txt")
    lines = rejects.read_text().splitlines()
    assert lines[0] == f"{root / 'locked'}: cannot list the folder: Permission denied; the stored records of files " \
                       "under it are kept"
    reasons = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines[1:]}
    assert reasons == {
        f"{root / 'dangling.txt'}:1": "cannot read the file: No such file or directory (a symbolic link whose target "
                                      "cannot be reached)",
        f"{root / 'denied.txt'}:1": "cannot read the file: Permission denied",
        f"{root / 'loop.txt'}:1": "cannot read the file: Too many levels of symbolic links (a symbolic link whose "
                                  "target cannot be reached)",
        f"{root / 'pipe.txt'}:1": "cannot read the file: it is a FIFO, not a regular file",
    }
    # Readable again (but the loop and the FIFO): nothing was lost, nothing needs writing again.
    (root / "dangling.txt").unlink()
    (root / "dangling.txt").write_text("A short note called dangling.txt about rivers and tea.")
    again = run(store, local_embedder, root, state, cleanup="full")
    assert (again.deleted, again.kept, again.rejected, again.added, again.updated) == (0, 2, 2, 0, 0)


def test_cleanup_full_keeps_every_record_while_a_row_without_a_known_id_is_unreadable(
    tmp_path: Path, state: JobState, local_embedder: LocalEmbedder
) -> None:
    rows = [{"id": k, "text": f"Row {k} talks about owls and violins."} for k in "abcd"]
    src = write_jsonl(tmp_path / "rows.jsonl", rows)
    store = MemoryStore()
    assert run(store, local_embedder, src, state).added == 4
    # b's text is empty now (its row is there, so its record stays); d vanished (its record goes).
    write_jsonl(src, [rows[0], {"id": "b", "text": " "}, rows[2]])
    report = run(store, local_embedder, src, state, cleanup="full")
    assert (report.deleted, report.kept, report.rejected) == (1, 1, 1)
    assert sorted(stored(store)) == ["a", "b", "c"]
    # A broken line could be any row, c among them: the cleanup deletes nothing and says why.
    src.write_text(json.dumps(rows[0]) + '\n{"id": "c", "text": "broken\n')
    report = run(store, local_embedder, src, state, cleanup="full")
    assert (report.deleted, report.kept, report.rejected) == (0, 2, 1)
    assert sorted(stored(store)) == ["a", "b", "c"]
    write_jsonl(src, rows[:1])
    assert run(store, local_embedder, src, state, cleanup="full").deleted == 2


def test_one_bad_row_never_stops_the_job_and_the_store_stays_saveable(
    tmp_path: Path, state: JobState, local_embedder: LocalEmbedder
) -> None:
    src = tmp_path / "hostile.jsonl"
    src.write_text("\n".join([
        '{"id": "r1", "text": "The first good row, about comets."}',
        '{"id": "big", "text": "a", "n": ' + "9" * 5000 + "}",
        '{"id": "deep", "text": "a", "n": ' + "[" * 3000 + "]" * 3000 + "}",
        '{"id": "nul", "text": "a\\u0000b"}',
        '{"id": "sur", "text": "a\\ud800b"}',
        '{"id": "meta", "text": "fine text", "m": "\\udfff"}',
        '{"id": "r2", "text": "The second good row, about bridges."}',
    ]) + "\n")
    store = MemoryStore(tmp_path / "data" / "memory")
    rejects = tmp_path / "rejects.txt"
    report = run(store, local_embedder, src, state, rejects_path=rejects)
    assert (report.written, report.rejected) == (2, 5)
    assert [line.split(": ", 1)[0] for line in rejects.read_text().splitlines()] == [
        f"{src}:{n}" for n in (2, 3, 4, 5, 6)]
    reopened = MemoryStore(tmp_path / "data" / "memory")  # the save went through: no surrogate got in
    assert sorted(stored(reopened)) == ["r1", "r2"]


def test_templates_that_cannot_work_stop_the_job_before_the_first_row(
    tmp_path: Path, state: JobState, local_embedder: LocalEmbedder
) -> None:
    src = tmp_path / "scores.csv"
    src.write_text("id,Summary,Score\n1,Great,5\n2,Odd,n/a\n3,Fine,3\n")
    store = MemoryStore()
    for template in ("{}", "{Summary!z}", "{Summary:>200000000}"):
        with pytest.raises(ValidationError, match="text template"):
            ingest_file(store, local_embedder, "docs", src, RowSpec(text_template=template), state)
    with pytest.raises(CollectionNotFoundError):
        store.count("docs")  # refused before anything was created
    report = run(store, local_embedder, src, state, RowSpec(text_template="{Summary}: {Score:d} of 5"))
    assert (report.written, report.rejected) == (2, 1)
    assert str(report.rejects[0]).startswith(f"{src}:3: text template field {{Score:d}} fails")
    assert stored(store) == {"1": "Great: 5 of 5", "3": "Fine: 3 of 5"}


def test_a_nul_row_is_rejected_before_pgvector_instead_of_failing_the_batch(
    tmp_path: Path, local_embedder: LocalEmbedder, pg_server: Any
) -> None:
    from vectorseam_pgvector import create_store

    src = write_jsonl(tmp_path / "rows.jsonl", [
        {"id": "p1", "text": "Plain text about tea."},
        {"id": "p2", "text": "A NUL \u0000 inside"},
        {"id": "p3", "text": "Metadata with a NUL", "tag": "x\u0000y"},
        {"id": "p4", "text": "Plain text about owls."},
    ])
    store = create_store(dsn=pg_server.dsn(), schema=f"t_{uuid.uuid4().hex[:12]}", retries=1)
    try:
        report = run(store, local_embedder, src, None, batch_size=64)
        assert (report.written, report.rejected) == (2, 2)
        assert [r.origin for r in report.rejects] == [f"{src}:2", f"{src}:3"]
        assert "NUL character" in report.rejects[0].reason and "metadata field 'tag'" in report.rejects[1].reason
        assert sorted(stored(store)) == ["p1", "p4"]
    finally:
        store.close()
