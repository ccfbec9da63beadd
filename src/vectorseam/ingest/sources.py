"""Reading sources into documents, with every bad row reported by file:line and reason.

Sources: CSV/TSV, JSONL and Parquet files (one document per row), and a directory of text,
Markdown, HTML and PDF files (one document per file, id = its path relative to the directory).

A document is what gets embedded: an id, a text and flat metadata. Rows that cannot become one
(broken JSON, a missing or empty text field, undecodable bytes, a repeated id, a text over
``MAX_TEXT_CHARS``) are returned as :class:`Reject` values rather than raised, so a load job can
continue, count them and write them to a rejects file; nothing is dropped without a trace.
"""

from __future__ import annotations

import csv
import json
import string
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vectorseam.errors import ValidationError
from vectorseam.types import MAX_ID_LENGTH, Metadata, validate_metadata

MAX_TEXT_CHARS = 1_000_000


@dataclass(slots=True)
class Document:
    id: str
    text: str
    metadata: Metadata = field(default_factory=dict)
    origin: str = ""  # file:line, for error messages


@dataclass(frozen=True, slots=True)
class Reject:
    origin: str  # file:line
    reason: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}"


@dataclass(frozen=True, slots=True)
class RowSpec:
    """How rows become documents: the id field, the text field or a template, the metadata fields."""

    id_field: str | None = None
    text_field: str = "text"
    text_template: str | None = None
    metadata_fields: Sequence[str] | None = None  # None: every other field

    def template_fields(self) -> list[str]:
        if self.text_template is None:
            return []
        try:
            return [f for _, f, _, _ in string.Formatter().parse(self.text_template) if f]
        except ValueError as exc:
            raise ValidationError(f"text template {self.text_template!r} is malformed: {exc}") from None


ROW_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Yield (line, fields) per record of a CSV, JSONL or Parquet file, or (line, Reject) for a broken one.

    For Parquet the "line" is the 1-based row number.
    """
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path)
    elif suffix in (".csv", ".tsv"):
        yield from _read_csv(path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        yield from _read_parquet(path)
    else:
        raise ValidationError(
            f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .jsonl, .parquet or a directory "
            "of .txt/.md/.html/.pdf files"
        )


def _read_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise ValidationError(f"{path}: not a readable Parquet file ({exc})") from None
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for fields in batch.to_pylist():
            row += 1
            yield row, {k: _from_arrow(v) for k, v in fields.items()}


def _from_arrow(value: Any) -> Any:
    """Arrow scalars as metadata can hold them: dates and times become ISO strings, decimals strings
    (exact), so a range filter on an ISO date still sorts correctly; lists and structs stay as they
    are and are judged by the metadata validator."""
    import datetime
    import decimal

    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            origin = f"{path}:{line_no}"
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield line_no, Reject(origin, f"undecodable bytes (not UTF-8) at byte {exc.start}")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, Reject(origin, f"broken JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(obj, dict):
                yield line_no, Reject(origin, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield line_no, obj


def _read_csv(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        start = reader.line_num + 1
        for row in reader:
            origin = f"{path}:{start}"
            line_no, start = start, reader.line_num + 1
            if not row:
                continue
            if len(row) != len(header):
                yield line_no, Reject(origin, f"has {len(row)} fields, the header has {len(header)}")
                continue
            fields: dict[str, Any] = {}
            bad = None
            for name, value in zip(header, row, strict=True):
                if any("\udc80" <= ch <= "\udcff" for ch in value):
                    bad = name
                    break
                fields[name] = _infer(value)
            if bad is not None:
                yield line_no, Reject(origin, f"field {bad!r}: undecodable bytes (not UTF-8)")
                continue
            yield line_no, fields


def _infer(value: str) -> Any:
    """CSV cells are strings; canonical integers and decimals become numbers so range filters work.

    Only canonical forms convert ("42", "-3.5"), so identifiers such as "007" stay strings.
    """
    try:
        as_int = int(value)
        if str(as_int) == value:
            return as_int
    except ValueError:
        pass
    try:
        as_float = float(value)
        if value.strip() == value and any(c.isdigit() for c in value) and repr(as_float) == value:
            return as_float
    except ValueError:
        pass
    return value


def to_documents(path: Path, spec: RowSpec) -> Iterator[Document | Reject]:
    """Rows of ``path`` as documents; rows that can't be one come out as Rejects, in file order."""
    template_fields = spec.template_fields()
    seen: dict[str, int] = {}
    ordinal = -1
    for line_no, row in read_rows(path):
        ordinal += 1
        origin = f"{path}:{line_no}"
        if isinstance(row, Reject):
            yield row
            continue
        # id
        if spec.id_field:
            if spec.id_field not in row or row[spec.id_field] in (None, ""):
                yield Reject(origin, f"missing id field {spec.id_field!r}")
                continue
            doc_id = str(row[spec.id_field])
        elif "id" in row and row["id"] not in (None, ""):
            doc_id = str(row["id"])
        else:
            doc_id = str(ordinal)  # the row's position: stable for an append-only file
        if len(doc_id) > MAX_ID_LENGTH:
            yield Reject(origin, f"id is {len(doc_id)} characters; the limit is {MAX_ID_LENGTH}")
            continue
        if doc_id in seen:
            yield Reject(origin,
                         f"duplicate id {doc_id!r} (first seen at line {seen[doc_id]}); kept the first")
            continue
        # text
        if spec.text_template is not None:
            missing = [f for f in template_fields if f not in row or row[f] is None]
            if missing:
                names_ = ", ".join(map(repr, missing))
                yield Reject(origin, f"missing field(s) {names_} used by the text template")
                continue
            text = spec.text_template.format_map({k: "" if v is None else v for k, v in row.items()})
        else:
            if spec.text_field not in row or row[spec.text_field] is None:
                yield Reject(origin, f"missing text field {spec.text_field!r} (fields: {', '.join(row)})")
                continue
            text = row[spec.text_field]
            if not isinstance(text, str):
                text = str(text)
        if not text.strip():
            yield Reject(origin, "text is empty or whitespace only")
            continue
        if len(text) > MAX_TEXT_CHARS:
            yield Reject(origin, f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS} (split it)")
            continue
        # metadata
        used = {spec.id_field or "id", spec.text_field, *template_fields}
        names = (spec.metadata_fields if spec.metadata_fields is not None
                 else [k for k in row if k not in used])
        absent = [n for n in names if n not in row]
        if spec.metadata_fields is not None and absent:
            yield Reject(origin, f"missing metadata field(s) {', '.join(map(repr, absent))}")
            continue
        try:
            metadata = validate_metadata({n: row[n] for n in names if n and n in row}, origin)
        except ValidationError as exc:
            yield Reject(origin, str(exc).removeprefix(f"{origin}: "))
            continue
        seen[doc_id] = line_no
        yield Document(doc_id, text, metadata, origin)


