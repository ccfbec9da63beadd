"""Export and import: a collection (or a filtered part) out as NDJSON or Parquet and back into the same
store under another name, every record identical (ids, texts, metadata, float32 vectors bit for bit)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from vectorseam.errors import ValidationError
from vectorseam.filters import FilterLike, matches, parse_filter
from vectorseam.ingest.portable import (
    FORMATS,
    Format,
    ensure_spec,
    export_collection,
    import_stream,
    open_stream,
)
from vectorseam.store import VectorStore
from vectorseam.testing.conformance.base import ConformanceBase
from vectorseam.testing.reference import assert_same_record, catalog_records, unique_collection_name
from vectorseam.types import Record


def import_into(store: VectorStore, name: str, data: bytes, fmt: Format) -> int:
    opened = open_stream(fmt, io.BytesIO(data))

    def ensure(header: object) -> None:
        assert opened.header is not None
        ensure_spec(store, opened.header.spec(name))

    return import_stream(opened, ensure, lambda batch: store.upsert(name, batch))


class ExportImportTests(ConformanceBase):
    """``export`` and ``import`` (every store)."""

    def _copy(self, store: VectorStore, source: str, fmt: Format, spec: FilterLike = None) -> tuple[str, bytes]:
        data = b"".join(export_collection(store, source, fmt, parse_filter(spec)))
        target = unique_collection_name("copy")
        self._created.append(target)
        import_into(store, target, data, fmt)
        return target, data

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_round_trip(self, store: VectorStore, collection_name: str, fmt: Format) -> None:
        records = self.filled(store, collection_name, catalog_records(), metric="dot")
        target, _ = self._copy(store, collection_name, fmt)
        info = store.collection_info(target)
        assert (info.dimension, info.metric, info.count) == (self.dimension, "dot", len(records))
        got = {r.id: r for r in store.fetch(target, [r.id for r in records])}
        for want in records:
            assert_same_record(got[want.id], want)
            assert np.array_equal(np.asarray(got[want.id].vector), np.asarray(want.vector)), want.id

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_filtered_export(self, store: VectorStore, collection_name: str, fmt: Format) -> None:
        records = self.filled(store, collection_name, catalog_records())
        spec = {"$or": [{"color": "red"}, {"tags": "c"}]}
        target, _ = self._copy(store, collection_name, fmt, spec)
        tree = parse_filter(spec)
        want = sorted(r.id for r in records if matches(tree, r.metadata))
        assert sorted(r.id for page in store.scan(target, include_vectors=False) for r in page) == want

    def test_ndjson_header_and_lines(self, store: VectorStore, collection_name: str) -> None:
        records = self.filled(store, collection_name, catalog_records()[:5])
        lines = b"".join(export_collection(store, collection_name, "ndjson")).decode().splitlines()
        header = json.loads(lines[0])
        assert header["format"] == "vectorseam-export/1" and header["dimension"] == self.dimension
        assert sorted(json.loads(line)["id"] for line in lines[1:]) == sorted(r.id for r in records)

    def test_a_bad_line_is_named(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, catalog_records()[:3])
        data = b"".join(export_collection(store, collection_name, "ndjson")) + b'{"id": 5}\n'
        target = unique_collection_name("bad")
        self._created.append(target)
        with pytest.raises(ValidationError, match=r"line 5: 'id' must be a string.*3 records before it were written"):
            import_into(store, target, data, "ndjson")
        assert store.count(target) == 3

    def test_a_vector_of_another_length_is_refused(self, store: VectorStore, collection_name: str) -> None:
        self.filled(store, collection_name, [Record("a", np.ones(self.dimension, np.float32))])
        data = b"".join(export_collection(store, collection_name, "ndjson")) + b'{"id": "b", "vector": [1, 2]}\n'
        with pytest.raises(ValidationError, match="line 3"):
            import_into(store, unique_collection_name("short"), data, "ndjson")
