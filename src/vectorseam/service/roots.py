"""Which server directories each key may ingest files from, and what the service says about paths.

Why per key: one deployment serves several tenants, and a single list of directories let any admin key
read any tenant's files into its own collections and then search them. Each key names its own
directories (``api_keys[].ingest_dirs``); ``service.ingest_dirs`` serves only keys that reach every
collection (and an open service's anonymous caller).

Why startup refuses some directories: a directory that holds the data directory, or lies inside it or
a store's own files, would let a key copy any collection's raw files; two keys with different
``collections`` naming overlapping directories could read each other's uploads. Keys with the same
``collections`` see the same data anyway (a read and an admin key of one tenant, a key and its
replacement), so they may share; anyone else shares only what ``service.shared_ingest_dirs`` lists.

Why one answer for "missing" and "forbidden": telling them apart (as the service once did) lets a key
probe which files exist elsewhere on the server. Messages and job details show paths relative to the
caller's own directory, and any other server path as a placeholder (:class:`PathScrubber`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vectorseam.config import ServiceSettings
from vectorseam.datadir import DataDir
from vectorseam.errors import ConfigError, ValidationError
from vectorseam.service.auth import key_roots, resolved

HIDDEN = "<server path>"


def overlaps(a: Path, b: Path) -> bool:
    """``a`` and ``b`` (resolved) are one directory, or one lies inside the other."""
    return a == b or a in b.parents or b in a.parents


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose directories these are: a key (or ``service.ingest_dirs``), with the collections it reaches."""

    label: str
    collections: tuple[str, ...] | None
    roots: tuple[Path, ...]


def owners(settings: ServiceSettings) -> list[Owner]:
    found = [Owner("service.ingest_dirs", None, resolved(settings.ingest_dirs))]
    for i, key in enumerate(settings.api_keys):
        if key.ingest_dirs is not None:
            scope = None if key.collections is None else tuple(sorted(set(key.collections)))
            found.append(Owner(f"service.api_keys[{i}] ({key.name!r}).ingest_dirs", scope,
                               resolved(key_roots(key, settings.ingest_dirs))))
    return found


def check_roots(settings: ServiceSettings, protected: Sequence[tuple[Path, str]]) -> None:
    """Refuse (ConfigError) a configuration whose ingest directories reach protected files (the data
    directory, a store's files: ``(path, what)``) or overlap another owner's (see the module docstring)."""
    shared = resolved(settings.shared_ingest_dirs)
    areas = [(DataDir.at(p), what) for p, what in protected]
    for root in shared:
        for area, what in areas:
            if area.contains(root):
                raise ConfigError(f"service.shared_ingest_dirs: {root} overlaps {what} ({area.root}); every key that "
                                  "may ingest from it could read the stored records of every tenant. Choose a "
                                  "directory outside it")
    everyone = owners(settings)
    for owner in everyone:
        for root in owner.roots:
            for area, what in areas:
                if area.contains(root):
                    raise ConfigError(
                        f"{owner.label}: {root} overlaps {what} ({area.root}); a key that may ingest from it could "
                        "read the raw files of every collection. Choose a directory outside it")
    for i, first in enumerate(everyone):
        for second in everyone[i + 1:]:
            if first.collections == second.collections:
                continue  # they reach the same collections: nothing crosses between them
            for a in first.roots:
                for b in second.roots:
                    inner = a if b in a.parents or a == b else b
                    if overlaps(a, b) and not any(inner == s or s in inner.parents for s in shared):
                        raise ConfigError(
                            f"{first.label} and {second.label} overlap ({a} and {b}) but reach different "
                            "collections: each could ingest the other's files into its own collections. Give "
                            "them separate directories, or list the directory in service.shared_ingest_dirs "
                            "if both may really read it")


def ingest_file(raw: str, roots: Sequence[Path]) -> tuple[Path, Path]:
    """The file ``raw`` names under one of ``roots`` (relative to each in turn, or absolute) and that
    root; else one ValidationError, the same whether the file is missing, elsewhere or unreadable."""
    if not roots:
        raise ValidationError("this API key may not ingest files from the server (no ingest directories are "
                              "configured for it); send the documents in the request body instead")
    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    # What is wrong with the name itself is said as such: it tells nothing about the server's files.
    if "\x00" in raw:
        raise ValidationError(f"path {shown!r} contains a NUL character, which no file name can")
    if len(raw.encode("utf-8", "surrogatepass")) >= 4096 or any(
            len(part.encode("utf-8", "surrogatepass")) > 255 for part in raw.split("/")):
        raise ValidationError(f"path {shown!r}: the name is too long for a file system (at most 255 bytes a "
                              "part, 4095 in all)")
    path = Path(raw)
    for candidate in ([path] if path.is_absolute() else [root / path for root in roots]):
        try:  # a loop of links, a folder the server may not enter: all "not found"
            target = candidate.resolve()
            root = next((r for r in roots if r in target.parents), None)
            if root is not None and target.is_file():
                return target, root
        except (OSError, RuntimeError, ValueError):
            continue
    raise ValidationError(f"path {shown!r}: no such file in this key's ingest directories (give a path relative "
                          "to one of them)")


class PathScrubber:
    """Server paths out of messages: the caller's own ingest directory becomes relative (``x.csv:3``)
    and, with ``hide_others``, any other known server path (data directory, store files, other keys'
    directories) becomes ``<server path>``.

    Only for text the server wrote itself (a job's rows read from the caller's own directory, a 5xx):
    hiding paths in text that echoes the caller's input would itself tell which paths are the server's.
    """

    def __init__(self, known: Sequence[Path]) -> None:
        forms = {str(p) for p in known} | {str(Path(p).expanduser().resolve()) for p in known}
        self._known = sorted((f for f in forms if f not in ("", "/", ".")), key=len, reverse=True)

    def __call__(self, text: str, own: Sequence[Path] = (), hide_others: bool = True) -> str:
        for root in sorted(own, key=lambda r: len(str(r)), reverse=True):
            text = text.replace(f"{root}{os.sep}", "").replace(str(root), ".")
        if hide_others:
            for path in self._known:
                if path in text:
                    text = text.replace(path, HIDDEN)
        return text


def known_paths(settings: ServiceSettings, protected: Sequence[tuple[Path, str]]) -> list[Path]:
    """Every server path a message could name that some caller must not see."""
    paths = [Path(p) for p, _ in protected] + [Path(p) for p in settings.shared_ingest_dirs]
    for owner in owners(settings):
        paths.extend(owner.roots)
    return paths
