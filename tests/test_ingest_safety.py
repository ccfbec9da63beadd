"""Load jobs that cannot surprise (issue 22): a cleanup never wipes a source that merely looks empty,
``--verify`` never deletes what a load job did not write, a job that accepts no row fails, misnamed
fields are refused before the first row, repeated JSON keys and huge reject reasons are handled row
by row, rejects files are private, and hostile ``--filter`` values are one line. Real model, real
memory store, the CLI as a separate process.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_ingest_helpers import make_rows, write_jsonl
from vectorseam.embedders.local import LocalEmbedder
from vectorseam.errors import ValidationError
from vectorseam.ingest.job import IngestOptions, IngestReport, JobState, ingest_file
from vectorseam.ingest.sources import MAX_REJECT_CHARS, RowSpec, Source
from vectorseam.retrying import RetryPolicy
from vectorseam.stores.memory import MemoryStore
from vectorseam.types import Record

FAST_RETRY = RetryPolicy(attempts=2, backoff=0.01)


def run(store: Any, emb: LocalEmbedder, path: Path, state: JobState, spec: RowSpec | None = None,
        **options: Any) -> IngestReport:
    return ingest_file(store, emb, "docs", path, spec or RowSpec(), state, IngestOptions(retry=FAST_RETRY, **options))


@pytest.fixture
def state(tmp_path: Path) -> JobState:
    return JobState.under(tmp_path / "data", "memory:test")


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    return MemoryStore(tmp_path / "data" / "memory")


def ids(store: MemoryStore) -> set[str]:
    return {r.id for page in store.scan("docs") for r in page}


# --- --cleanup full and --verify ------------------------------------------------------------------------


def test_cleanup_full_refuses_a_directory_that_is_now_empty(tmp_path: Path, store: MemoryStore, state: JobState,
                                                            local_embedder: LocalEmbedder) -> None:
    docs = tmp_path / "mnt"
    docs.mkdir()
    for i in range(3):
        (docs / f"d{i}.txt").write_text(f"document number {i} about owls")
    assert run(store, local_embedder, docs, state, cleanup="full").added == 3
    for f in docs.iterdir():  # the volume is not mounted: the folder is there, empty
        f.unlink()
    with pytest.raises(ValidationError, match=r"yielded no documents, but 3 of its documents .* --allow-empty-source"):
        run(store, local_embedder, docs, state, cleanup="full")
    assert ids(store) == {"d0.txt", "d1.txt", "d2.txt"}  # nothing deleted
    emptied = run(store, local_embedder, docs, state, cleanup="full", allow_empty_source=True)
    assert emptied.deleted == 3 and ids(store) == set()


def test_cleanup_full_refuses_a_file_truncated_to_nothing(tmp_path: Path, store: MemoryStore, state: JobState,
                                                          local_embedder: LocalEmbedder) -> None:
    src = write_jsonl(tmp_path / "src.jsonl", make_rows(4))
    run(store, local_embedder, src, state)
    src.write_bytes(b"")
    with pytest.raises(ValidationError, match="yielded no documents, but 4 of its documents"):
        run(store, local_embedder, src, state, cleanup="full")
    assert len(ids(store)) == 4
    # a source that still yields documents is cleaned up as before: the vanished rows go
    write_jsonl(src, make_rows(1))
    assert run(store, local_embedder, src, state, cleanup="full").deleted == 3


def test_cleanup_of_a_source_never_ingested_is_not_refused(tmp_path: Path, store: MemoryStore, state: JobState,
                                                           local_embedder: LocalEmbedder) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    report = run(store, local_embedder, empty, state, cleanup="full")  # nothing tracked: nothing to protect
    assert (report.written, report.deleted) == (0, 0)


def test_verify_repairs_tracked_records_and_never_deletes_others(tmp_path: Path, store: MemoryStore,
                                                                  state: JobState,
                                                                  local_embedder: LocalEmbedder) -> None:
    src = write_jsonl(tmp_path / "src.jsonl", make_rows(5))
    run(store, local_embedder, src, state)
    vec = store.fetch("docs", ["doc-0001"])[0].vector
    api_written = [Record(f"api-{i}", vec, f"written through the API {i}", {}) for i in range(3)]
    store.upsert("docs", [Record("doc-0001", vec, "tampered", {}), *api_written])
    store.delete("docs", ids=["doc-0003"])
    report = run(store, local_embedder, src, state, cleanup="full", verify=True)
    assert (report.restored, report.untracked, report.deleted) == (2, 3, 0)
    assert ids(store) == {f"doc-{i:04d}" for i in range(5)} | {"api-0", "api-1", "api-2"}
    assert store.fetch("docs", ["doc-0001"])[0].text != "tampered"
    # a cleanup of another source never touches records it did not write either
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "o1", "text": "another source"}])
    run(store, local_embedder, other, state, cleanup="full", verify=True)
    assert {"api-0", "api-1", "api-2"} <= ids(store)


# --- jobs that accept nothing, fields checked up front --------------------------------------------------


def test_a_job_whose_every_row_is_rejected_says_so(tmp_path: Path, store: MemoryStore, state: JobState,
                                                   local_embedder: LocalEmbedder) -> None:
    src = tmp_path / "blank.csv"
    src.write_text("id,text\n1,\n2,   \n")
    report = run(store, local_embedder, src, state)
    assert report.nothing_accepted and report.rejected == 2
    fine = run(store, local_embedder, write_jsonl(tmp_path / "ok.jsonl", make_rows(2)), state)
    assert not fine.nothing_accepted
    again = run(store, local_embedder, tmp_path / "ok.jsonl", state)  # all unchanged: not a failure
    assert again.written == 0 and not again.nothing_accepted


@pytest.mark.parametrize(("name", "content", "spec", "message"), [
    ("five.csv", "id,body,Score\n1,a,2\n", RowSpec(), "the header has no text field 'text'; its fields are 'id', 'body', 'Score'"),
    ("five.csv", "id,body\n1,a\n", RowSpec(text_field="bdy"), "no text field 'bdy'; its fields are 'id', 'body'"),
    ("five.tsv", "id\tbody\n1\ta\n", RowSpec(text_field="body", id_field="key"), "the header has no id field 'key'"),
    ("five.csv", "id,Summary\n1,a\n", RowSpec(text_template="{Summary}: {Txt}"), "no text template field 'Txt'"),
    ("five.csv", "id,text,a\n1,x,2\n", RowSpec(metadata_fields=["a", "b"]), "no metadata field 'b'; its fields are"),
    ("five.jsonl", '{"id": 1, "body": "a"}\n{"id": 2, "text": "b"}\n', RowSpec(),
     "the first row has no text field 'text'; its fields are 'id', 'body'"),
    ("five.jsonl", 'not json\n{"id": 1, "body": "a"}\n', RowSpec(), "the first row has no text field 'text'"),
])
def test_misnamed_fields_are_refused_before_the_first_row(tmp_path: Path, name: str, content: str, spec: RowSpec,
                                                           message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValidationError) as err:
        Source(path, spec).check()
    assert message in str(err.value) and str(path) in str(err.value), str(err.value)


def test_parquet_fields_are_checked_against_the_schema(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": ["1"], "content": ["a"]}), path)
    with pytest.raises(ValidationError, match="the schema has no text field 'text'; its fields are 'id', 'content'"):
        Source(path).check()
    Source(path, RowSpec(text_field="content")).check()


# --- rows: repeated JSON keys, huge reasons; the rejects file ------------------------------------------


def test_repeated_json_keys_reject_that_row(tmp_path: Path, store: MemoryStore, state: JobState,
                                            local_embedder: LocalEmbedder) -> None:
    src = tmp_path / "dup.jsonl"
    src.write_text('{"id": "a", "text": "kept"}\n{"id": "b", "text": "one", "text": "two"}\n'
                   '{"id": "c", "text": "fine", "m": {"k": 1, "k": 2}}\n')
    rejects = tmp_path / "rejects.txt"
    report = run(store, local_embedder, src, state, rejects_path=rejects)
    assert (report.added, report.rejected) == (1, 2) and ids(store) == {"a"}
    lines = rejects.read_text().splitlines()
    assert lines[0] == f"{src}:2: the key 'text' appears more than once in this JSON object, so which value is " \
                       "meant is unclear; keep one"
    assert lines[1].startswith(f"{src}:3: the key 'k' appears more than once")


def test_reject_lines_are_capped(tmp_path: Path, store: MemoryStore, state: JobState,
                                 local_embedder: LocalEmbedder) -> None:
    src = tmp_path / "wide.jsonl"
    huge_field = "f" * 500_000
    src.write_text(json.dumps({"id": "a", "text": "fine"}) + "\n" + json.dumps({"id": "b", huge_field: 1}) + "\n")
    rejects = tmp_path / "rejects.txt"
    report = run(store, local_embedder, src, state, rejects_path=rejects)
    (line,) = rejects.read_text().splitlines()
    assert line.startswith(f"{src}:2: missing text field 'text'") and "(truncated: " in line
    assert len(line) < MAX_REJECT_CHARS + 60 and str(report.rejects[0]) == line


def test_rejects_files_are_private(tmp_path: Path, store: MemoryStore, state: JobState,
                                   local_embedder: LocalEmbedder) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": ""}\n')
    fresh, old = tmp_path / "fresh.txt", tmp_path / "old.txt"
    old.write_text("from an older release\n")
    old.chmod(0o644)
    for path in (fresh, old):
        run(store, local_embedder, src, state, rejects_path=path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# --- the CLI ------------------------------------------------------------------------------------------


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vectorseam.cli.__main__", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture()
def env(isolated_env: Path) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(("raw", "needle"), [
    ('{"Score": ' + "9" * 5000 + "}", "more digits than Python reads"),
    ('{"a":' * 20_000 + "1" + "}" * 20_000, "nested too deeply"),  # 120 KB: one argument may hold 128 KB
    ('{"tags": {"$in": ' + "[" * 20_000 + "]" * 20_000 + "}}", "nested too deeply"),
])
def test_hostile_filters_are_one_line_errors(env: dict[str, str], raw: str, needle: str) -> None:
    one_error_line(cli(["search", "owls", "--filter", raw], env), "--filter", needle)


def test_cli_ingest_fails_when_nothing_is_accepted_and_names_the_fields(isolated_env: Path,
                                                                        env: dict[str, str]) -> None:
    five = isolated_env / "five.csv"
    five.write_text("id,Summary,Body\n" + "".join(f"{i},s{i},body {i}\n" for i in range(5)))
    one_error_line(cli(["ingest", str(five), "--collection", "c"], env),
                   "no text field 'text'; its fields are 'id', 'Summary', 'Body'")
    one_error_line(cli(["ingest", str(five), "--collection", "c", "--text-field", "Bdy"], env), "'Bdy'")
    blank = isolated_env / "blank.csv"
    blank.write_text("id,text\n1,\n2, \n")
    proc = cli(["ingest", str(blank), "--collection", "c", "--no-progress"], env)
    one_error_line(proc, "nothing was written: every one of the 2 rows", "was rejected")
    assert "rejected 2" in proc.stdout  # the report and the first rejects are still printed
    ok = cli(["ingest", str(five), "--collection", "c", "--text-field", "Body", "--no-progress"], env)
    assert ok.returncode == 0 and "written 5, rejected 0" in ok.stdout, ok.stderr


def test_cli_cleanup_full_of_an_emptied_folder_needs_the_flag(isolated_env: Path, env: dict[str, str]) -> None:
    docs = isolated_env / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("an owl hoots at night")
    assert cli(["ingest", str(docs), "--collection", "c", "--no-progress"], env).returncode == 0
    (docs / "a.txt").unlink()
    one_error_line(cli(["ingest", str(docs), "--collection", "c", "--cleanup", "full", "--no-progress"], env),
                   "yielded no documents, but 1 of its documents", "--allow-empty-source")
    done = cli(["ingest", str(docs), "--collection", "c", "--cleanup", "full", "--allow-empty-source",
                "--no-progress"], env)
    assert done.returncode == 0 and "deleted 1" in done.stdout, done.stderr
