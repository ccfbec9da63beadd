"""The store's options, as the configuration passes them to ``create_store(**options)``.

A pydantic model (:class:`vectorseam.options.StoreOptions`): each option is checked and coerced
once, here (numbers may come as strings from environment variables), and every mistake becomes a
:class:`~vectorseam.errors.ConfigError` that names the option, the value and the allowed range,
instead of a failure deep inside a query. The DSN may hold a password, so it is a ``SecretStr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, model_validator

from vectorseam.options import Int, Seconds, StoreOptions
from vectorseam.options import parse_options as parse_store_options
from vectorseam.retrying import RetryPolicy

IndexMode = Literal["hnsw", "exact"]

# pgvector's own limits (hnsw.ef_search 1..1000, m 2..100, ef_construction 4..1000).
EF_SEARCH_RANGE = (1, 1000)
HNSW_M_RANGE = (2, 100)
HNSW_EF_CONSTRUCTION_RANGE = (4, 1000)
MAX_RETRIES = 20
RETRY_MAX_DELAY = 30.0  # cap of one wait between retries, in seconds
# Equal jitter: each wait keeps at least half of the exponential step, so a pool that lost its
# server does not hammer it at once, yet many clients do not reconnect in lock-step.
RETRY_JITTER = 0.5

_MEMORY_UNITS = {"kB": 1, "MB": 1024, "GB": 1024**2, "TB": 1024**3}


def _memory(value: object) -> str:
    """A PostgreSQL memory setting: a whole number and a unit (kB, MB, GB, TB), at least 1MB."""
    text = value.strip() if isinstance(value, str) else ""
    number, unit = text.rstrip("kMGTB"), text[len(text.rstrip("kMGTB")):]
    if not number.isdigit() or unit not in _MEMORY_UNITS or int(number) * _MEMORY_UNITS[unit] < 1024:
        raise ValueError("must be a size such as '512MB' or '2GB' (at least 1MB)")
    return f"{int(number)}{unit}"


def _identifier(name: object) -> object:
    """Schema names: a letter or '_' then letters, digits or '_', at most 63 bytes (PostgreSQL's limit)."""
    if (
        not isinstance(name, str)
        or not name
        or len(name.encode()) > 63
        or not (name[0].isascii() and (name[0].isalpha() or name[0] == "_"))
        or not all(c.isascii() and (c.isalnum() or c == "_") for c in name)
    ):
        raise ValueError("must be 1-63 ASCII letters, digits or '_' starting with a letter or '_'")
    return name


class PgVectorOptions(StoreOptions):
    dsn: SecretStr = Field(default=SecretStr(""), description="libpq connection string or URI; empty: PG* variables")
    schema_: Annotated[str, BeforeValidator(_identifier)] = Field(
        default="vectorseam", alias="schema", description="schema holding the catalog and one table per collection"
    )
    index: IndexMode = "hnsw"
    ef_search: Int = Field(default=100, ge=EF_SEARCH_RANGE[0], le=EF_SEARCH_RANGE[1])
    hnsw_m: Int = Field(default=16, ge=HNSW_M_RANGE[0], le=HNSW_M_RANGE[1])
    hnsw_ef_construction: Int = Field(
        default=64, ge=HNSW_EF_CONSTRUCTION_RANGE[0], le=HNSW_EF_CONSTRUCTION_RANGE[1]
    )
    index_build_memory: Annotated[str, BeforeValidator(_memory)] = Field(
        default="512MB", description="maintenance_work_mem while an HNSW index is built"
    )
    pool_min: Int = Field(default=1, ge=0)
    pool_max: Int = Field(default=4, ge=1)
    connect_timeout: Seconds = Field(default=5.0, gt=0)
    pool_timeout: Seconds = Field(default=10.0, gt=0)
    statement_timeout: Seconds = Field(default=0.0, ge=0, description="0 means no limit")
    retries: Int = Field(default=3, ge=0, le=MAX_RETRIES)
    retry_backoff: Seconds = Field(default=0.2, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> PgVectorOptions:
        if self.hnsw_ef_construction < 2 * self.hnsw_m:
            raise ValueError(
                f"'hnsw_ef_construction' ({self.hnsw_ef_construction}) must be at least twice 'hnsw_m' ({self.hnsw_m})"
            )
        if self.pool_max < self.pool_min:
            raise ValueError(f"'pool_max' ({self.pool_max}) must be at least 'pool_min' ({self.pool_min})")
        return self

    @property
    def schema(self) -> str:  # type: ignore[override]  # BaseModel.schema() is pydantic v1's deprecated method
        return self.schema_

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_retries(self.retries, self.retry_backoff, RETRY_MAX_DELAY, RETRY_JITTER)


def parse_options(options: Mapping[str, Any]) -> PgVectorOptions:
    """The configuration's ``store.options`` checked; a ConfigError names each wrong option."""
    return parse_store_options(PgVectorOptions, options, backend="pgvector")
