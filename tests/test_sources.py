"""Sources (CSV, JSONL, Parquet, a directory of text/Markdown/HTML/PDF files) and token chunking."""

from __future__ import annotations

import datetime
import decimal
import itertools
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vectorseam.embedders.local import LocalEmbedder
from vectorseam.ingest.chunking import ChunkSpec, HFTokenizer, RegexTokenizer, chunk_text, tokenizer_for
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
    limit, factory = tokenizer_for(local_embedder)
    assert limit == 254  # the model's 256 word pieces less [CLS] and [SEP]
    tok = factory()
    assert isinstance(tok, HFTokenizer)
    text = " ".join(f"Sentence {i} mentions unbelievable tokenization of compound words." for i in range(120))
    chunks = chunk_text(text, ChunkSpec(limit, 32), factory)
    model_tok = local_embedder._load().tokenizer
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(model_tok(chunk, add_special_tokens=False)["input_ids"]) <= limit
        assert chunk.split()[0][0].isalnum() and text.count(chunk) == 1  # sliced from the source text
    for left, right in itertools.pairwise(chunks):
        tail = left.split()[-5:]
        assert " ".join(tail) in right  # about 32 shared tokens: the last words reappear
    assert chunk_text("short text", ChunkSpec(limit, 32), factory) == ["short text"]


def test_regex_tokenizer_fallback_for_remote_embedders() -> None:
    spans = RegexTokenizer().spans("Hello, world!")
    assert spans == [(0, 5), (5, 6), (7, 12), (12, 13)]
    chunks = chunk_text(" ".join(["alpha"] * 50), ChunkSpec(20, 4), RegexTokenizer)
    assert all(len(c.split()) <= 20 for c in chunks) and len(chunks) == 3
