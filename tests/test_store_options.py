"""The options idiom every adapter shares: a pydantic model checked by one helper into one ConfigError."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field, SecretStr, model_validator

from vectorseam.errors import ConfigError
from vectorseam.options import (
    Flag,
    Int,
    Seconds,
    StoreOptions,
    parse_options,
    redact_url,
    reveal,
    with_env_default,
)


class DemoOptions(StoreOptions):
    dsn: SecretStr = SecretStr("")
    schema_: str = Field("public", alias="schema")
    index: Literal["hnsw", "exact"] = "hnsw"
    ef_search: Int = Field(100, ge=1, le=1000)
    timeout: Seconds = Field(5.0, gt=0)
    retries: Int = Field(3, ge=0)
    prefer_grpc: Flag = False
    api_key: SecretStr | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _key(cls, data: object) -> object:
        return with_env_default(data, "api_key", "DEMO_API_KEY")

    @model_validator(mode="after")
    def _rule(self) -> DemoOptions:
        if self.index == "exact" and "ef_search" in self.model_fields_set:
            raise ValueError("'ef_search' only applies to index='hnsw'")
        return self


def fails(**options: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_options(DemoOptions, options, backend="demo")
    assert info.value.__cause__ is None and info.value.__context__ is None  # pydantic's report holds inputs
    return str(info.value)


def test_values_are_coerced_as_configuration_delivers_them() -> None:
    opts = parse_options(DemoOptions, {"ef_search": "200", "timeout": "2.5", "schema": "app", "dsn": "pg://u:pw@h"},
                         backend="demo")
    assert (opts.ef_search, opts.timeout, opts.schema_) == (200, 2.5, "app")
    assert reveal(opts.dsn) == "pg://u:pw@h" and "pw" not in repr(opts) and reveal(None) is None
    with pytest.raises(Exception, match="frozen"):
        opts.retries = 1  # type: ignore[misc]


def test_unknown_options_name_the_known_ones_and_suggest_a_spelling() -> None:
    message = fails(dns="x", colour="red")
    assert message.startswith("unknown options for the demo store: 'dns' (did you mean 'dsn'?), 'colour'")
    assert "valid options are: dsn, schema, index, ef_search, timeout, retries, prefer_grpc, api_key" in message
    assert "schema_" not in message  # options are named as the configuration spells them


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"ef_search": 0}, "'ef_search' must be an integer between 1 and 1000 (got 0)"),
        ({"ef_search": True}, "'ef_search' must be an integer between 1 and 1000 (got True)"),
        ({"ef_search": 2.5}, "'ef_search' must be an integer between 1 and 1000 (got 2.5)"),
        ({"timeout": "soon"}, "'timeout' must be a number of seconds > 0 (got 'soon')"),
        ({"timeout": float("inf")}, "'timeout' must be a number of seconds > 0 (got inf)"),
        ({"retries": -1}, "'retries' must be an integer >= 0 (got -1)"),
        ({"index": "ivfflat"}, "'index' must be 'hnsw' or 'exact' (got 'ivfflat')"),
        ({"prefer_grpc": "yes"}, "'prefer_grpc' must be true or false (got 'yes')"),
        ({"schema": 5}, "'schema' must be a string (got 5)"),
        ({"index": "exact", "ef_search": 50}, "'ef_search' only applies to index='hnsw'"),
    ],
)
def test_each_mistake_names_backend_option_rule_and_value(options: dict[str, object], expected: str) -> None:
    assert fails(**options) == f"invalid options for the demo store: {expected}"


def test_secret_values_never_reach_the_message() -> None:
    message = fails(dsn=12345, api_key="", retries=-1)
    assert "'dsn' must be a string;" in message and message.endswith("'api_key' must not be empty")
    assert "12345" not in message and "(got -1)" in message


def test_api_key_from_the_environment_only_when_the_configuration_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_API_KEY", "from-env")
    assert reveal(parse_options(DemoOptions, {}, backend="demo").api_key) == "from-env"
    assert reveal(parse_options(DemoOptions, {"api_key": ""}, backend="demo").api_key) == "from-env"
    given = parse_options(DemoOptions, {"api_key": SecretStr("given")}, backend="demo")
    assert reveal(given.api_key) == "given"


def test_redact_url_keeps_where_and_drops_credentials() -> None:
    assert redact_url("https://user:pw@db.example:6333/api?key=k#x") == "https://db.example:6333/api"
    assert redact_url("http://[::1]:8080") == "http://[::1]:8080"
    assert redact_url("http://host:notaport/") == "http://host/"
