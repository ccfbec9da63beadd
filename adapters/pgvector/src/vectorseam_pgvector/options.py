"""The store's options, as the configuration passes them to ``create_store(**options)``.

Options arrive from TOML or environment variables, so numbers may come as strings; each is checked
and coerced here once, and every mistake becomes a :class:`~vectorseam.errors.ConfigError` that names
the option, the value and the allowed range, instead of a failure deep inside a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vectorseam.errors import ConfigError

IndexMode = Literal["hnsw", "exact"]

# pgvector's own limits (hnsw.ef_search 1..1000, m 2..100, ef_construction 4..1000).
EF_SEARCH_RANGE = (1, 1000)
HNSW_M_RANGE = (2, 100)
HNSW_EF_CONSTRUCTION_RANGE = (4, 1000)


@dataclass(frozen=True, slots=True)
class PgVectorOptions:
    dsn: str = ""
    schema: str = "vectorseam"
    index: IndexMode = "hnsw"
    ef_search: int = 100
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    index_build_memory: str = "512MB"  # maintenance_work_mem while an HNSW index is built
    pool_min: int = 1
    pool_max: int = 4
    connect_timeout: float = 5.0
    pool_timeout: float = 10.0
    statement_timeout: float = 0.0  # seconds; 0 means no limit
    retries: int = 3
    retry_backoff: float = 0.2

    def __repr__(self) -> str:  # the DSN may hold a password
        shown = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "dsn"}
        return f"PgVectorOptions(dsn=<hidden>, {', '.join(f'{k}={v!r}' for k, v in shown.items())})"


_FIELDS = tuple(PgVectorOptions.__dataclass_fields__)


def _reveal(value: object) -> object:
    """Accept pydantic's SecretStr (or anything with get_secret_value) for secret options."""
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else value


def _int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"pgvector option {name!r} must be an integer, got {value!r}")
    try:
        number = int(value) if isinstance(value, int | str) else int(_exact_float(name, value))
    except (TypeError, ValueError):
        raise ConfigError(f"pgvector option {name!r} must be an integer, got {value!r}") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"pgvector option {name!r} must be {bound}, got {number}")
    return number


def _exact_float(name: str, value: object) -> float:
    if isinstance(value, float) and value.is_integer():
        return value
    raise ValueError(name)


def _seconds(name: str, value: object, allow_zero: bool = False) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"pgvector option {name!r} must be a number of seconds, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"pgvector option {name!r} must be a number of seconds, got {value!r}") from None
    if not number >= 0 or number == float("inf") or (number == 0 and not allow_zero):
        raise ConfigError(f"pgvector option {name!r} must be a positive number of seconds, got {value!r}")
    return number


def _memory(name: str, value: object) -> str:
    """A PostgreSQL memory setting: a whole number and a unit (kB, MB, GB, TB), at least 1MB."""
    units = {"kB": 1, "MB": 1024, "GB": 1024**2, "TB": 1024**3}
    text = value.strip() if isinstance(value, str) else ""
    number, unit = text.rstrip("kMGTB"), text[len(text.rstrip("kMGTB")):]
    if not number.isdigit() or unit not in units or int(number) * units[unit] < 1024:
        raise ConfigError(f"pgvector option {name!r} must be a size such as '512MB' or '2GB' (at least 1MB), "
                          f"got {value!r}")
    return f"{int(number)}{unit}"


def validate_identifier(name: object, what: str) -> str:
    """Schema names: a letter or '_' then letters, digits or '_', at most 63 bytes (PostgreSQL's limit)."""
    if (
        not isinstance(name, str)
        or not name
        or len(name.encode()) > 63
        or not (name[0].isascii() and (name[0].isalpha() or name[0] == "_"))
        or not all(c.isascii() and (c.isalnum() or c == "_") for c in name)
    ):
        raise ConfigError(
            f"pgvector option {what!r} must be 1-63 ASCII letters, digits or '_' starting "
            f"with a letter or '_', got {name!r}"
        )
    return name


def parse_options(**options: Any) -> PgVectorOptions:
    unknown = sorted(set(options) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown pgvector option(s) {', '.join(unknown)}; valid options: {', '.join(_FIELDS)}")
    defaults = PgVectorOptions()
    dsn = _reveal(options.get("dsn", defaults.dsn))
    if not isinstance(dsn, str):
        raise ConfigError(f"pgvector option 'dsn' must be a connection string, got {type(dsn).__name__}")
    index = options.get("index", defaults.index)
    if index not in ("hnsw", "exact"):
        raise ConfigError(f"pgvector option 'index' must be 'hnsw' or 'exact', got {index!r}")

    def get(name: str) -> object:
        return options.get(name, getattr(defaults, name))

    hnsw_m = _int("hnsw_m", get("hnsw_m"), *HNSW_M_RANGE)
    ef_construction = _int("hnsw_ef_construction", get("hnsw_ef_construction"), *HNSW_EF_CONSTRUCTION_RANGE)
    if ef_construction < 2 * hnsw_m:
        raise ConfigError(
            f"pgvector option 'hnsw_ef_construction' ({ef_construction}) must be at least twice 'hnsw_m' ({hnsw_m})"
        )
    pool_min = _int("pool_min", get("pool_min"), 0)
    pool_max = _int("pool_max", get("pool_max"), 1)
    if pool_max < pool_min:
        raise ConfigError(f"pgvector option 'pool_max' ({pool_max}) must be at least 'pool_min' ({pool_min})")
    return PgVectorOptions(
        dsn=dsn,
        schema=validate_identifier(get("schema"), "schema"),
        index=index,
        ef_search=_int("ef_search", get("ef_search"), *EF_SEARCH_RANGE),
        hnsw_m=hnsw_m,
        hnsw_ef_construction=ef_construction,
        index_build_memory=_memory("index_build_memory", get("index_build_memory")),
        pool_min=pool_min,
        pool_max=pool_max,
        connect_timeout=_seconds("connect_timeout", get("connect_timeout")),
        pool_timeout=_seconds("pool_timeout", get("pool_timeout")),
        statement_timeout=_seconds("statement_timeout", get("statement_timeout"), allow_zero=True),
        retries=_int("retries", get("retries"), 0, 20),
        retry_backoff=_seconds("retry_backoff", get("retry_backoff"), allow_zero=True),
    )
