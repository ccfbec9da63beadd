"""Store options: one way for every adapter to check what the configuration passes to its factory.

Each adapter declares its options as a pydantic model (a :class:`StoreOptions`): names, types,
defaults and bounds in one place, unknown names refused (``extra="forbid"``), secrets (API keys,
DSNs, URLs that may carry a password) held as ``SecretStr`` so no repr, log line or error shows
them. :func:`parse_options` validates a configuration's ``store.options`` against such a model and
turns pydantic's report into one :class:`~vectorseam.errors.ConfigError` that names the backend, each
option, what was wrong and what is allowed, the way a person fixing a TOML file needs it.

Options arrive from TOML, JSON or environment variables, so numbers may come as strings ("200") and
are converted; booleans are never taken for numbers (``retries = true`` is a mistake, not 1), and
boolean options take only true/false (pydantic's lax mode would read "no" as False).
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union
from urllib.parse import urlsplit, urlunsplit

import annotated_types
from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, SecretStr, StrictBool
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from vectorseam.errors import ConfigError

__all__ = [
    "Flag",
    "Int",
    "Number",
    "Seconds",
    "StoreOptions",
    "Unit",
    "parse_options",
    "redact_url",
    "reveal",
    "with_env_default",
]

M = TypeVar("M", bound=BaseModel)


class StoreOptions(BaseModel):
    """Base of every adapter's options model: unknown names refused, values immutable once parsed.

    ``hide_input_in_errors`` keeps option values out of pydantic's own error text as well, should a
    ``ValidationError`` escape anywhere but :func:`parse_options`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


@dataclass(frozen=True, slots=True)
class Unit:
    """Marks a number's unit (``Annotated[float, Unit("seconds")]``) for the error messages."""

    name: str


def _refuse_bool(value: object) -> object:
    """``True`` is an int to Python and to pydantic's lax mode; as an option value it is a mistake."""
    if isinstance(value, bool):
        raise PydanticCustomError("bool_for_number", "a boolean is not a number")
    return value


Int = Annotated[int, BeforeValidator(_refuse_bool)]
"""An integer option; "42" and 42.0 are accepted, True and 4.5 are not."""

Number = Annotated[float, BeforeValidator(_refuse_bool), AllowInfNan(False)]
"""A finite number option; "2.5" is accepted."""

Seconds = Annotated[float, Unit("seconds"), BeforeValidator(_refuse_bool), AllowInfNan(False)]
"""A duration in seconds (finite)."""

Flag = StrictBool
"""A true/false option: only real booleans, so "no" or "false" in a string is refused, not guessed."""


def reveal(value: SecretStr | None) -> str | None:
    """The plain text of an optional secret, for handing to a client library (and nowhere else)."""
    return None if value is None else value.get_secret_value()


