"""Files written by releases before the state database are imported once, and set aside, not dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vectorseam.datadir import DataDir
from vectorseam.errors import StoreUnavailableError
from vectorseam.state import StateDB


def test_aliases_and_migrations_are_imported_once(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path).ensure()
    data.legacy_aliases.write_text(json.dumps({"memory:x": {"docs": "docs_v2"}}), encoding="utf-8")
    data.legacy_migrations.mkdir()
    (data.legacy_migrations / "m.json").write_text(json.dumps({"key": "m", "copied": 120}), encoding="utf-8")

    db = StateDB(data)
    assert db.aliases("memory:x") == {"docs": "docs_v2"}
    assert db.migration_progress("m") == 120
    db.close()
    assert not data.legacy_aliases.exists()
    assert (tmp_path / "aliases.json.imported").is_file()
    assert (data.legacy_migrations / "m.json.imported").is_file()

    db = StateDB(data)  # reopened: nothing left to import, nothing imported twice
    db.set_alias("memory:x", "docs", "docs_v3")
    db.close()
    assert StateDB(data).aliases("memory:x") == {"docs": "docs_v3"}


def test_a_damaged_alias_file_is_reported_and_kept(tmp_path: Path) -> None:
    data = DataDir.at(tmp_path).ensure()
    data.legacy_aliases.write_text("{not json", encoding="utf-8")
    with pytest.raises(StoreUnavailableError, match="aliases.json"):
        StateDB(data).aliases("memory:x")
    assert data.legacy_aliases.read_text(encoding="utf-8") == "{not json"
