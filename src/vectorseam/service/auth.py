"""API keys: hashed at rest, checked in constant time, two scopes, optionally limited to some collections.

Why SHA-256 and not a slow password hash: keys made by ``vectorseam serve --new-key`` carry 256 bits
of randomness, so nobody can brute-force one from its hash; slow hashes (argon2, bcrypt) protect
*low-entropy* passwords and would cost milliseconds of CPU on every request. The configuration holds
only ``sha256:<hex>`` digests, so a leaked config file does not leak a usable key.

Why the service is open when no key is configured: a first run after ``make demo`` must just work
on the developer's own machine. It is open only on a loopback host; on any other host the service
refuses to start without keys unless ``service.allow_unauthenticated`` says so explicitly.

Why a collection outside a key's ``collections`` answers 404 and not 403: one deployment serves several
tenants, and a 403 would tell one tenant which names the others use. The 404 reads the same whether the
collection exists or not, and the not-found message of a scoped key never lists other collections.

Why a warning for ``tenant-a*`` and not for ``tenant-a-*``: a pattern is a plain prefix, so one that
stops inside a word also matches ``tenant-ab-secret``, another tenant's name. Ending the prefix at a
separator (``-``, ``_``, ``.``, ``/``, ``:``) makes it match whole name segments only.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vectorseam.config import APIKeySettings
from vectorseam.errors import ConfigError

Scope = Literal["read", "admin"]
HASH_PREFIX = "sha256:"


def hash_key(key: str) -> str:
    """The string to put in ``service.api_keys[].hash`` for ``key``."""
    if not key or key != key.strip():
        raise ConfigError("an API key must be non-empty and have no surrounding whitespace")
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe), prefixed so it is recognisable in a secret scanner."""
    return "vs_" + secrets.token_urlsafe(32)


@functools.lru_cache(maxsize=256)
def is_loopback(host: str) -> bool:
    """Cached: every request's Host header is checked, and parsing an address each time was a measurable
    part of a request's path (a few names recur; a client sending many bounded names only churns the cache)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: the key's name (never the key), its scope, the collections it may use
    (``None``: all; otherwise names, and prefixes ending in ``*``) and the server directories it may
    ingest files from (resolved; see :mod:`vectorseam.service.roots`)."""

    name: str
    scope: Scope
    collections: tuple[str, ...] | None = None
    roots: tuple[Path, ...] = ()

    def allows(self, needed: Scope) -> bool:
        return needed == "read" or self.scope == "admin"

    @property
    def scoped(self) -> bool:
        return self.collections is not None

    def sees(self, collection: str) -> bool:
        if self.collections is None:
            return True
        return any(collection.startswith(p[:-1]) if p.endswith("*") else collection == p
                   for p in self.collections)


ANONYMOUS = Caller("anonymous", "admin")


def not_visible(collection: str) -> str:
    """The 404 message a scoped key gets, alike for an absent collection and one outside its scope."""
    return f"collection {collection!r} does not exist or is not available to this API key"


def key_roots(key: APIKeySettings, default: Sequence[Path]) -> list[Path]:
    """The directories ``key`` may ingest from, as configured: its own, else ``service.ingest_dirs``
    for a key that reaches every collection, else none (a scoped key never inherits the global list)."""
    if key.ingest_dirs is not None:
        return list(key.ingest_dirs)
    return list(default) if key.collections is None else []


def resolved(dirs: Sequence[Path]) -> tuple[Path, ...]:
    return tuple(Path(d).expanduser().resolve() for d in dirs)


SEPARATORS = "-_./:"


def scope_warnings(keys: Sequence[APIKeySettings]) -> list[str]:
    """A line per collection pattern that is not a whole-segment prefix (see the module docstring)."""
    out = []
    for key in keys:
        for pattern in key.collections or ():
            prefix = pattern[:-1]
            if pattern.endswith("*") and prefix and prefix[-1] not in SEPARATORS:
                out.append(f"API key {key.name!r}: collection pattern {pattern!r} also matches names that only "
                           f"begin like it, such as {prefix + 'b-secret'!r}; end the prefix at a separator "
                           f"({prefix + '-*'!r}) so it matches whole name segments only")
    return out


class KeyRing:
    """The configured keys; ``open`` when there are none (loopback only, see the module docstring).

    ``ingest_dirs`` is ``service.ingest_dirs``: the directories of keys that reach every collection and
    name none of their own, and of the anonymous caller of an open service."""

    def __init__(self, keys: list[APIKeySettings], ingest_dirs: Sequence[Path] = ()) -> None:
        self._keys = [
            (bytes.fromhex(k.hash.removeprefix(HASH_PREFIX)),
             Caller(k.name, k.scope, None if k.collections is None else tuple(k.collections),
                    resolved(key_roots(k, ingest_dirs))))
            for k in keys
        ]
        self.anonymous = Caller(ANONYMOUS.name, ANONYMOUS.scope, None, resolved(ingest_dirs))

    @property
    def open(self) -> bool:
        return not self._keys

    def identify(self, presented: str) -> Caller | None:
        """The caller holding ``presented``, or None. Every configured hash is compared, in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found: Caller | None = None
        for stored, caller in self._keys:
            if hmac.compare_digest(digest, stored) and found is None:
                found = caller
        return found


def check_exposure(host: str, keys: KeyRing, allow_unauthenticated: bool) -> None:
    """Refuse to serve an open API on a reachable address unless the configuration insists."""
    if keys.open and not is_loopback(host) and not allow_unauthenticated:
        raise ConfigError(
            f"refusing to serve without API keys on {host}: anyone who can reach it could write and delete "
            "records. Add keys under [service] api_keys (hash one with `vectorseam serve --hash-key`), "
            "bind to 127.0.0.1, or set service.allow_unauthenticated = true"
        )
