"""Fuzzing the ingest job with hostile rows and files (issue 13), kept in the suite.

The property: every row read either lands or is rejected, so ``written + rejected`` equals the rows
in the file, the store holds exactly what the report says was written, every reject is in the
rejects file with file:line, and nothing raises. Rows come from the real job, the real model and a
real (in-memory) memory store; a fresh store per example.

What counts as a row: a non-blank line of a JSONL file; a CSV record, where the generator makes
every good row with :mod:`csv` (quoted newlines, doubled quotes, NULs...) and every broken one on
one physical line. One limit of any CSV reader shapes the generator: a stray quote that a later
quote closes into a well-formed record *is* valid CSV (it cannot be told from a multi-line field),
so generated values start with a letter: a stray quote then always meets ``"v`` (a parse error) or
the end of the file, the two ways an unclosed quote shows, and its row must be the one rejected.
"""

from __future__ import annotations

import csv
import io
import json
import os
import string
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vectorseam.embedders.local import LocalEmbedder
from vectorseam.errors import ValidationError
from vectorseam.ingest.job import IngestOptions, IngestReport, ingest_file
from vectorseam.ingest.sources import Document, Reject, RowSpec, Source
from vectorseam.stores.memory import MemoryStore

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])

SPECIAL = st.sampled_from(['"', ",", "\n", "\r", "\r\n", "\x00", "\t", "{", "}", "[/]", "[red]", "\\", "\u2028",
                           "é", "😀", " ", "\ufeff", "\x85", "{text}", "'"])


def hostile_text(surrogates: bool = False) -> st.SearchStrategy[str]:
    chars = st.characters() if surrogates else st.characters(blacklist_categories=("Cs",))
    return st.lists(st.one_of(SPECIAL, st.text(chars, max_size=5)), max_size=6).map("".join)


TEMPLATES = st.sampled_from([None, "{text}", "{text!r:>12}", "{n:d} {text}", "{n:,.2f}", "{n!a:^9}|{text:.3}",
                             "{{literal}} {text} {n}"])


def ingest(path: Path, spec: RowSpec, emb: LocalEmbedder) -> tuple[IngestReport, MemoryStore, list[str]]:
    store = MemoryStore()
    rejects = path.parent / "rejects.txt"
    report = ingest_file(store, emb, "fuzz", path, spec, None, IngestOptions(batch_size=4, rejects_path=rejects))
    return report, store, rejects.read_text(encoding="utf-8").splitlines()


def check(report: IngestReport, store: MemoryStore, reject_lines: list[str], rows: int, prefix: str) -> None:
    assert report.written + report.rejected == rows, (report.summary(), reject_lines)
    assert report.dropped == report.unchanged == 0
    assert store.count("fuzz") == report.chunks_written  # what the report says landed, landed
    assert len(reject_lines) == report.rejected
    for line in reject_lines:
        origin, _, reason = line.partition(": ")
        assert origin.startswith(prefix) and reason, line


# -- CSV ------------------------------------------------------------------------------------------

def _value() -> st.SearchStrategy[str]:
    return hostile_text().map(lambda s: "v" + s)


numbers = st.sampled_from(["5", "-0", "007", "1e999", "nan", "3.25", "9" * 5000, str(2**64), "", " 4"])
csv_rows = st.one_of(
    st.tuples(st.just("good"), _value(), _value(), st.one_of(numbers, _value())),
    # an unclosed quote, on one physical line
    st.tuples(st.just("stray"), st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True),
              st.text(st.characters(blacklist_characters='"\r\n', blacklist_categories=("Cs",)), max_size=12),
              st.sampled_from(["", ",1", ",1,2"])),
    # the wrong number of fields
    st.tuples(st.just("fields"), st.lists(st.text("ab xé\x00{}[]", min_size=1, max_size=4), min_size=1,
                                          max_size=5).filter(lambda c: len(c) != 3), st.none(), st.none()),
    # bytes that may not be UTF-8
    st.tuples(st.just("bytes"), st.binary(min_size=1, max_size=24).map(
        lambda b: b.replace(b"\n", b"").replace(b"\r", b"").replace(b'"', b"") or b"x"), st.none(), st.none()),
)


def _csv_line(kind: str, a: Any, b: Any, c: Any) -> bytes:
    if kind == "good":
        out = io.StringIO()
        csv.writer(out).writerow([a, b, c])
        return out.getvalue().encode("utf-8")
    if kind == "stray":
        return f'{a},"v{b}{c}\n'.encode()
    if kind == "fields":
        return (",".join(a) + "\n").encode("utf-8")
    return bytes(a) + b"\n"


