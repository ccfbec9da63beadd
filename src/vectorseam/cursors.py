"""Opaque cursors: a position in a scroll or a ranked list, handed to a client and back.

A cursor is URL-safe base64 of a small JSON object. It is opaque by contract (clients pass it back
unchanged) but not secret: it holds a position and a digest of the request it belongs to, never
data, so a forged one can only start a page elsewhere in what the same request may read anyway.

Positions are *keys*, not counts: a scroll continues "after this record key", a ranked list "after
this (score, id)". A key-based position stays valid while records are written: nothing before it is
repeated, and nothing after it that existed all along is skipped, which an offset cannot promise
(an insert before the offset shifts every later record by one).

The digest binds a cursor to its request (collection, filter, query), so a cursor sent with another
filter is refused with a clear error instead of silently paging through something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from vectorseam.errors import ValidationError

VERSION = 1


def digest(*parts: Any) -> str:
    """A short stable digest of JSON-able ``parts`` (the request a cursor belongs to)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def encode(kind: str, request: str, **position: Any) -> str:
    """A cursor of ``kind`` ("scroll", "search") for the request digest ``request`` at ``position``."""
    body = {"v": VERSION, "t": kind, "r": request, **position}
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(cursor: str, kind: str, request: str) -> dict[str, Any]:
    """The position in ``cursor``; ValidationError if it is malformed, of another kind, or was made
    for another request (another collection, filter or query)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error):
        body = None
    if not isinstance(body, Mapping) or body.get("v") != VERSION or not isinstance(body.get("t"), str):
        raise ValidationError("cursor: not a cursor this server made; pass back the next_cursor of the previous "
                              "page unchanged, or start again without one")
    if body["t"] != kind:
        raise ValidationError(f"cursor: a {body['t']} cursor was given to a {kind}; start the {kind} without one")
    if body.get("r") != request:
        raise ValidationError(f"cursor: it continues another {kind} (another collection, filter or query); send "
                              "the same request as for the previous page, or start again without a cursor")
    return {k: v for k, v in body.items() if k not in ("v", "t", "r")}
