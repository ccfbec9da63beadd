"""The store's options as they come from configuration (``store.options``), validated up front.

Three deployments, exactly one of which is chosen:

* ``location=":memory:"`` (the default): qdrant-client's in-process local mode, nothing on disk;
* ``path=DIR``: local mode persisted in a folder (one process at a time may open it);
* ``url=http(s)://host:port``: a Qdrant server, optionally with ``api_key`` and ``prefer_grpc``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vectorseam.errors import ConfigError
from vectorseam_qdrant.retry import RetryPolicy

OPTION_NAMES = (
    "location",
    "path",
    "url",
    "api_key",
    "prefer_grpc",
    "grpc_port",
    "timeout",
    "retries",
    "backoff",
    "backoff_max",
    "batch_size",
)


@dataclass(frozen=True, slots=True)
class QdrantOptions:
    location: str | None = None
    path: str | None = None
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    prefer_grpc: bool = False
    grpc_port: int = 6334
    timeout: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch_size: int = 256

    @property
    def mode(self) -> str:
        """``memory``, ``path`` or ``server``."""
        if self.url is not None:
            return "server"
        if self.path is not None:
            return "path"
        return "memory"

    @property
    def display_url(self) -> str:
        """The server URL without any user:password part, safe to print."""
        if self.url is None:
            return ""
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    @property
    def backend(self) -> str:
        """How error messages name this store."""
        if self.mode == "server":
            transport = f" (gRPC port {self.grpc_port})" if self.prefer_grpc else ""
            return f"Qdrant server at {self.display_url}{transport}"
        if self.mode == "path":
            return f"local Qdrant store in {self.path}"
        return "in-memory Qdrant store"


def _secret(value: object) -> str | None:
    if value is None:
        return None
    reveal = getattr(value, "get_secret_value", None)  # pydantic SecretStr from the settings layer
    if callable(reveal):
        value = reveal()
    if not isinstance(value, str) or not value:
        raise ConfigError("qdrant store option 'api_key' must be a non-empty string")
    return value


def parse_options(options: Mapping[str, Any]) -> QdrantOptions:
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown qdrant store option(s): {', '.join(unknown)}; "
            f"valid options are {', '.join(OPTION_NAMES)}"
        )
    location = options.get("location")
    path = options.get("path")
    url = options.get("url")
    chosen = [name for name, value in (("location", location), ("path", path), ("url", url)) if value]
    if len(chosen) > 1:
        raise ConfigError(
            f"qdrant store options {' and '.join(chosen)} exclude each other: use location=':memory:' for "
            "an in-process store, path=DIR for a local on-disk store, or url=... for a Qdrant server"
        )
    if location not in (None, ":memory:"):
        raise ConfigError(
            f"qdrant store option location={location!r} is not supported: use ':memory:', or path=DIR for "
            "a local on-disk store, or url=http://host:6333 for a server"
        )
    if path is not None:
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigError(f"qdrant store option 'path' must be a folder path, got {path!r}")
        path = os.fspath(path)
    if url is not None:
        if not isinstance(url, str):
            raise ConfigError(f"qdrant store option 'url' must be a string, got {url!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"qdrant store option url={url!r} is not an http(s) URL; expected e.g. http://localhost:6333"
            )
    if url is None:
        for name in ("api_key", "prefer_grpc", "grpc_port"):
            if options.get(name) not in (None, False):
                raise ConfigError(
                    f"qdrant store option {name!r} only applies to a server; set url=... as well"
                )
    prefer_grpc = options.get("prefer_grpc", False)
    if not isinstance(prefer_grpc, bool):
        raise ConfigError(f"qdrant store option 'prefer_grpc' must be true or false, got {prefer_grpc!r}")
    grpc_port = options.get("grpc_port", 6334)
    if isinstance(grpc_port, bool) or not isinstance(grpc_port, int) or not 0 < grpc_port < 65536:
        raise ConfigError(f"qdrant store option 'grpc_port' must be a port number, got {grpc_port!r}")
    timeout = options.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigError(
                f"qdrant store option 'timeout' must be a positive number of seconds, got {timeout!r}"
            )
        timeout = math.ceil(timeout)  # the client takes whole seconds
    batch_size = options.get("batch_size", 256)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"qdrant store option 'batch_size' must be a positive integer, got {batch_size!r}")
    defaults = RetryPolicy()
    retry = RetryPolicy(
        retries=options.get("retries", defaults.retries),
        backoff=options.get("backoff", defaults.backoff),
        backoff_max=options.get("backoff_max", defaults.backoff_max),
    )
    return QdrantOptions(
        location=":memory:" if not (path or url) else None,
        path=path,
        url=url,
        api_key=_secret(options.get("api_key")),
        prefer_grpc=prefer_grpc,
        grpc_port=grpc_port,
        timeout=timeout,
        retry=retry,
        batch_size=batch_size,
    )