@FUZZ
@given(rows=st.lists(csv_rows, min_size=1, max_size=7), template=TEMPLATES, blank=st.booleans())
def test_csv_rows_all_land_or_are_rejected(rows: list[tuple[str, Any, Any, Any]], template: str | None,
                                           blank: bool, local_embedder: LocalEmbedder) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.csv"
        lines = [_csv_line(*row) for row in rows]
        if blank:
            lines.insert(len(lines) // 2, b"\r\n")  # a blank line is not a row
        path.write_bytes(b"id,text,n\r\n" + b"".join(lines))
        report, store, rejects = ingest(path, RowSpec(text_template=template), local_embedder)
        check(report, store, rejects, len(rows), f"{path}:")
        stray = {i for i, row in enumerate(rows) if row[0] == "stray"}
        rejected_lines = {int(line.split(": ", 1)[0].rsplit(":", 1)[1]) for line in rejects}
        first_line = 2  # line numbers of generated rows: the header is line 1, good rows may span lines
        starts = []
        for line in lines:
            if line != b"\r\n":
                starts.append(first_line)
            first_line += line.count(b"\n") + line.count(b"\r") - line.count(b"\r\n")
        assert {starts[i] for i in stray} <= rejected_lines  # the row with the stray quote is the one rejected


# -- JSONL ----------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), hostile_text(True))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(hostile_text(True), inner, max_size=2)),
                           max_leaves=6)
raw_values = st.sampled_from(["9" * 4300, "9" * 4301, "-" + "1" * 20000, "[" * 999 + "]" * 999, "[" * 1001 + "]" * 1001,
                              "[" * 20000 + "]" * 20000, '"\\ud800"', '"\\u0000"', "NaN", "-Infinity", "1e400"])
jsonl_lines = st.one_of(
    st.builds(lambda i, t, n: json.dumps({"id": i, "text": t, "n": n}).encode(),
              st.one_of(hostile_text(True), st.integers(), json_values), st.one_of(hostile_text(True), json_values),
              json_values),
    st.builds(lambda f, v: f'{{"id": "r", "{f}": {v}}}'.encode(), st.sampled_from(["text", "n", "id"]), raw_values),
    st.builds(lambda v: json.dumps(v).encode(), json_values),  # not an object
    st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=20).map(str.encode),
    st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")),
)


@FUZZ
@given(lines=st.lists(jsonl_lines, min_size=1, max_size=7), template=TEMPLATES)
def test_jsonl_rows_all_land_or_are_rejected(lines: list[bytes], template: str | None,
                                             local_embedder: LocalEmbedder) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        try:
            report, store, rejects = ingest(path, RowSpec(text_template=template), local_embedder)
        except ValidationError as exc:  # refused before any row: only when the first object lacks a field
            first = first_object([line for line in lines if line.strip()])
            needed = [name for _, name, _, _ in string.Formatter().parse(template) if name] if template else ["text"]
            assert "nothing was read" in str(exc) and first is not None and not set(needed) <= set(first), exc
            return
        check(report, store, rejects, sum(1 for line in lines if line.strip()), f"{path}:")


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("a repeated key")
    return dict(pairs)


def first_object(lines: list[bytes]) -> dict[str, Any] | None:
    """The first line that is a JSON object (as the reader reads them), or None."""
    for n, line in enumerate(lines):
        try:
            obj = json.loads(line.decode("utf-8-sig" if n == 0 else "utf-8"), object_pairs_hook=_no_repeats)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


# -- templates ------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(template=st.text("{}!:.<>^=+-#0123456789,_ sdrazqxfe%text", max_size=16),
       values=st.lists(st.one_of(json_values, st.integers(-(10**30), 10**30)), min_size=1, max_size=4))
def test_any_template_is_refused_up_front_or_works_row_by_row(template: str, values: list[Any]) -> None:
    """No embedding here: a template is either refused when the spec is made (ValidationError, naming
    it), or at the first row when it names a field that row lacks, or every row becomes a document or a
    reject."""
    try:
        spec = RowSpec(text_template=template)
    except ValidationError as exc:
        assert "text template" in str(exc)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        path.write_text("".join(json.dumps({"id": str(i), "text": v, "n": v}) + "\n" for i, v in enumerate(values)))
        try:
            items = list(Source(path, spec).documents())
        except ValidationError as exc:  # or refused at the file's first row: a field no row has
            assert "nothing was read" in str(exc) and not set(spec.template().fields) <= {"id", "text", "n"}, exc  # type: ignore[union-attr]
            return
        assert len(items) == len(values) and all(isinstance(i, Document | Reject) for i in items)


# -- directories ----------------------------------------------------------------------------------

entries = st.tuples(st.sampled_from(["file", "file", "nested", "dangling", "fifo", "hidden"]),
                    st.sampled_from([".txt", ".md", ".html", ".pdf", ".png"]), st.binary(max_size=60))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.lists(entries, min_size=1, max_size=6))
def test_directory_files_all_land_or_are_rejected(spec: list[tuple[str, str, bytes]],
                                                  local_embedder: LocalEmbedder) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "docs"
        (root / "sub").mkdir(parents=True)
        expected = 0
        for i, (kind, suffix, data) in enumerate(spec):
            name = f"e{i}{suffix}"
            path = {"nested": root / "sub" / name, "hidden": root / f".{name}"}.get(kind, root / name)
            if kind == "dangling":
                path.symlink_to(root / f"missing{i}{suffix}")
            elif kind == "fifo":
                os.mkfifo(path)
            else:
                path.write_bytes(data)
            expected += kind != "hidden" and suffix != ".png"
        report, store, rejects = ingest(root, RowSpec(), local_embedder)
        check(report, store, rejects, expected, str(root))
