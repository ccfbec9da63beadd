"""A list whose items start out packed in one byte buffer (a memory-mapped snapshot) and are decoded
only when read.

Why: reopening a persisted collection of a million records spent most of its time building a
million Python strings and dicts (ids, texts, metadata) that a query then touches ten of. Packed
into one UTF-8 buffer with an offsets array, the snapshot's items cost nothing to open, take a
fraction of the memory, and, memory-mapped read-only, are shared in the page cache by every worker
of ``serve --workers N``. Writes change the list like any list: a written position goes to a small
overlay, appended items to a tail, so the buffer itself is never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import SupportsIndex, TypeVar, overload

import numpy as np
import numpy.typing as npt

T = TypeVar("T")
Bytes = npt.NDArray[np.uint8]
Offsets = npt.NDArray[np.int64]


class PackedList(Sequence[T]):
    """A mutable sequence over ``blob[offsets[i]:offsets[i+1]]`` decoded by ``decode``, plus changes.

    Supports what the memory store does to its columns of ids, texts and metadata: read by position,
    assign, append, pop from the end, iterate, ``len``.
    """

    __slots__ = ("_base_n", "_blob", "_decode", "_n", "_offsets", "_over", "_tail")

    def __init__(self, blob: Bytes, offsets: Offsets, decode: Callable[[bytes], T]) -> None:
        # Read through memoryviews: slicing a memory-mapped array runs numpy.memmap's Python-level
        # __getitem__ and __array_finalize__ (1.1 us an item; a memoryview slice 0.12 us), and a search
        # reads two or three items of each of its hits. The views keep the arrays (and the map) alive.
        self._blob = np.ascontiguousarray(blob, dtype=np.uint8).data
        self._offsets = np.ascontiguousarray(offsets, dtype=np.int64).data
        self._decode = decode
        self._base_n = int(offsets.shape[0]) - 1
        self._n = self._base_n
        self._over: dict[int, T] = {}
        self._tail: list[T] = []

    def __len__(self) -> int:
        return self._n

    def _get(self, i: int) -> T:
        if i >= self._base_n:
            return self._tail[i - self._base_n]
        value = self._over.get(i, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        offsets = self._offsets
        return self._decode(self._blob[offsets[i] : offsets[i + 1]].tobytes())

    @overload
    def __getitem__(self, i: SupportsIndex) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: SupportsIndex | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(self._n))]
        i = i.__index__()
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("PackedList index out of range")
        return self._get(i)

    def __setitem__(self, i: SupportsIndex, value: T) -> None:
        i = i.__index__()
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("PackedList assignment index out of range")
        if i >= self._base_n:
            self._tail[i - self._base_n] = value
        else:
            self._over[i] = value

    def append(self, value: T) -> None:
        if self._n < self._base_n:  # popped below the base's end before: reuse that position
            self._over[self._n] = value
        else:
            self._tail.append(value)
        self._n += 1

    def pop(self) -> T:
        if self._n == 0:
            raise IndexError("pop from empty PackedList")
        value = self._get(self._n - 1)
        self._n -= 1
        if self._n >= self._base_n:
            self._tail.pop()
        else:
            self._over.pop(self._n, None)
        return value

    def __iter__(self) -> Iterator[T]:
        for i in range(self._n):
            yield self._get(i)

    def changed(self) -> int:
        """Positions that differ from the packed buffer (overlay and tail): how stale a snapshot is."""
        return len(self._over) + len(self._tail)


_MISSING = object()


def pack(items: Iterable[bytes]) -> tuple[Bytes, Offsets]:
    """The buffer and offsets array of a :class:`PackedList` holding ``items`` (already encoded)."""
    parts = list(items)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    if parts:
        np.cumsum([len(p) for p in parts], out=offsets[1:])
    blob = np.frombuffer(b"".join(parts), dtype=np.uint8) if parts else np.zeros(0, dtype=np.uint8)
    return blob, offsets


def as_list(items: Sequence[T]) -> list[T]:
    """A plain list of the items (a packed list decodes every item once)."""
    return items if isinstance(items, list) else list(items)