# -- directories of documents ---------------------------------------------------------------------

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
                 ".html": "html", ".htm": "html", ".pdf": "pdf"}
MAX_FILE_BYTES = 50_000_000  # a PDF of this size is unusual; a text file this big is a dump, not a document


def _decode(data: bytes, origin: str) -> str | Reject:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return Reject(f"{origin}:{line}", f"undecodable bytes (not UTF-8) at byte {exc.start}")


def _html_text(html: str) -> tuple[str, str | None]:
    """Visible text of an HTML page (scripts, styles and markup dropped) and its <title>."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line), title or None


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip() or None
    return None


def _pdf_text(path: Path) -> tuple[str, int]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    pages = [page.extract_text() or "" for page in reader.pages]
    return "\n\n".join(p.strip() for p in pages if p.strip()), len(pages)


def read_file_document(path: Path, root: Path) -> Document | Reject:
    """One file of a directory source as a document whose id is its path relative to ``root``."""
    rel = path.relative_to(root).as_posix()
    origin = str(path)
    kind = TEXT_SUFFIXES[path.suffix.lower()]
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Reject(f"{origin}:1", f"file is {size} bytes; the limit is {MAX_FILE_BYTES} (split it)")
        metadata: dict[str, Any] = {"path": rel, "format": kind}
        if kind == "pdf":
            try:
                text, pages = _pdf_text(path)
            except Exception as exc:  # pypdf raises many types for damaged files
                return Reject(f"{origin}:1", f"unreadable PDF ({type(exc).__name__}: {exc})")
            metadata["pages"] = pages
        else:
            decoded = _decode(path.read_bytes(), origin)
            if isinstance(decoded, Reject):
                return decoded
            text = decoded
            title = _markdown_title(text) if kind == "markdown" else None
            if kind == "html":
                text, title = _html_text(text)
            if title:
                metadata["title"] = title
    except OSError as exc:
        return Reject(f"{origin}:1", f"cannot read the file: {exc.strerror or exc}")
    if "\x00" in text:
        return Reject(f"{origin}:1", "text holds NUL characters (a binary file?)")
    if not text.strip():
        hint = " (a scanned PDF without a text layer?)" if kind == "pdf" else ""
        return Reject(f"{origin}:1", f"text is empty or whitespace only{hint}")
    if len(text) > MAX_TEXT_CHARS:
        return Reject(f"{origin}:1",
                      f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS} (split it)")
    return Document(rel, text, validate_metadata(metadata, origin), f"{origin}:1")


def directory_files(root: Path) -> list[Path]:
    """Files a directory source reads, in a stable (sorted) order; hidden files and folders skipped."""
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def directory_documents(root: Path) -> Iterator[Document | Reject]:
    for path in directory_files(root):
        yield read_file_document(path, root)


# -- any source -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Source:
    """A path the ingest job reads: a row file or a directory of documents."""

    path: Path
    spec: RowSpec = field(default_factory=RowSpec)

    @property
    def is_directory(self) -> bool:
        return self.path.is_dir()

    @property
    def key(self) -> str:
        """Names the source in the record manager, so ``--cleanup full`` only touches its records."""
        return str(self.path.resolve())

    def check(self) -> None:
        if self.path.is_dir():
            return
        if not self.path.is_file():
            raise ValidationError(f"{self.path}: no such file or directory")
        if self.path.suffix.lower() not in ROW_SUFFIXES:
            raise ValidationError(
                f"{self.path}: unsupported file type {self.path.suffix!r}; use .csv, .tsv, .jsonl, .parquet "
                "or a directory of .txt/.md/.html/.pdf files"
            )

    def documents(self) -> Iterator[Document | Reject]:
        self.check()
        if self.path.is_dir():
            return directory_documents(self.path)
        return to_documents(self.path, self.spec)

    def estimate(self) -> int | None:
        """How many documents to expect (for the progress bar); None when unknown."""
        try:
            if self.path.is_dir():
                return len(directory_files(self.path))
            suffix = self.path.suffix.lower()
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                return int(pq.ParquetFile(self.path).metadata.num_rows)
            with open(self.path, "rb") as fh:
                lines = sum(1 for _ in fh)
            return max(lines - (1 if suffix in (".csv", ".tsv") else 0), 0)
        except Exception:  # only a progress estimate; reading errors surface as rejects later
            return None
