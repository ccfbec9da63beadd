"""Limits on a filter's size, checked on the raw JSON before any store call, and on the text one
request may have embedded.

Why here and not only in the filter parser: the parser refuses only what no caller could mean (deeper
than :data:`vectorseam.filters.MAX_DEPTH`, numbers past float range), while a server must also bound
what one request may cost its other callers. A store evaluates the filter against records while it
holds its lock, so a ``$in`` of a million values (about 8 MB of JSON) stalled every concurrent search
for seconds. Depth, the longest ``$in``/``$nin`` list and the total number of terms are counted here
without recursion (a hostile filter may nest thousands of levels) and compared with the ``service``
settings; anything else wrong with the filter is left to the parser, whose messages are better.

Why a budget on embedded characters (``service.max_input_chars``) beside ``max_text_chars`` and
``max_batch``: those bound one text and the count, not their product, and 256 inputs of 10,000
characters to ``/v1/embeddings`` cost one read key 28 s of CPU. Characters are counted, not tokens,
because counting them costs nothing and tokenizing is already part of the work being bounded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vectorseam.config import ServiceSettings
from vectorseam.errors import FilterError

_LISTS = ("$in", "$nin")


def check_filter(spec: Any, settings: ServiceSettings) -> None:
    """Raise FilterError (a 400) when ``spec`` is deeper, longer or costlier than ``settings`` allow."""
    if not isinstance(spec, dict):
        return
    terms = 0
    stack: list[tuple[Any, int]] = [(spec, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict):
            continue
        if depth > settings.max_filter_depth:
            raise FilterError(f"filter: $and/$or/$not nest more than {settings.max_filter_depth} levels deep, "
                              "this server's limit (service.max_filter_depth); flatten the filter")
        for key, value in node.items():
            if key in ("$and", "$or") and isinstance(value, list):
                terms += 1
                stack.extend((child, depth + 1) for child in value)
            elif key == "$not":
                terms += 1
                stack.append((value, depth + 1))
            elif isinstance(value, dict):
                for op, operand in value.items():
                    terms += 1
                    if op in _LISTS and isinstance(operand, list):
                        if len(operand) > settings.max_filter_values:
                            raise FilterError(
                                f"filter.{key}: {op} lists {len(operand)} values; this server takes at most "
                                f"{settings.max_filter_values} (service.max_filter_values): split the request "
                                "or filter on a coarser field")
                        terms += len(operand)
            else:
                terms += 1
        if terms > settings.max_filter_terms:
            raise FilterError(f"filter: more than {settings.max_filter_terms} conditions and listed values, "
                              "this server's limit on one filter's cost (service.max_filter_terms)")


class RequestTooLarge(Exception):
    """A request asks for more work than this server's per-request budget allows (answered 413)."""


def check_input_chars(texts: Iterable[str], what: str, settings: ServiceSettings) -> None:
    """Raise RequestTooLarge when ``texts`` together are longer than ``service.max_input_chars``."""
    total = sum(len(t) for t in texts)
    if total > settings.max_input_chars:
        raise RequestTooLarge(
            f"{what}: {total} characters to embed in one request, over this server's budget of "
            f"{settings.max_input_chars} (service.max_input_chars); send fewer or shorter texts per request")
