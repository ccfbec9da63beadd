"""Reading sources into documents, with every bad row reported by file:line and reason.

Sources: CSV/TSV, JSONL and Parquet files (one document per row), and a directory of text,
Markdown, HTML and PDF files (one document per file, id = its path relative to the directory).

A document is what gets embedded: an id, a text and flat metadata. Rows that cannot become one
(broken JSON or CSV, a missing or empty text field, undecodable bytes, a repeated id, a text over
``MAX_TEXT_CHARS``, a NUL character or a lone surrogate, a template that fails on the row) are
returned as :class:`Reject` values rather than raised, so a load job can continue, count them and
write them to a rejects file: every row read either becomes a document or a reject, never nothing.

CSV is read strictly, and a record whose quoted field runs over line breaks into a parse error, the
end of the file or a wrong number of fields (an unclosed quote) is rejected at its first line and
the lines after it are read again as rows of their own, so one stray quote costs one row, not the
rest of the file. Files and folders of a directory source that cannot be read come out as rejects
naming the document (or the id prefix) they hold, so ``--cleanup full`` keeps what it could not see.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import string
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vectorseam.errors import ValidationError
from vectorseam.extras import require
from vectorseam.types import Metadata, check_storable_text, validate_id, validate_metadata

MAX_TEXT_CHARS = 1_000_000
MAX_REJECT_CHARS = 1000  # one reject's line, in the rejects file, a report or a job; the rest is cut
# One row (the bytes of a JSONL line, the characters of a CSV record) is never held past this: a
# longer one is rejected unread. It also bounds how far an unclosed CSV quote is followed.
MAX_ROW_SIZE = 16 * MAX_TEXT_CHARS


@dataclass(slots=True)
class Document:
    id: str
    text: str
    metadata: Metadata = field(default_factory=dict)
    origin: str = ""  # file:line, for error messages


@dataclass(frozen=True, slots=True)
class Reject:
    """A row or file that did not become a document: where (file:line) and why.

    ``doc_id`` names the document it holds when that is known (a row with an empty text, a file that
    could not be read) and ``subtree`` the id prefix of a folder that could not be listed. The source
    of those still exists, so ``--cleanup full`` keeps their stored records. A reject with neither (a
    row too broken to find its id) makes the cleanup keep every record it would delete: it cannot
    tell a row that vanished from that one.
    """

    origin: str  # file:line
    reason: str
    doc_id: str | None = None
    subtree: str | None = None

    def __str__(self) -> str:
        """One line of the rejects file, whatever a file name or field name holds: line breaks are
        escaped, and so are surrogates (a path with undecodable bytes), so it can always be printed; and
        it is cut at MAX_REJECT_CHARS (a reason quoting a 500 KB field name was kept whole everywhere)."""
        line = f"{self.origin}: {self.reason}"
        cut = len(line) - MAX_REJECT_CHARS
        if cut > 0:
            line = f"{line[:MAX_REJECT_CHARS]}... (truncated: {cut} more characters)"
        line = line.translate(_LINE_BREAKS)
        return line if line.isascii() else line.encode("utf-8", "backslashreplace").decode("utf-8")


_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def _reason(exc: ValidationError, origin: str) -> str:
    return str(exc).removeprefix(f"{origin}: ")


# -- text templates -------------------------------------------------------------------------------

# The standard format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type].
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?"
                          r"[bcdeEfFgGnosxX%]?", re.DOTALL)
_CONVERSIONS: dict[str, Callable[[object], str]] = {"s": str, "r": repr, "a": ascii}


@dataclass(frozen=True, slots=True)
class TextTemplate:
    """A ``--text-template`` checked before the first row: literal text and ``{Column}`` fields.

    Checked up front because ``str.format`` only refuses ``{}`` or ``{text!z}`` when it meets them,
    and would build a ``{text:>200000000}`` string before any length check. A field names a column
    as a whole (``{review.title}`` is the column ``review.title``: no attribute or index access), and
    a format spec that fails on one row's value (``{Score:d}`` on a text) rejects that row.
    """

    source: str
    parts: tuple[tuple[str, str | None, str, str | None], ...]  # literal, field, format spec, conversion

    @property
    def fields(self) -> list[str]:
        return [name for _, name, _, _ in self.parts if name is not None]

    @classmethod
    def parse(cls, template: str) -> TextTemplate:
        def bad(why: str) -> ValidationError:
            return ValidationError(f"text template {template!r}: {why}")

        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise bad(f"{exc}; write a column as {{Name}} and a literal brace as {{{{ or }}}}") from None
        try:
            check_storable_text(template, "it")
        except ValidationError as exc:
            raise bad(str(exc)) from None
        parts: list[tuple[str, str | None, str, str | None]] = []
        widths = 0
        for literal, name, spec, conversion in parsed:
            if name is None:
                parts.append((literal, None, "", None))
                continue
            if not name or name.isdigit():
                raise bad(f"the positional field {{{name}}} names no column; name one, as in {{Title}}")
            if conversion is not None and conversion not in _CONVERSIONS:
                raise bad(f"unknown conversion !{conversion} in field {name!r}; use !s, !r or !a")
            spec = spec or ""
            if "{" in spec or "}" in spec:
                raise bad(f"field {name!r} has a field inside its format spec {spec!r}; that is not supported")
            match = _FORMAT_SPEC.fullmatch(spec)
            if match is None:
                raise bad(f"format spec {spec!r} of field {name!r} is not a valid format spec")
            for part in ("width", "precision"):
                digits = (match.group(part) or "").lstrip("0")
                if len(digits) > len(str(MAX_TEXT_CHARS)) or (digits and int(digits) > MAX_TEXT_CHARS):
                    raise bad(f"the {part} in {spec!r} of field {name!r} is over the text limit of "
                              f"{MAX_TEXT_CHARS} characters")
            widths += int(match.group("width") or 0)
            problems = []
            for sample in ("", 0, 0.5):
                try:
                    format(sample, spec)
                except ValueError as exc:
                    problems.append(str(exc))
            if len(problems) == 3:
                raise bad(f"format spec {spec!r} of field {name!r} fits no value ({problems[0]})")
            parts.append((literal, name, spec, conversion))
        if widths > MAX_TEXT_CHARS:
            raise bad(f"its field widths add up to {widths}, over the text limit of {MAX_TEXT_CHARS} characters")
        return cls(template, tuple(parts))

    def render(self, row: Mapping[str, Any]) -> str:
        """The text for one row; a value its format spec cannot take raises ValidationError."""
        out: list[str] = []
        for literal, name, spec, conversion in self.parts:
            out.append(literal)
            if name is None:
                continue
            value = row[name]
            try:
                if conversion is not None:
                    value = _CONVERSIONS[conversion](value)
                out.append(format(value, spec))
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                what = type(value).__name__
                raise ValidationError(f"text template field {{{name}{'!' + conversion if conversion else ''}"
                                      f"{':' + spec if spec else ''}}} fails on this row's {what} value: "
                                      f"{exc or type(exc).__name__}") from None
        return "".join(out)


@dataclass(frozen=True, slots=True)
class RowSpec:
    """How rows become documents: the id field, the text field or a template, the metadata fields.

    A text template is checked when the spec is made, so a job never starts with one that fails.
    """

    id_field: str | None = None
    text_field: str = "text"
    text_template: str | None = None
    metadata_fields: Sequence[str] | None = None  # None: every other field

    def __post_init__(self) -> None:
        self.template()

    def template(self) -> TextTemplate | None:
        return None if self.text_template is None else TextTemplate.parse(self.text_template)


# -- row files ------------------------------------------------------------------------------------

ROW_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    """Yield (line, fields) per record of a CSV, JSONL or Parquet file, or (line, Reject) for a broken one.

    For Parquet the "line" is the 1-based row number. A file that cannot be opened or read on raises
    ValidationError (the job stops; nothing it did not read is deleted).
    """
    suffix = path.suffix.lower()
    try:
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
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read the file: {exc.strerror or exc}") from None


def _read_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    require("parquet", f"{path}: reading Parquet files")
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        total = parquet.metadata.num_rows
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise ValidationError(f"{path}: not a readable Parquet file ({exc})") from None
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=4096):
            for fields in batch.to_pylist():
                row += 1
                yield row, {k: _from_arrow(v) for k, v in fields.items()}
    except Exception as exc:  # a damaged page: the rows from here on are accounted for, one by one
        reason = f"unreadable: the file is damaged from row {row + 1} on ({type(exc).__name__}: {exc})"
        for lost in range(row + 1, total + 1):
            yield lost, Reject(f"{path}:{lost}", reason)


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


def _skip_line(fh: IO[bytes], line: bytes) -> int:
    """Read past the rest of an over-long JSONL line; its length in bytes."""
    size = len(line)
    while line and not line.endswith(b"\n"):
        line = fh.readline(1 << 20)
        size += len(line)
    return size


class _DuplicateKey(ValueError):
    """A JSON object names one key twice; ``json`` would keep the last value without a word."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    limit = MAX_ROW_SIZE
    with open(path, "rb") as fh:
        line_no = 0
        while raw := fh.readline(limit + 1):
            line_no += 1
            origin = f"{path}:{line_no}"
            if len(raw) > limit:
                size = _skip_line(fh, raw)
                yield line_no, Reject(origin, f"line is {size} bytes; the limit for one row is {limit} (a text "
                                              f"may have {MAX_TEXT_CHARS} characters: split it)")
                continue
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield line_no, Reject(origin, f"undecodable bytes (not UTF-8) at byte {exc.start}")
                continue
            try:
                obj = json.loads(line, object_pairs_hook=_unique_keys)
            except _DuplicateKey as exc:
                key = str(exc.args[0])
                shown = key if len(key) <= 100 else key[:100] + "..."
                yield line_no, Reject(origin, f"the key {shown!r} appears more than once in this JSON object, so "
                                              "which value is meant is unclear; keep one")
                continue
            except json.JSONDecodeError as exc:
                yield line_no, Reject(origin, f"broken JSON: {exc.msg} at column {exc.colno}")
                continue
            except ValueError:  # json's only other ValueError: Python's limit on integer digits
                yield line_no, Reject(origin, f"a number has more than {sys.get_int_max_str_digits()} digits, "
                                              "more than Python reads as an integer (quote it as a string)")
                continue
            except RecursionError:
                yield line_no, Reject(origin, "JSON nested too deeply to read")
                continue
            if not isinstance(obj, dict):
                yield line_no, Reject(origin, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield line_no, obj


class _RowTooLong(Exception):
    """A CSV record (or one line of it) is over MAX_ROW_SIZE characters."""


class _Lines:
    """A text file's physical lines, numbered, as the csv module pulls them, with re-reading.

    The csv reader pulls one line at a time until a record ends, so the lines taken since
    :meth:`start` are exactly the current record's. When that record is broken, :meth:`reread_after_first`
    hands all lines but its first back, to be read again as rows of their own.
    """

    def __init__(self, fh: IO[str], limit: int) -> None:
        self._fh = fh
        self._limit = limit
        self._count = 0
        self._back: deque[tuple[int, str | None]] = deque()  # None: a line that was over the limit
        self._size = 0
        self.taken: list[tuple[int, str | None]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back:
            number, text = self._back.popleft()
        else:
            text = self._fh.readline(self._limit + 1)
            if not text:
                raise StopIteration
            self._count += 1
            number = self._count
            if len(text) > self._limit:
                while text and not text.endswith(("\n", "\r")):  # read past the rest of it
                    text = self._fh.readline(1 << 20)
                text = None
        self.taken.append((number, text))
        if text is None:
            raise _RowTooLong
        self._size += len(text)
        if self._size > self._limit:
            raise _RowTooLong
        return text

    def start(self) -> None:
        self.taken = []
        self._size = 0

    def reread_after_first(self) -> None:
        self._back.extendleft(reversed(self.taken[1:]))


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of a byte that is not UTF-8


def _csv_problem(message: str, lines: tuple[int, int]) -> str:
    """Why a CSV record is broken; for one that spans lines, most likely an unclosed quote."""
    first, last = lines
    if last > first:
        where = ("the file ends" if message == "unexpected end of data"
                 else f"the row breaks: {message}")
        return (f"unclosed quote? A quoted field opened on this line runs on to line {last}, where {where}; "
                "the lines after this one were read again as rows")
    if message == "unexpected end of data":
        return "unclosed quote: the file ends inside a quoted field"
    if "expected after" in message:
        return f"broken CSV: {message} (a quote inside a quoted field must be doubled: \"\")"
    return f"broken CSV: {message}"


def _read_csv(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | Reject]]:
    csv.field_size_limit(sys.maxsize)  # records are bounded by MAX_ROW_SIZE instead
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        lines = _Lines(fh, MAX_ROW_SIZE)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header: list[str] | None = None
        while True:
            lines.start()
            message: str | None = None
            row: list[str] = []
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                message = str(exc)
            except _RowTooLong:
                message = f"the row is over {MAX_ROW_SIZE} characters"
            if not lines.taken:
                return
            span = (lines.taken[0][0], lines.taken[-1][0])
            origin = f"{path}:{span[0]}"
            if header is None:
                if message is not None:
                    raise ValidationError(f"{origin}: the header row cannot be read: {_csv_problem(message, span)}")
                header = row or None  # blank lines before the header are skipped
                continue
            if message is None and not row:
                continue  # a blank line
            if message is None and len(row) != len(header):
                message = f"it has {len(row)} fields, the header has {len(header)}"
                if span[0] == span[1]:
                    yield span[0], Reject(origin, f"has {len(row)} fields, the header has {len(header)}")
                    continue
            if message is not None:
                if span[1] > span[0]:
                    lines.reread_after_first()  # the rows an unclosed quote swallowed get their turn
                yield span[0], Reject(origin, _csv_problem(message, span))
                continue
            fields: dict[str, Any] = {}
            bad = None
            for name, value in zip(header, row, strict=True):
                if not value.isascii() and _ESCAPED_BYTE.search(value):
                    bad = name
                    break
                fields[name] = _infer(value)
            if bad is not None:
                yield span[0], Reject(origin, f"field {bad!r}: undecodable bytes (not UTF-8)")
                continue
            yield span[0], fields


_INT64 = 2**63


def _infer(value: str) -> Any:
    """CSV cells are strings; canonical integers and decimals become numbers so range filters work.

    Only canonical forms convert ("42", "-3.5"), so identifiers such as "007" stay strings, and so
    do integers outside 64 bits (an account number, a hash), which most backends cannot hold as
    numbers.
    """
    try:
        as_int = int(value)
        if str(as_int) == value and -_INT64 <= as_int < _INT64:
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


def make_document(doc_id: str, text: str, metadata: Mapping[str, Any], origin: str) -> Document | Reject:
    """A document, or the reason it cannot be one: the checks every row and file passes (a valid id,
    a text that is not empty, within the limit and storable, flat storable metadata)."""
    try:
        validate_id(doc_id, origin)
    except ValidationError as exc:
        return Reject(origin, _reason(exc, origin), doc_id)
    if not text.strip():
        return Reject(origin, "text is empty or whitespace only", doc_id)
    if len(text) > MAX_TEXT_CHARS:
        return Reject(origin, f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS} (split it)", doc_id)
    try:
        check_storable_text(text, "text")
        checked = validate_metadata(metadata, origin)
    except ValidationError as exc:
        return Reject(origin, _reason(exc, origin), doc_id)
    return Document(doc_id, text, checked, origin)


def _names(row: Mapping[str, Any]) -> str:
    return ", ".join(map(str, list(row)[:20])) + (", ..." if len(row) > 20 else "")


def _first_fields(path: Path) -> tuple[list[str], str] | None:
    """The field names of a row file (the CSV header, the Parquet schema, the first JSON object) and
    where they were found; None when there is none to read (the rows' own rejects say why)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            reader = csv.reader(_Lines(fh, MAX_ROW_SIZE), delimiter="\t" if suffix == ".tsv" else ",", strict=True)
            try:
                header = next((row for row in reader if row), None)
            except (csv.Error, _RowTooLong):
                return None
        return (header, "header") if header else None
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names), "schema"
        except Exception:  # a damaged file: reading it reports that
            return None
    rows = read_rows(path)
    try:
        for n, (_, row) in enumerate(rows):
            if isinstance(row, dict):
                return list(row), "first row"
            if n >= 100:
                break
    finally:
        rows.close()  # type: ignore[attr-defined]
    return None


def check_fields(path: Path, spec: RowSpec) -> None:
    """The fields ``spec`` names (text field or template fields, id field, metadata fields) against
    the file's header, schema or first JSON row, before any row is read: a misspelt --text-field once
    rejected every row, one by one, and the job ended "successfully" with nothing written."""
    found = _first_fields(path)
    if found is None:
        return
    names, where = found
    template = spec.template()
    wanted = ([(f, "text template field") for f in template.fields] if template is not None
              else [(spec.text_field, "text field")])
    wanted += [(spec.id_field, "id field")] if spec.id_field else []
    wanted += [(f, "metadata field") for f in spec.metadata_fields or ()]
    have = set(names)
    missing = [f"{what} {name[:100]!r}" for name, what in dict.fromkeys(wanted) if name not in have]
    if missing:
        shown = ", ".join(repr(n[:100]) for n in names[:50]) + (", ..." if len(names) > 50 else "")
        raise ValidationError(
            f"{path}: the {where} has no {' and no '.join(missing)}; its fields are {shown or 'none'}. Name one of "
            "them (--text-field, --id-field, --metadata-fields, or {Field} in --text-template); nothing was read")


def to_documents(path: Path, spec: RowSpec) -> Iterator[Document | Reject]:
    """Rows of ``path`` as documents; rows that can't be one come out as Rejects, in file order."""
    template = spec.template()
    used = {spec.id_field or "id", spec.text_field, *(template.fields if template is not None else [])}
    seen: dict[str, int] = {}
    for ordinal, (line_no, row) in enumerate(read_rows(path)):
        origin = f"{path}:{line_no}"
        if isinstance(row, Reject):
            yield row
            continue
        doc_id = _row_id(row, spec, ordinal, origin)
        if isinstance(doc_id, Reject):
            yield doc_id
            continue
        if doc_id in seen:
            yield Reject(origin, f"duplicate id {doc_id!r} (first seen at line {seen[doc_id]}); kept the first",
                         doc_id)
            continue
        text = _row_text(row, spec, template, origin, doc_id)
        if isinstance(text, Reject):
            yield text
            continue
        names = (spec.metadata_fields if spec.metadata_fields is not None
                 else [k for k in row if k not in used])
        absent = [n for n in names if n not in row]
        if spec.metadata_fields is not None and absent:
            yield Reject(origin, f"missing metadata field(s) {', '.join(map(repr, absent))}", doc_id)
            continue
        doc = make_document(doc_id, text, {n: row[n] for n in names if n and n in row}, origin)
        if isinstance(doc, Document):
            seen[doc_id] = line_no
        yield doc


def _row_id(row: dict[str, Any], spec: RowSpec, ordinal: int, origin: str) -> str | Reject:
    """The row's id: its id field, else (no id field named, none in the row) its position, which is stable
    for an append-only file."""
    raw_id = row.get(spec.id_field or "id")
    if raw_id is None or raw_id == "":
        if spec.id_field:
            return Reject(origin, f"missing id field {spec.id_field!r}")
        return str(ordinal)
    if isinstance(raw_id, str | int | float):
        return str(raw_id)
    return Reject(origin, f"id field {spec.id_field or 'id'!r} holds a {type(raw_id).__name__}; expected a "
                          "string or a number")


def _row_text(row: dict[str, Any], spec: RowSpec, template: TextTemplate | None, origin: str,
              doc_id: str) -> str | Reject:
    """The row's text: the template rendered over its fields, or its text field."""
    if template is not None:
        missing = [f for f in template.fields if row.get(f) is None]
        if missing:
            return Reject(origin, f"missing field(s) {', '.join(map(repr, missing))} used by the text template",
                          doc_id)
        try:
            return template.render(row)
        except ValidationError as exc:
            return Reject(origin, str(exc), doc_id)
    value = row.get(spec.text_field)
    if value is None:
        return Reject(origin, f"missing text field {spec.text_field!r} (fields: {_names(row)})", doc_id)
    if not isinstance(value, str | int | float):
        return Reject(origin, f"text field {spec.text_field!r} holds a {type(value).__name__}; expected a "
                              "string (or use --text-template)", doc_id)
    return value if isinstance(value, str) else str(value)


# -- directories of documents ---------------------------------------------------------------------

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
                 ".html": "html", ".htm": "html", ".pdf": "pdf"}
