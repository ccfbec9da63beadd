"""The store's options as they come from configuration (``store.options``), validated up front.

A :class:`vectorseam.options.StoreOptions` model: unknown names and bad values are one
:class:`~vectorseam.errors.ConfigError` naming the option. ``api_key`` (from ``WEAVIATE_API_KEY``
when the configuration names none) and ``url`` (which may carry user:password) are ``SecretStr``;
messages name the server by :attr:`WeaviateOptions.display_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from vectorseam.options import Flag, Int, Seconds, StoreOptions, redact_url, with_env_default
from vectorseam.options import parse_options as parse_store_options

API_KEY_ENV = "WEAVIATE_API_KEY"
MAX_RETRIES = 20


class WeaviateOptions(StoreOptions):
    url: SecretStr = Field(default=SecretStr("http://localhost:8080"), description="REST endpoint, http(s)://host:port")
    grpc_port: Int = Field(default=50051, ge=1, le=65535)
    grpc_host: str | None = Field(default=None, description="default: the url's host")
    api_key: SecretStr | None = Field(default=None, description=f"or {API_KEY_ENV}; empty: no key")
    prefix: str = Field(default="Vs_", description="class-name prefix of every collection")
    tenant: str | None = Field(default=None, min_length=1, description="multi-tenancy: all I/O goes to this tenant")
    batch_size: Int = Field(default=500, ge=1, description="objects per insert_many request")
    timeout: Seconds = Field(default=30.0, gt=0, description="init, query and insert timeouts")
    retries: Int = Field(default=3, ge=0, le=MAX_RETRIES, description="extra attempts after a transient failure")
    skip_init_checks: Flag = False

    @model_validator(mode="before")
    @classmethod
    def _key_from_environment(cls, data: Any) -> Any:
        return with_env_default(data, "api_key", API_KEY_ENV)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr) -> SecretStr:
        parts = urlsplit(url.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like http://host:8080")
        return url

    @field_validator("prefix")
    @classmethod
    def _class_name_prefix(cls, prefix: str) -> str:
        if not prefix[:1].isupper():
            raise ValueError("must start with an uppercase letter (Weaviate class names do)")
        return prefix

    @property
    def display_url(self) -> str:
        """The URL without any user:password part, safe to print."""
        return redact_url(self.url.get_secret_value())


def parse_options(options: Mapping[str, Any]) -> WeaviateOptions:
    """The configuration's ``store.options`` checked; a ConfigError names each wrong option."""
    return parse_store_options(WeaviateOptions, options, backend="weaviate")
