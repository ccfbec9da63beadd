"""Keyset paging in Qdrant: the :class:`~vectorseam.store.Scrollable` method of
:class:`~vectorseam_qdrant.store.QdrantStore`.

Qdrant's ``scroll`` orders points by point id and continues from ``offset``, the id of the first point
of the next page, a lower bound rather than a position: the page after it is right even when that
very point was deleted meanwhile, and a point written during the scroll comes up if its id lies ahead.
The position handed out is that point id (the uuid5 of a record id, see :mod:`vectorseam_qdrant.layout`).

Grouping and facets are not native here: Qdrant's point groups and facet counts take only string and
integer values (a point with a float or a boolean is silently left out) and skip points without the
field, where vectorseam makes them groups of their own; :mod:`vectorseam.retrieval` emulates both
over ``query`` and ``scan`` so the answers match every other store.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from qdrant_client import models

from vectorseam.contract import check_k
from vectorseam.errors import ValidationError
from vectorseam.filters import Filter, FilterLike
from vectorseam.types import Record

if TYPE_CHECKING:
    from collections.abc import Callable

    from qdrant_client import QdrantClient


class QdrantScroll:
    """The ``scroll`` of :class:`~vectorseam_qdrant.store.QdrantStore` (see the module docstring)."""

    if TYPE_CHECKING:
        _client: QdrantClient

        def _call(self, what: str, fn: Callable[[], Any], collection: str | None = None) -> Any: ...
        def _get(self, name: str) -> Any: ...
        def _filter(self, spec: FilterLike) -> Filter | None: ...
        def _qdrant_filter(self, coll: Any, f: Filter | None) -> models.Filter | None: ...
        @staticmethod
        def _payload(include_vectors: bool) -> models.PayloadSelectorExclude: ...
        def _record(self, coll: Any, point: Any) -> Record: ...

    def scroll(self, collection: str, limit: int, after: str | None = None, filter: FilterLike = None,
               include_vectors: bool = True) -> tuple[list[Record], str | None]:
        check_k(limit)
        offset: str | None = None
        if after is not None:
            try:
                offset = str(uuid.UUID(after))
            except ValueError:
                raise ValidationError("cursor: the position is not a Qdrant point id; start the scroll again "
                                      "without a cursor") from None
        f = self._filter(filter)
        coll = self._get(collection)
        qfilter = self._qdrant_filter(coll, f)
        points, following = self._call(
            f"scrolling {collection!r}",
            lambda: self._client.scroll(coll.name, scroll_filter=qfilter, limit=limit, offset=offset,
                                        with_payload=self._payload(include_vectors), with_vectors=include_vectors),
            collection,
        )
        return [self._record(coll, p) for p in points], (None if following is None else str(following))
