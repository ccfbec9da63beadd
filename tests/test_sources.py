"""Sources (CSV, JSONL, Parquet, a directory of text/Markdown/HTML/PDF files) and token chunking."""

from __future__ import annotations

import datetime
import decimal
import itertools
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vectorseam.embedders.local import LocalEmbedder
from vectorseam.embedding import WORDS
from vectorseam.errors import ValidationError
from vectorseam.ingest import sources
from vectorseam.ingest.chunking import ChunkSpec, chunk_text
from vectorseam.ingest.sources import Document, Reject, RowSpec, Source


def _docs(items: list[Document | Reject]) -> dict[str, Document]:
    return {d.id: d for d in items if isinstance(d, Document)}


def test_parquet_rows_become_documents_with_typed_metadata(tmp_path: Path) -> None:
    table = pa.table({
        "id": ["p1", "p2", "p3"],
        "text": ["first text", None, "third text"],
        "day": [datetime.date(2024, 5, 1), datetime.date(2024, 5, 2), datetime.date(2024, 5, 3)],
        "price": [decimal.Decimal("1.10"), decimal.Decimal("2.00"), decimal.Decimal("3.50")],
        "n": [1, 2, 3],
        "tags": [["a", "b"], [], ["c"]],
    })
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path)
    source = Source(path)
    items = list(source.documents())
    assert source.estimate() == 3
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [str(r) for r in rejects] == [f"{path}:2: missing text field 'text' (fields: id, text, day, price, n, tags)"]
    docs = _docs(items)
    assert docs["p1"].text == "first text"
    assert docs["p1"].metadata == {"day": "2024-05-01", "price": "1.10", "n": 1, "tags": ["a", "b"]}


def test_csv_and_jsonl_sources(tmp_path: Path) -> None:
    csv_path = tmp_path / "r.csv"
    csv_path.write_text('id,body,score\nx1,"hello, world",4\nx2,,5\n')
    docs = list(Source(csv_path, RowSpec(text_field="body")).documents())
    assert isinstance(docs[0], Document) and docs[0].metadata == {"score": 4}
    assert isinstance(docs[1], Reject) and str(docs[1]).startswith(f"{csv_path}:3: text is empty")
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"id": "j1", "text": "one"}\n[1, 2]\n')
    out = list(Source(jsonl).documents())
    assert isinstance(out[1], Reject) and "expected a JSON object" in out[1].reason


