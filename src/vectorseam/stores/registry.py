"""Finding a store by name: every backend, the built-in memory store included, is an entry point.

Adapters are separate installable packages that register a factory under the ``vectorseam.stores``
entry-point group; the factory takes the store's options from the configuration as keyword
arguments and returns a :class:`~vectorseam.store.VectorStore`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from vectorseam.errors import ConfigError, MissingExtraError
from vectorseam.extras import STORE_EXTRAS, install_command
from vectorseam.store import VectorStore

GROUP = "vectorseam.stores"

StoreFactory = Callable[..., VectorStore]


def available_stores() -> dict[str, str]:
    """Installed store names and the factory each points at."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_factory(name: str) -> StoreFactory:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        installed = ", ".join(sorted(available_stores())) or "none"
        if name in STORE_EXTRAS:  # a known adapter: its extra (from a checkout, `pip install -e adapters/NAME`)
            raise MissingExtraError(
                f"the {name} store needs its adapter, {STORE_EXTRAS[name]}, which is not installed (installed: "
                f"{installed}): {install_command(name)} (from a checkout: pip install -e adapters/{name})")
        raise ConfigError(
            f"no vector store named {name!r} is installed (installed: {installed}). "
            f"Install its adapter, e.g. `pip install -e adapters/{name}`, or set store.name to one of those"
        )
    try:
        factory = matches[0].load()
    except ImportError as exc:
        raise ConfigError(f"the {name!r} store adapter is installed but failed to import: {exc}") from exc
    return factory  # type: ignore[no-any-return]


def open_store(name: str, options: dict[str, Any] | None = None) -> VectorStore:
    """Build the named store from its options (``store.options`` in the configuration)."""
    factory = load_factory(name)
    try:
        return factory(**(options or {}))
    except TypeError as exc:
        raise ConfigError(f"bad options for the {name!r} store: {exc}") from exc