MAX_FILE_BYTES = 50_000_000  # a PDF of this size is unusual; a text file this big is a dump, not a document


def _decode(data: bytes, origin: str, doc_id: str) -> str | Reject:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return Reject(f"{origin}:{line}", f"undecodable bytes (not UTF-8) at byte {exc.start}", doc_id)


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


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def read_file_document(path: Path, root: Path) -> Document | Reject:
    """One file of a directory source as a document whose id is its path relative to ``root``.

    A file that cannot be read (a dangling symbolic link, a FIFO, permission denied, a damaged PDF)
    is a reject that names its document, so a cleanup keeps what is stored for it.
    """
    rel = path.relative_to(root).as_posix()
    origin = str(path)
    kind = TEXT_SUFFIXES[path.suffix.lower()]

    def reject(reason: str, line: int = 1) -> Reject:
        return Reject(f"{origin}:{line}", reason, rel)

    try:
        info = path.stat()
    except OSError as exc:
        link = " (a symbolic link whose target cannot be reached)" if path.is_symlink() else ""
        return reject(f"cannot read the file: {exc.strerror or exc}{link}")
    if not stat.S_ISREG(info.st_mode):  # never opened: reading a FIFO would wait forever
        what = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "not a regular file")
        return reject(f"cannot read the file: it is {what}, not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        return reject(f"file is {info.st_size} bytes; the limit is {MAX_FILE_BYTES} (split it)")
    metadata: dict[str, Any] = {"path": rel, "format": kind}
    try:
        if kind == "pdf":
            try:
                text, pages = _pdf_text(path)
            except OSError:
                raise
            except Exception as exc:  # pypdf raises many types for damaged files
                return reject(f"unreadable PDF ({type(exc).__name__}: {exc})")
            metadata["pages"] = pages
        else:
            decoded = _decode(path.read_bytes(), origin, rel)
            if isinstance(decoded, Reject):
                return decoded
            text = decoded
            title = _markdown_title(text) if kind == "markdown" else None
            if kind == "html":
                text, title = _html_text(text)
            if title:
                metadata["title"] = title
    except OSError as exc:
        return reject(f"cannot read the file: {exc.strerror or exc}")
    if "\x00" in text:
        return reject("text holds NUL characters (a binary file?)")
    if not text.strip() and kind == "pdf":
        return reject("text is empty or whitespace only (a scanned PDF without a text layer?)")
    return make_document(rel, text, metadata, f"{origin}:1")


def _walk(root: Path) -> tuple[list[Path], list[Reject]]:
    """Files a directory source reads, in a stable (sorted) order, hidden files and folders skipped;
    and a reject per folder that could not be listed (``rglob`` skipped those without a word)."""
    errors: list[OSError] = []
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        files.extend(Path(dirpath, name) for name in filenames
                     if not name.startswith(".") and Path(name).suffix.lower() in TEXT_SUFFIXES)
    files.sort(key=lambda p: p.relative_to(root).as_posix())
    rejects = []
    for exc in errors:
        folder = Path(exc.filename) if exc.filename else root
        rel = folder.relative_to(root).as_posix()
        rejects.append(Reject(str(folder), f"cannot list the folder: {exc.strerror or exc}; the stored records "
                                           "of files under it are kept",
                              subtree="" if rel == "." else f"{rel}/"))
    return files, rejects


def directory_files(root: Path) -> list[Path]:
    """Files a directory source reads, in a stable (sorted) order; hidden files and folders skipped."""
    return _walk(root)[0]


def directory_documents(root: Path) -> Iterator[Document | Reject]:
    files, rejects = _walk(root)
    yield from rejects
    for path in files:
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
            if self.path.is_symlink():
                raise ValidationError(f"{self.path}: a symbolic link whose target cannot be reached")
            if self.path.exists():
                raise ValidationError(f"{self.path}: not a regular file")
            raise ValidationError(f"{self.path}: no such file or directory")
        if self.path.suffix.lower() not in ROW_SUFFIXES:
            raise ValidationError(
                f"{self.path}: unsupported file type {self.path.suffix!r}; use .csv, .tsv, .jsonl, .parquet "
                "or a directory of .txt/.md/.html/.pdf files"
            )
        if self.path.suffix.lower() == ".parquet":
            require("parquet", f"{self.path}: reading Parquet files")
        check_fields(self.path, self.spec)

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


@dataclass(frozen=True, slots=True)
class DocumentsSource(Source):
    """Documents already in memory (an HTTP request's body), fed to the same ingest job as files are.

    ``path`` only names the source (``request:<collection>``) for the record manager."""

    items: tuple[Document, ...] = ()

    @property
    def is_directory(self) -> bool:
        return False

    @property
    def key(self) -> str:
        return str(self.path)

    def check(self) -> None:
        return None

    def documents(self) -> Iterator[Document | Reject]:
        """The items in order, each through the checks a file's rows pass (:func:`make_document`), so
        one unstorable document is a reject instead of failing its whole batch; a repeated id is
        rejected and the first kept, as a file source does."""
        seen: dict[str, str] = {}
        for item in self.items:
            if item.id in seen:
                yield Reject(item.origin, f"duplicate id {item.id!r} (first seen at {seen[item.id]}); kept the first",
                             item.id)
                continue
            doc = make_document(item.id, item.text, item.metadata, item.origin)
            if isinstance(doc, Document):
                seen[doc.id] = doc.origin
            yield doc

    def estimate(self) -> int | None:
        return len(self.items)
