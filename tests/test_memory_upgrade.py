"""Directories written by the release before the SQLite store are converted with nothing lost, and
``vectorseam doctor`` checks, recovers and upgrades from the command line.

tests/fixtures/format3 was written by vectorseam 092f063 (two compactions, a torn tail); expected.json
holds every record as that release served it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vectorseam.errors import CollectionDamagedError
from vectorseam.stores.memory import MemoryStore
from vectorseam.testing import make_records, random_vectors
from vectorseam.types import CollectionSpec

FIXTURE = Path(__file__).parent / "fixtures" / "format3"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())


def _old_directory(tmp_path: Path) -> Path:
    root = tmp_path / "memory"
    root.mkdir()
    for name in EXPECTED:
        shutil.copytree(FIXTURE / name, root / name)
    return root


def _assert_as_written(store: MemoryStore) -> None:
    assert sorted(c.name for c in store.collections()) == sorted(EXPECTED)
    for name, want in EXPECTED.items():
        info = store.collection_info(name)
        assert [info.name, info.dimension, info.metric, info.metadata] == want["spec"]
        got = {r.id: r for page in store.scan(name) for r in page}
        assert sorted(got) == sorted(want["records"]), name
        for rid, (vector, text, metadata) in want["records"].items():
            r = got[rid]
            assert r.vector is not None and r.vector.tolist() == vector, rid  # bit for bit
            assert (r.text, r.metadata) == (text, metadata), rid  # ints past 2**64 included


def test_a_directory_of_the_previous_release_is_converted_on_first_open(tmp_path: Path) -> None:
    root = _old_directory(tmp_path)
    _assert_as_written(MemoryStore(root))
    for name in EXPECTED:
        assert (root / name / "records.sqlite3").is_file()
        assert not (root / name / "manifest.json").exists()
    backups = sorted((root / ".upgraded").iterdir())
    assert len(backups) == len(EXPECTED)  # the old files are kept, out of the way
    assert any((b / "manifest.json").is_file() for b in backups)
    store = MemoryStore(root)  # and it is an ordinary collection from then on
    store.upsert("logged", make_records(random_vectors(2, 8, seed=1), prefix="new-"))
    assert MemoryStore(root).count("logged") == len(EXPECTED["logged"]["records"]) + 2


def test_processes_opening_an_old_directory_at_once_convert_it_once(tmp_path: Path) -> None:
    root = _old_directory(tmp_path)
    script = "import sys; from vectorseam.stores.memory import MemoryStore; " \
             "print(sum(c.count for c in MemoryStore(sys.argv[1]).collections()))"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    total = sum(len(v["records"]) for v in EXPECTED.values())
    assert outs == [str(total)] * 3
    assert len(list((root / ".upgraded").iterdir())) == len(EXPECTED)
    _assert_as_written(MemoryStore(root))


def test_a_format_2_directory_converts_too(tmp_path: Path) -> None:
    """Format 2 kept one vectors file and one records file, no log: the fixture's base stands in."""
    root = _old_directory(tmp_path)
    manifest = json.loads((root / "logged" / "manifest.json").read_text())
    for key in ("log", "generation", "previous", "base_bytes", "uid"):
        manifest.pop(key, None)
    manifest["format"] = 2
    (root / "logged" / "manifest.json").write_text(json.dumps(manifest))
    store = MemoryStore(root)
    assert store.count("logged") == manifest["count"]  # the base alone (its log is not read in format 2)


def test_an_old_log_damaged_in_the_middle_is_not_converted_and_not_touched(tmp_path: Path) -> None:
    root = _old_directory(tmp_path)
    manifest = json.loads((root / "logged" / "manifest.json").read_text())
    log = root / "logged" / manifest["log"]
    data = bytearray(log.read_bytes())
    data[40] ^= 0xFF  # inside the first entry, with more entries after it
    log.write_bytes(bytes(data))
    before = sorted(p.name for p in (root / "logged").iterdir())
    store = MemoryStore(root)
    with pytest.raises(CollectionDamagedError, match="collection 'logged' is damaged .*cannot be converted"):
        store.count("logged")
    assert sorted(p.name for p in (root / "logged").iterdir()) == before  # nothing cut, nothing moved
    assert store.count("euclid") == len(EXPECTED["euclid"]["records"])  # the others convert and serve


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VECTORSEAM_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "vectorseam.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_doctor_checks_recovers_and_upgrades_from_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    root = data_dir / "memory"
    root.mkdir(parents=True)
    shutil.copytree(FIXTURE / "logged", root / "old")
    with MemoryStore(root) as store:
        store.ensure_collection(CollectionSpec("good", 4, "dot"))
        store.upsert("good", make_records(random_vectors(20, 4, seed=1)))
        store.ensure_collection(CollectionSpec("bad", 4, "dot"))
        store.upsert("bad", make_records(random_vectors(30, 4, seed=2)))
    old_count = len(EXPECTED["logged"]["records"])

    upgraded = _cli(data_dir, "doctor", "--upgrade", "--json")
    assert upgraded.returncode == 0, upgraded.stderr
    assert {r["collection"]: r["records"] for r in json.loads(upgraded.stdout)} == {
        "bad": 30, "good": 20, "old": old_count}

    # Damage one record's bytes in "bad": the check names it, exits 1, and the store refuses it.
    db = root / "bad" / "records.sqlite3"
    data = bytearray(db.read_bytes())
    at = data.find(b"r0007")
    data[at + 40] ^= 0x55
    db.write_bytes(bytes(data))
    checked = _cli(data_dir, "doctor", "bad")
    assert checked.returncode == 1
    assert "bad: DAMAGED" in checked.stdout and "doctor bad --recover" in checked.stdout, checked.stdout
    with pytest.raises(CollectionDamagedError):
        MemoryStore(root).count("bad", filter={"i": 1})

    recovered = _cli(data_dir, "doctor", "bad", "--recover", "--json")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    (row,) = json.loads(recovered.stdout)
    assert row["ok"] and row["recovered"]["kept"] == 29 and row["recovered"]["damaged_records"] == ["r0007"]
    assert Path(row["recovered"]["damaged_copy"], "records.sqlite3").is_file()  # the damaged file is kept
    store = MemoryStore(root)
    assert store.count("bad") == 29 and not store.fetch("bad", ["r0007"])
    want = {r.id: r for r in make_records(random_vectors(30, 4, seed=2))}
    for rec in (r for page in store.scan("bad") for r in page):
        assert rec.vector is not None and np.array_equal(rec.vector, want[rec.id].vector), rec.id
    assert _cli(data_dir, "doctor").returncode == 0
