"""The store's options as they come from configuration (``store.options``), validated up front.

Three deployments, exactly one of which is chosen:

* ``location=":memory:"`` (the default): qdrant-client's in-process local mode, nothing on disk;
* ``path=DIR``: local mode persisted in a folder (one process at a time may open it);
* ``url=http(s)://host:port``: a Qdrant server, optionally with ``api_key`` and ``prefer_grpc``.

The model is a :class:`vectorseam.options.StoreOptions`; ``url`` (which may carry user:password)
and ``api_key`` are ``SecretStr``, and messages name the server by :attr:`QdrantOptions.display_url`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from vectorseam.options import Flag, Int, Number, Seconds, StoreOptions, redact_url
from vectorseam.options import parse_options as parse_store_options
from vectorseam.retrying import RetryPolicy

MAX_RETRIES = 20


def _folder(value: object) -> object:
    """A folder may be given as a ``Path``; it is kept as a string."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


class QdrantOptions(StoreOptions):
    location: str | None = Field(default=None, description="':memory:': qdrant-client's in-process local mode")
    path: Annotated[str, BeforeValidator(_folder)] | None = Field(
        default=None, min_length=1, description="local mode persisted in this folder"
    )
    url: SecretStr | None = Field(default=None, description="a Qdrant server, e.g. http://localhost:6333")
    api_key: SecretStr | None = Field(default=None, min_length=1, description="server API key")
    prefer_grpc: Flag = False
    grpc_port: Int = Field(default=6334, ge=1, le=65535)
    timeout: Seconds | None = Field(default=None, gt=0, description="per request; the client takes whole seconds")
    retries: Int = Field(default=4, ge=0, le=MAX_RETRIES, description="extra attempts after a transient failure")
    backoff: Number = Field(default=0.25, ge=0, description="first retry waits up to this many seconds")
    backoff_max: Number = Field(default=5.0, ge=0, description="cap of the wait, which doubles per retry")
    batch_size: Int = Field(default=256, ge=1, description="points per upsert request")

    @field_validator("location")
    @classmethod
    def _memory_only(cls, location: str | None) -> str | None:
        if location not in (None, ":memory:"):
            raise ValueError(
                "is not supported: use ':memory:', or path=DIR for a local on-disk store, or "
                "url=http://host:6333 for a server"
            )
        return location

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            parts = urlsplit(url.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("is not an http(s) URL; expected e.g. http://localhost:6333")
        return url

    @model_validator(mode="after")
    def _one_deployment(self) -> QdrantOptions:
        chosen = [name for name, value in (("location", self.location), ("path", self.path), ("url", self.url))
                  if value]
        if len(chosen) > 1:
            raise ValueError(
                f"{' and '.join(repr(name) for name in chosen)} exclude each other: use location=':memory:' for "
                "an in-process store, path=DIR for a local on-disk store, or url=... for a Qdrant server"
            )
        if self.url is None:
            given = {"api_key": self.api_key is not None, "prefer_grpc": self.prefer_grpc,
                     "grpc_port": "grpc_port" in self.model_fields_set}
            for name, set_here in given.items():
                if set_here:
                    raise ValueError(f"{name!r} only applies to a server; set url=... as well")
        return self

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
        return "" if self.url is None else redact_url(self.url.get_secret_value())

    @property
    def backend(self) -> str:
        """How error messages name this store."""
        if self.mode == "server":
            transport = f" (gRPC port {self.grpc_port})" if self.prefer_grpc else ""
            return f"Qdrant server at {self.display_url}{transport}"
        if self.mode == "path":
            return f"local Qdrant store in {self.path}"
        return "in-memory Qdrant store"

    @property
    def client_timeout(self) -> int | None:
        """``timeout`` rounded up to the whole seconds qdrant-client takes."""
        return None if self.timeout is None else math.ceil(self.timeout)

    @property
    def retry(self) -> RetryPolicy:
        """The server calls' retry policy: full jitter below ``backoff * 2**n``, capped at ``backoff_max``."""
        return RetryPolicy.from_retries(self.retries, self.backoff, self.backoff_max)


def parse_options(options: Mapping[str, Any]) -> QdrantOptions:
    """The configuration's ``store.options`` checked; a ConfigError names each wrong option."""
    return parse_store_options(QdrantOptions, options, backend="qdrant")