def _minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose content stream shows ``text`` in Helvetica (offsets computed, so valid)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_directory_of_text_markdown_html_and_pdf(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("Plain text about rivers.\n")
    (root / "sub" / "b.md").write_text("# Owls at night\n\nOwls hunt in the dark.\n")
    (root / "c.html").write_text("<html><head><title>Tea guide</title><style>p{color:red}</style></head>"
                                 "<body><script>var x = 1;</script><h1>Green tea</h1><p>Brew it at 80 C.</p>"
                                 "</body></html>")
    (root / "d.pdf").write_bytes(_minimal_pdf("Comets have tails of gas and dust"))
    (root / "bad.txt").write_bytes(b"line one\nline two \xff\xfe broken\n")
    (root / "empty.md").write_text("   \n")
    (root / ".hidden.txt").write_text("never read")
    (root / "image.png").write_bytes(b"\x89PNG")
    source = Source(root)
    items = list(source.documents())
    assert source.estimate() == 6
    docs = _docs(items)
    assert sorted(docs) == ["a.txt", "c.html", "d.pdf", "sub/b.md"]
    assert docs["sub/b.md"].metadata == {"path": "sub/b.md", "format": "markdown", "title": "Owls at night"}
    html = docs["c.html"]
    assert html.text == "Green tea\nBrew it at 80 C." and html.metadata["title"] == "Tea guide"
    assert "Comets have tails" in docs["d.pdf"].text and docs["d.pdf"].metadata["pages"] == 1
    rejects = {str(r) for r in items if isinstance(r, Reject)}
    assert f"{root / 'bad.txt'}:2: undecodable bytes (not UTF-8) at byte 18" in rejects
    assert f"{root / 'empty.md'}:1: text is empty or whitespace only" in rejects


def test_chunks_respect_the_model_token_limit_and_overlap(local_embedder: LocalEmbedder) -> None:
    limit, spans = local_embedder.max_tokens, local_embedder.token_spans
    assert limit == 254  # the model's 256 word pieces less [CLS] and [SEP]
    text = " ".join(f"Sentence {i} mentions unbelievable tokenization of compound words." for i in range(120))
    chunks = chunk_text(text, ChunkSpec(limit, 32), spans)
    model_tok = local_embedder._load().tokenizer
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(model_tok(chunk, add_special_tokens=False)["input_ids"]) <= limit
        assert chunk.split()[0][0].isalnum() and text.count(chunk) == 1  # sliced from the source text
    for left, right in itertools.pairwise(chunks):
        tail = left.split()[-5:]
        assert " ".join(tail) in right  # about 32 shared tokens: the last words reappear
    assert chunk_text("short text", ChunkSpec(limit, 32), spans) == ["short text"]
    model_spans = local_embedder._load().tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    assert spans(text) == [tuple(s) for s in model_spans["offset_mapping"]]  # the file's tokenizer is the model's


def test_regex_tokenizer_fallback_for_remote_embedders() -> None:
    spans = WORDS.spans("Hello, world!")
    assert spans == [(0, 5), (5, 6), (7, 12), (12, 13)]
    chunks = chunk_text(" ".join(["alpha"] * 50), ChunkSpec(20, 4), WORDS.spans)
    assert all(len(c.split()) <= 20 for c in chunks) and len(chunks) == 3


# -- hostile input (issue 13): every row becomes a document or a reject, never nothing -----------

def _outcomes(items: list[Document | Reject]) -> list[str]:
    """Each item as 'line:id' (a document) or 'line:reject' (a reject), in order."""
    return [f"{i.origin.rsplit(':', 1)[1]}:{i.id if isinstance(i, Document) else 'reject'}" for i in items]


def test_csv_unclosed_quote_costs_one_row_not_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('id,text\n1,"first row has a stray quote\n2,second row\n3,third row\n4,fourth row\n')
    items = list(Source(path).documents())
    assert _outcomes(items) == ["2:reject", "3:2", "4:3", "5:4"]
    assert "unclosed quote" in items[0].reason and "runs on to line 5" in items[0].reason  # type: ignore[union-attr]
    # The stray quote meets a later quoted field: the row breaks there; the rows after line 2 still land.
    path.write_text('id,text,n\n1,"stray,1\n2,"a ""quoted"" word",2\n3,"two\nlines",3\n4,"ab"c,4\n5,last,5\n')
    items = list(Source(path).documents())
    assert _outcomes(items) == ["2:reject", "3:2", "4:3", "6:reject", "7:5"]
    docs = _docs(items)
    assert docs["2"].text == 'a "quoted" word' and docs["3"].text == "two\nlines"  # real multi-line fields stay
    assert "must be doubled" in items[3].reason  # type: ignore[union-attr]
    # At the end of the file: the last row is the one rejected.
    path.write_text('id,text\n1,fine\n2,"never closed\n')
    assert _outcomes(list(Source(path).documents())) == ["2:1", "3:reject"]


def test_csv_row_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_ROW_SIZE", 200)
    path = tmp_path / "long.csv"
    path.write_text("id,text\n" + '1,"runs on\n' + "".join(f"x{i},filler line {i}\n" for i in range(30))
                    + "2," + "y" * 300 + "\n3,after\n")
    items = list(Source(path).documents())
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [r.origin for r in rejects] == [f"{path}:2", f"{path}:33"]
    assert "over 200 characters" in rejects[0].reason and "over 200 characters" in rejects[1].reason
    assert len(_docs(items)) == 31  # the 30 filler rows and row 3
    jsonl = tmp_path / "long.jsonl"
    jsonl.write_text('{"id": "a", "text": "' + "z" * 300 + '"}\n{"id": "b", "text": "short"}\n')
    out = list(Source(jsonl).documents())
    assert isinstance(out[0], Reject) and "line is 324 bytes; the limit for one row is 200" in out[0].reason
    assert _outcomes(out) == ["1:reject", "2:b"]


def test_jsonl_rows_that_used_to_raise_are_rejects(tmp_path: Path) -> None:
    path = tmp_path / "hostile.jsonl"
    lines = [
        '{"id": "big", "text": "a", "n": ' + "9" * 5000 + "}",
        '{"id": "deep", "text": "a", "n": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"id": "nul", "text": "a\\u0000b"}',
        '{"id": "sur", "text": "a\\ud800b"}',
        '{"id": "meta", "text": "a", "m": ["ok", "\\udfff"]}',
        '{"id": "key", "text": "a", "k\\u0000": 1}',
        '{"id": "\\ud83d", "text": "a"}',
        '{"id": "obj", "text": {"nested": true}}',
        '{"id": ["x"], "text": "a"}',
        '{"id": "ok", "text": "a fine row", "big": 123456789012345678901234567890}',
    ]
    path.write_text("\n".join(lines) + "\n")
    items = list(Source(path).documents())
    assert _outcomes(items)[-1] == "10:ok" and all(isinstance(i, Reject) for i in items[:-1])
    reasons = [i.reason for i in items[:-1]]  # type: ignore[union-attr]
    for reason, expected in zip(reasons, [
        "more than 4300 digits", "nested too deeply", "text holds a NUL character at position 1",
        "text holds a lone surrogate '\\ud800' at position 1", "metadata field 'm' item 1 holds a lone surrogate",
        "metadata key 'k\\x00' holds a NUL", "id '\\ud83d' holds a lone surrogate", "holds a dict; expected a string",
        "id field 'id' holds a list",
    ], strict=True):
        assert expected in reason, (expected, reason)
    assert [i.doc_id for i in items[:-1]] == [None, None, "nul", "sur", "meta", "key", "\ud83d", "obj", None]  # type: ignore[union-attr]
    # A field name with a line break stays on its one line of the rejects file.
    # (The first row has the text field: a file whose first row lacks it is refused before any row is read.)
    path.write_text('{"id": "fine", "text": "a"}\n{"id": "nl", "a\\nb\\u2028c": 1}\n')
    _, reject = list(Source(path).documents())
    assert str(reject) == f"{path}:2: missing text field 'text' (fields: id, a\\nb\\u2028c)"


def test_text_templates_are_checked_before_the_first_row(tmp_path: Path) -> None:
    for template, message in [
        ("{}", "positional field {}"), ("Title {0}", "positional field {0}"), ("{text!z}", "unknown conversion !z"),
        ("{text:>200000000}", "width in '>200000000'"), ("{text:.99999999999999999999f}", "precision"),
        ("{text:{width}}", "inside its format spec"), ("{text:q}", "not a valid format spec"),
        ("{text", "expected '}'"), ("a } b", "Single '}'"), ("{text:>600000} {text:>600000}", "add up to 1200000"),
        ("x\x00{text}", "NUL"),
    ]:
        with pytest.raises(ValidationError, match="text template") as err:
            RowSpec(text_template=template)
        assert message in str(err.value), (template, str(err.value))
    # Valid specs that fail on one row's value reject that row only.
    path = tmp_path / "scores.csv"
    path.write_text("id,Summary,Score,a.b\n1,Great,5,x\n2,Odd,not a number,y\n3,Fine,3,z\n")
    items = list(Source(path, RowSpec(text_template="{Summary} ({Score:d}/5, {a.b!r:>5})")).documents())
    assert _outcomes(items) == ["2:1", "3:reject", "4:3"]
    assert _docs(items)["1"].text == "Great (5/5,   'x')"  # a dotted column name is a column, not an attribute
    assert "{Score:d} fails on this row's str value: Unknown format code 'd'" in items[1].reason  # type: ignore[union-attr]


def test_csv_integers_beyond_64_bits_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "ints.csv"
    path.write_text(f"id,text,small,large,huge\n1,t,{2**63 - 1},{2**63},{'7' * 5000}\n")
    (doc,) = list(Source(path).documents())
    assert isinstance(doc, Document)
    assert doc.metadata == {"small": 2**63 - 1, "large": str(2**63), "huge": "7" * 5000}


def test_directory_entries_that_cannot_be_read_are_rejects_naming_their_document(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "ok.txt").write_text("readable")
    (root / "dangling.md").symlink_to(root / "missing.md")
    (root / "loop.txt").symlink_to(root / "loop.txt")
    os.mkfifo(root / "pipe.txt")  # reading it would wait forever
    (root / "sub" / "deep.txt").write_text("also readable")
    (root / os.fsdecode(b"name-\xff.txt")).write_text("a file name that is not UTF-8")
    items = list(Source(root).documents())
    assert sorted(_docs(items)) == ["ok.txt", "sub/deep.txt"]
    rejects = {r.doc_id: r.reason for r in items if isinstance(r, Reject)}
    assert set(rejects) == {"dangling.md", "loop.txt", "pipe.txt", "name-\udcff.txt"}
    assert "holds a lone surrogate" in rejects["name-\udcff.txt"]
    assert all(str(r).encode("utf-8") for r in items if isinstance(r, Reject))  # every reject line can be printed
    assert "symbolic link whose target cannot be reached" in rejects["dangling.md"]
    assert "Too many levels of symbolic links" in rejects["loop.txt"]
    assert "it is a FIFO, not a regular file" in rejects["pipe.txt"]
