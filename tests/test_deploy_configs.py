"""The example configurations in deploy/configs name installed stores with options their factories take."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from vectorseam.config import load_settings
from vectorseam.stores.registry import load_factory

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "deploy" / "configs").glob("*.toml"))


def test_there_is_one_per_backend() -> None:
    assert {p.stem for p in CONFIGS} == {"memory", "pgvector", "qdrant", "pinecone", "weaviate"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_example_config_matches_its_store_factory(
    path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(path)
    assert settings.store.name == path.stem
    factory = load_factory(settings.store.name)
    signature = inspect.signature(factory)
    options = settings.store.factory_options()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    if not takes_any:
        signature.bind_partial(**options)  # raises TypeError on an option the factory doesn't take
    if settings.store.name != "memory":  # every adapter checks its options with a pydantic model
        from importlib import import_module

        # The Pinecone example keeps its key out of the file, in the environment (as its comment says).
        monkeypatch.setenv("PINECONE_API_KEY", "test-key")
        module = import_module(f"vectorseam_{settings.store.name}.options")
        module.parse_options(options)  # a ConfigError names any option the adapter does not take or refuses
