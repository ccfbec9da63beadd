"""Configuration: environment variables (``VECTORSEAM_`` prefix, ``__`` for nesting) over an optional
``vectorseam.toml`` over defaults.

The store and the embedder are chosen by name, so moving from the embedded default to PostgreSQL or
Qdrant is a configuration change only::

    VECTORSEAM_STORE__NAME=pgvector
    VECTORSEAM_STORE__OPTIONS='{"dsn": "postgresql://app@db:5432/app"}'

Secrets (API keys, DSNs with passwords, store options whose name says key/password/token/secret/dsn)
are held as ``SecretStr`` so they never appear in logs, reprs or error messages.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vectorseam.errors import ConfigError

_SECRET_OPTION = re.compile(r"(key|password|passwd|token|secret|dsn|url)$", re.IGNORECASE)
CONFIG_ENV = "VECTORSEAM_CONFIG"
DEFAULT_CONFIG_FILE = "vectorseam.toml"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vectorseam"


class StoreSettings(BaseModel):
    name: str = Field("memory", description="store plugin name (entry point in group vectorseam.stores)")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword options for the store factory")

    @field_validator("options")
    @classmethod
    def _hide_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {
            k: SecretStr(v) if isinstance(v, str) and _SECRET_OPTION.search(k) else v for k, v in value.items()
        }

    def factory_options(self) -> dict[str, Any]:
        """Options as the store factory takes them, with secrets revealed only here."""
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self.options.items()}


class EmbedderSettings(BaseModel):
    name: Literal["local", "openai"] = "local"
    model: str | None = Field(None, description="model name; default per provider")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    api_key: SecretStr | None = None
    dimension: int | None = Field(None, description="vector length, for models the client does not know")
    batch_size: int = Field(64, ge=1, le=2048)
    max_retries: int = Field(5, ge=0, le=20)
    timeout: float = Field(60.0, gt=0)
    on_too_long: Literal["truncate", "error"] | None = Field(
        None, description="inputs over the model's limit: truncate or raise (default: local truncates, openai raises)"
    )
    backend: Literal["torch", "onnx"] = Field(
        "torch", description="local model runtime: sentence-transformers on torch, or ONNX Runtime (the 'onnx' "
        "extra; same vectors to cosine 0.9999999, about 2x faster on short texts)"
    )
    custom_matrix: Path | None = Field(
        None, description="a matrix from `vectorseam customize train`; embeddings are mapped through it"
    )


class LLMSettings(BaseModel):
    """An OpenAI-compatible chat endpoint for answers and cluster names; unset means offline/extractive."""

    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0, le=20)

    @property
    def configured(self) -> bool:
        return bool(self.base_url or self.api_key) and bool(self.model)


class APIKeySettings(BaseModel):
    """One API key of the HTTP service, stored only as a hash (``vectorseam serve --hash-key``)."""

    name: str = Field(..., min_length=1, description="who holds the key; logged instead of the key")
    hash: str = Field(..., pattern=r"^sha256:[0-9a-f]{64}$", description="'sha256:' + hex digest of the key")
    scope: Literal["read", "admin"] = Field("read", description="read: queries; admin: also writes and ingest")
    collections: list[str] | None = Field(
        None, description="the collections this key may use: names, or name prefixes ending in '*' "
        "(\"tenant-a-*\"); unset: every collection. Others answer 404, as if they did not exist"
    )

    ingest_dirs: list[Path] | None = Field(None, description=(
        "server directories this key may ingest files from (POST .../ingest with a 'path'); unset: "
        "service.ingest_dirs for a key without 'collections', none for a scoped key. No two keys with "
        "different 'collections' may name overlapping directories unless service.shared_ingest_dirs lists them"))
    rate_limit: float | None = Field(None, gt=0, description=(
        "requests per second this key may make (token bucket, per server process); unset: "
        "service.key_rate_limit"))
    burst: int | None = Field(None, ge=1, description=(
        "requests this key may make at once above its rate (the bucket's size); unset: service.key_burst, "
        "else twice the rate (at least 1)"))
    max_in_flight: int | None = Field(None, ge=1, description=(
        "requests of this key served at the same time (per server process); unset: service.key_max_in_flight"))

    @field_validator("collections")
    @classmethod
    def _patterns(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or []:
            if not pattern or "*" in pattern[:-1]:
                raise ValueError(f"collection pattern {pattern!r}: give a name, or a prefix followed by one "
                                 "'*' at the end (\"tenant-a-*\")")
        return value


class ServiceSettings(BaseModel):
    """The HTTP service (``vectorseam serve``): where it listens, who may call it, and request limits."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    api_keys: list[APIKeySettings] = Field(default_factory=list)
    allow_unauthenticated: bool = Field(
        False, description="serve without API keys on a non-loopback host (open on 127.0.0.1 regardless)"
    )
    allowed_hosts: list[str] = Field(default_factory=list, description=(
        "Host header names served besides loopback ones (localhost, 127.0.0.1, [::1]): exact names, "
        "'*.example.com' or '*'. Empty: any name when API keys are configured, loopback names only without "
        "keys (a DNS-rebinding page must not reach a keyless service)"))
    cors_origins: list[str] = Field(default_factory=list)
    ingest_dirs: list[Path] = Field(default_factory=list, description=(
        "server directories keys without 'collections' may ingest files from (a key's own ingest_dirs "
        "replaces it); never inside the data directory or a store's files, which startup refuses"))
    shared_ingest_dirs: list[Path] = Field(default_factory=list, description=(
        "directories several keys with different 'collections' may all ingest from (each still names it "
        "in its own ingest_dirs); anywhere else two keys' directories must not overlap"))
    max_input_chars: int = Field(100_000, ge=1, description=(
        "characters of text one request may have embedded: the inputs of /v1/embeddings together, a "
        "search query, a question; checked before any work (413)"))
    key_rate_limit: float | None = Field(None, gt=0, description=(
        "requests per second of each key without its own rate_limit (per server process); unset: no limit"))
    key_burst: int | None = Field(None, ge=1, description="bucket size for key_rate_limit; unset: twice the rate")
    key_max_in_flight: int | None = Field(None, ge=1, description=(
        "requests of one key served at once, for keys without their own max_in_flight; unset: no limit"))
    public_docs: bool = Field(False, description=(
        "serve /docs, /redoc and /openapi.json without a key when API keys are configured (they need a key "
        "otherwise)"))
    max_k: int = Field(100, ge=1, le=10_000)
    max_text_chars: int = Field(10_000, ge=1)
    max_batch: int = Field(256, ge=1, le=100_000, description="records, ids or inputs per request")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    # 64 is the filter parser's own ceiling (vectorseam.filters.MAX_DEPTH), which no setting can raise.
    max_filter_depth: int = Field(32, ge=1, le=64, description="nesting of $and/$or/$not in a filter")
    max_filter_values: int = Field(1024, ge=1, le=1_000_000, description="values in one $in or $nin list")
    max_filter_terms: int = Field(4096, ge=1, le=10_000_000, description=(
        "a filter's cost: its conditions plus every value its $in/$nin lists hold; bounds the work a "
        "store does per record while it holds its lock"))
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    jobs_dsn: SecretStr | None = Field(None, description=(
        "PostgreSQL holding ingest job records, shared by replicas on several machines; default: the pgvector "
        "store's database when the store is pgvector, else data_dir/service/jobs.sqlite3 (one machine)"))
    jobs_schema: str = Field("vectorseam_service", min_length=1, max_length=63,
                             pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="schema of the jobs table in PostgreSQL")