def redact_url(url: str) -> str:
    """``url`` as safe to print: scheme, host, port and path; no user:password, query or fragment."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    try:
        port = parts.port
    except ValueError:  # a malformed port: leave it out rather than fail while reporting
        port = None
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def with_env_default(data: Any, option: str, variable: str) -> Any:
    """``data`` (a model's raw input) with ``option`` taken from ``variable`` when left unset or empty.

    For a ``mode="before"`` model validator: client SDKs read their API key from a well-known
    environment variable, and so does vectorseam when the configuration names none.
    """
    if not isinstance(data, Mapping):
        return data
    given = data.get(option)
    if isinstance(given, SecretStr):
        given = given.get_secret_value()
    if given:
        return data
    from_env = os.environ.get(variable)
    return {**data, option: from_env} if from_env else data


def parse_options(model_cls: type[M], options: Mapping[str, Any], *, backend: str) -> M:
    """``options`` validated as ``model_cls``, or a :class:`ConfigError` that says what to fix.

    The error is raised ``from None``: pydantic's report carries the input values, and some of
    them are secrets.
    """
    try:
        return model_cls.model_validate(dict(options))
    except PydanticValidationError as exc:
        message = _describe_errors(model_cls, exc.errors(include_url=False), backend)
    raise ConfigError(message)


# -- turning pydantic's error list into one message ---------------------------------------------------

_NUMBER_ERRORS = frozenset({
    "bool_for_number", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
    "finite_number", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
})


def _describe_errors(model_cls: type[BaseModel], errors: list[ErrorDetails], backend: str) -> str:
    # Options are named as the configuration spells them: a field's alias where it has one.
    fields = {field.alias or name: field for name, field in model_cls.model_fields.items()}
    unknown = [str(err["loc"][0]) for err in errors if err["type"] == "extra_forbidden" and err["loc"]]
    sentences = []
    if unknown:
        hints = [
            f"{name!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(name, fields, n=1))
            else repr(name)
            for name in unknown
        ]
        sentences.append(
            f"unknown options for the {backend} store: {', '.join(hints)}; valid options are: {', '.join(fields)}"
        )
    problems = [_problem(err, fields) for err in errors if err["type"] != "extra_forbidden"]
    if problems:
        sentences.append(f"invalid options for the {backend} store: {'; '.join(problems)}")
    return ". ".join(sentences)


def _problem(err: ErrorDetails, fields: dict[str, FieldInfo]) -> str:
    name = str(err["loc"][0]) if err["loc"] else None
    field = fields.get(name) if name is not None else None
    kind = err["type"]
    if kind == "value_error":  # a validator's own words, written to follow the option's name
        text = str(err.get("ctx", {}).get("error", err["msg"]))
    elif kind == "missing":
        text = "is required"
    elif field is not None and kind in _NUMBER_ERRORS:
        text = f"must be {_number_rule(field)}"
    elif kind in ("bool_type", "bool_parsing"):
        text = "must be true or false"
    elif kind == "literal_error":
        text = f"must be {err.get('ctx', {}).get('expected', 'one of the listed values')}"
    elif kind in ("string_type", "str_type"):
        text = "must be a string"
    elif kind in ("too_short", "string_too_short"):
        text = "must not be empty"
    else:
        text = err["msg"][:1].lower() + err["msg"][1:]
    if name is None:  # a rule between options: its text names them
        return text
    shown = "" if field is None or _is_secret(field) else f" (got {err['input']!r})"
    return f"{name!r} {text}{shown}"


def _number_rule(field: FieldInfo) -> str:
    """``an integer between 1 and 1000``, ``a number of seconds > 0``, ... from the field's type and bounds."""
    metadata = [*field.metadata, *_annotation_metadata(field.annotation)]
    integer = int in _annotation_types(field.annotation)
    unit = next((m.name for m in metadata if isinstance(m, Unit)), None)
    what = "an integer" if integer else "a number"
    if unit:
        what += f" of {unit}"
    low = next(((">=", m.ge) for m in metadata if isinstance(m, annotated_types.Ge)), None) or next(
        ((">", m.gt) for m in metadata if isinstance(m, annotated_types.Gt)), None
    )
    high = next((("<=", m.le) for m in metadata if isinstance(m, annotated_types.Le)), None) or next(
        (("<", m.lt) for m in metadata if isinstance(m, annotated_types.Lt)), None
    )
    if low and high and low[0] == ">=" and high[0] == "<=":
        return f"{what} between {low[1]} and {high[1]}"
    bounds = " and ".join(f"{sign} {value}" for sign, value in (b for b in (low, high) if b is not None))
    return f"{what} {bounds}".rstrip()


def _annotation_parts(annotation: Any) -> list[Any]:
    """The annotation's base types and metadata, through ``X | None`` and ``Annotated[...]``."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extra = typing.get_args(annotation)
        return [*_annotation_parts(base), *extra]
    if origin is Union or isinstance(annotation, types.UnionType):
        return [part for arg in typing.get_args(annotation) for part in _annotation_parts(arg)]
    return [annotation]


def _annotation_types(annotation: Any) -> list[Any]:
    return [part for part in _annotation_parts(annotation) if isinstance(part, type)]


def _annotation_metadata(annotation: Any) -> list[Any]:
    return [part for part in _annotation_parts(annotation) if not isinstance(part, type)]


def _is_secret(field: FieldInfo) -> bool:
    return SecretStr in _annotation_types(field.annotation)
