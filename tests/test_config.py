"""Configuration: env over TOML over defaults; stores and embedders chosen by name; secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from vectorseam.client import VectorSeam, store_from_settings
from vectorseam.config import load_settings
from vectorseam.errors import ConfigError
from vectorseam.stores.memory import MemoryStore
from vectorseam.stores.registry import available_stores, open_store


def test_defaults(isolated_env: Path) -> None:
    s = load_settings()
    assert s.store.name == "memory" and s.embedder.name == "local"
    assert s.data_dir == isolated_env / "data"
    assert not s.llm.configured


def test_env_nesting_and_toml(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated_env / "vectorseam.toml").write_text(
        'collection = "docs"\n'
        '[embedder]\nname = "openai"\nmodel = "text-embedding-3-large"\napi_key = "sk-from-toml"\n'
        '[store]\nname = "memory"\n[store.options]\npath = "/tmp/x"\n'
    )
    s = load_settings()
    assert s.collection == "docs" and s.embedder.model == "text-embedding-3-large"
    assert isinstance(s.embedder.api_key, SecretStr)
    monkeypatch.setenv("VECTORSEAM_EMBEDDER__MODEL", "from-env")
    monkeypatch.setenv("VECTORSEAM_COLLECTION", "envcoll")
    s = load_settings()
    assert s.embedder.model == "from-env" and s.collection == "envcoll"  # env beats the file
    assert s.store.factory_options() == {"path": "/tmp/x"}


def test_secrets_never_printed(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECTORSEAM_EMBEDDER__API_KEY", "sk-very-secret")
    monkeypatch.setenv("VECTORSEAM_STORE__OPTIONS", '{"dsn": "postgresql://u:pw-secret@h/db", "schema": "s"}')
    s = load_settings()
    text = repr(s) + str(s) + s.model_dump_json()
    assert "sk-very-secret" not in text and "pw-secret" not in text
    assert s.store.factory_options()["dsn"] == "postgresql://u:pw-secret@h/db"
    assert s.embedder.api_key is not None and s.embedder.api_key.get_secret_value() == "sk-very-secret"


def test_explicit_config_file_and_errors(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = isolated_env / "other.toml"
    cfg.write_text('collection = "from-file"\n')
    assert load_settings(cfg).collection == "from-file"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(isolated_env / "missing.toml")
    monkeypatch.setenv("VECTORSEAM_EMBEDDER__NAME", "nonsense")
    with pytest.raises(ConfigError, match="embedder.name"):
        load_settings()


def test_store_found_by_name(isolated_env: Path) -> None:
    assert "memory" in available_stores()
    store = store_from_settings(load_settings())
    assert isinstance(store, MemoryStore) and store.capabilities.persistent
    with pytest.raises(ConfigError, match=r"no vector store named 'nosuch' is installed \(installed: .*memory"):
        open_store("nosuch")
    with pytest.raises(ConfigError, match="unknown options for the memory store: 'bogus'"):
        open_store("memory", {"bogus": 1})


def test_swap_store_by_config_only(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECTORSEAM_STORE__OPTIONS", f'{{"path": "{isolated_env / "elsewhere"}"}}')
    vs = VectorSeam()
    assert vs.store.capabilities.name == "memory"
    vs.close()
    assert (isolated_env / "elsewhere").is_dir()