class IngestSettings(BaseModel):
    """How ``vectorseam ingest`` runs: in this process (``local``), or on a Ray cluster (``ray``, the
    ``ray`` extra), whose record manager lives in PostgreSQL so workers on every machine share it."""

    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(
        None, description="'auto' (the cluster this machine belongs to) or 'ray://HOST:PORT'; unset: a local cluster"
    )
    ray_workers: int | None = Field(
        None, ge=1, le=4096, description="embedding actors; default: one per GPU, else one per CPU but one"
    )
    ray_writers: int = Field(2, ge=1, le=256, description="parallel store writers")
    record_manager_dsn: SecretStr | None = Field(
        None, description="PostgreSQL for the Ray engine's record manager; default: the pgvector store's DSN"
    )
    record_manager_schema: str = Field("vectorseam_ingest", min_length=1, max_length=63)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VECTORSEAM_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir, description="where embedded stores keep data")
    collection: str = Field("default", description="collection used when a command names none")
    store: StoreSettings = Field(default_factory=StoreSettings)  # type: ignore[arg-type]
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)  # type: ignore[arg-type]
    llm: LLMSettings = Field(default_factory=LLMSettings)  # type: ignore[arg-type]
    service: ServiceSettings = Field(default_factory=ServiceSettings)  # type: ignore[arg-type]
    ingest: IngestSettings = Field(default_factory=IngestSettings)  # type: ignore[arg-type]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


_explicit_path: Path | None = None


def _config_path() -> Path | None:
    if _explicit_path is not None:
        return _explicit_path
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Settings from (in order of precedence) overrides, environment, the TOML file, defaults."""
    global _explicit_path
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"configuration file {path} does not exist")
        _explicit_path = path
    else:
        env = os.environ.get(CONFIG_ENV)
        if env and not Path(env).is_file():
            raise ConfigError(f"{CONFIG_ENV} points at {env}, which does not exist")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    except Exception as exc:  # a malformed TOML file or env value
        raise ConfigError(f"cannot read the configuration: {exc}") from None
    finally:
        _explicit_path = None
