"""The CLI end to end, as a user runs it: real model, real files, separate processes per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_data

ROWS = [
    ("b1", "Title: Great beans; Content: These black beans are delicious and cook fast.", 5),
    ("p1", "Title: Pasta; Content: Whole wheat pasta with a nutty taste, my kids love it.", 4),
    ("d1", "Title: Late; Content: The package arrived two weeks late and the box was crushed.", 1),
    ("c1", "Title: Cat food; Content: My cat refuses every other brand of dry food.", 5),
    ("t1", "Title: Tea; Content: A smooth green tea, not bitter at all.", 3),
]


def run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "vectorseam.cli.__main__", *args], env=env, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


@pytest.fixture()
def env(isolated_env: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["COLUMNS"] = "200"
    return e


@pytest.fixture()
def csv_file(isolated_env: Path) -> Path:
    path = isolated_env / "reviews.csv"
    lines = ["id,Summary,Text,Score"]
    for rid, text, score in ROWS:
        summary, content = text.split("; Content: ")
        lines.append(f'{rid},"{summary.removeprefix("Title: ")}","{content}",{score}')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ingest_search_collections(csv_file: Path, env: dict[str, str]) -> None:
    out = run(["ingest", str(csv_file), "--collection", "reviews",
               "--text-template", "Title: {Summary}; Content: {Text}"], env)
    assert "written 5, rejected 0" in out.stdout
    # a second run is idempotent by id
    run(["ingest", str(csv_file), "--collection", "reviews", "--text-template", "Title: {Summary}; Content: {Text}"], env)
    cols = json.loads(run(["collections", "--json"], env).stdout)
    assert cols == [{"name": "reviews", "count": 5, "dimension": 384, "metric": "cosine",
                     "embedder": "local:sentence-transformers/all-MiniLM-L6-v2:384:normalized"}]
    hits = json.loads(run(["search", "delicious beans", "--collection", "reviews", "-k", "2", "--json"], env).stdout)
    assert hits[0]["id"] == "b1" and hits[0]["metadata"]["Score"] == 5
    many = json.loads(run(["search", "bad delivery", "pet food", "--collection", "reviews", "-k", "1", "--json"],
                          env).stdout)
    assert [m["hits"][0]["id"] for m in many] == ["d1", "c1"]
    filtered = json.loads(run(["search", "delicious beans", "--collection", "reviews", "-k", "5",
                               "--filter", '{"Score": {"$lte": 3}}', "--json"], env).stdout)
    assert {h["id"] for h in filtered} == {"d1", "t1"}
    table = run(["search", "whole wheat pasta", "--collection", "reviews", "-k", "1"], env).stdout
    assert "p1" in table and "Whole wheat pasta" in table


def test_bad_input_gets_clear_errors_and_nonzero_exit(csv_file: Path, env: dict[str, str], isolated_env: Path) -> None:
    run(["ingest", str(csv_file), "--collection", "reviews", "--text-field", "Text"], env)
    bad = run(["search", "beans", "--collection", "reviews", "--filter", '{"Score": {"$regex": "x"}}'], env, check=False)
    assert bad.returncode == 1 and "unknown operator '$regex'" in bad.stderr and "Traceback" not in bad.stderr
    bad = run(["search", "beans", "--collection", "reviews", "--filter", "{not json"], env, check=False)
    assert bad.returncode == 1 and "--filter is not valid JSON" in bad.stderr
    bad = run(["search", "beans", "--collection", "nosuch"], env, check=False)
    assert bad.returncode == 1 and "collection 'nosuch' does not exist" in bad.stderr
    bad = run(["search", "   ", "--collection", "reviews"], env, check=False)
    assert bad.returncode == 1 and "query text is empty" in bad.stderr
    # rows without text are reported with file:line, the rest is written, nothing already stored is lost
    broken = isolated_env / "broken.jsonl"
    broken.write_bytes(b'{"id": "x1", "text": "fresh coffee beans"}\n{"id": "x2"}\n{broken\n'
                       b'{"id": "x3", "text": "   "}\n{"id": "x4", "text": "bad \xff bytes"}\n')
    out = run(["ingest", str(broken), "--collection", "reviews"], env)
    assert "written 1, rejected 4" in out.stdout
    assert f"{broken}:2: missing text field 'text'" in out.stdout
    assert f"{broken}:3: broken JSON" in out.stdout
    assert f"{broken}:4: text is empty" in out.stdout
    assert f"{broken}:5: undecodable bytes" in out.stdout
    cols = json.loads(run(["collections", "--json"], env).stdout)
    assert cols[0]["count"] == 6
    strict = run(["ingest", str(broken), "--collection", "reviews", "--strict"], env, check=False)
    assert strict.returncode == 1 and "--strict" in strict.stderr


def test_cookbook_reviews_demo_queries(isolated_env: Path, local_embedder) -> None:  # type: ignore[no-untyped-def]
    """The demo's promise on the real data: beans for 'delicious beans', pasta for 'whole wheat pasta'."""
    from vectorseam.ingest.job import ingest_file
    from vectorseam.ingest.sources import RowSpec
    from vectorseam.retrieval.search import Searcher
    from vectorseam.stores.memory import MemoryStore

    path = shared_data("cookbook/fine_food_reviews_1k.csv")
    # A subset keeps the test fast on 2 cores: the first 200 reviews plus every one mentioning the topics.
    import csv

    keep = isolated_env / "subset.csv"
    with open(path, newline="") as src, open(keep, "w", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            blob = (row[5] + row[6]).lower()
            if i < 150 or any(w in blob for w in ("bean", "pasta", "deliver")):
                writer.writerow(row)
    store = MemoryStore()
    report = ingest_file(store, local_embedder, "reviews", keep,
                         RowSpec(text_template="Title: {Summary}; Content: {Text}"))
    assert report.rejected == 0
    searcher = Searcher(store, local_embedder)
    beans = searcher.search("reviews", "delicious beans", k=3)
    assert all("bean" in h.text.lower() for h in beans[:2])
    pasta = searcher.search("reviews", "whole wheat pasta", k=3)
    assert "pasta" in pasta[0].text.lower()
    delivery = searcher.search("reviews", "bad delivery", k=5)
    assert any(w in h.text.lower() for h in delivery[:3] for w in ("deliver", "arrived", "shipping"))


def test_error_messages_and_stored_texts_print_as_plain_text(env: dict[str, str], isolated_env: Path) -> None:
    """Rich markup in what the CLI prints came from users and data: ``[/]`` crashed it, ``[red]x`` lost its
    brackets, and the serve refusal lost its ``[service]``."""
    bad = run(["search", "beans", "--collection", "[/]"], env, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "error: collection '[/]' does not exist" in bad.stderr
    bad = run(["search", "beans", "--collection", "[red]x"], env, check=False)
    assert bad.returncode == 1 and "collection '[red]x' does not exist" in bad.stderr
    bad = run(["serve", "--host", "0.0.0.0"], env, check=False)
    assert bad.returncode == 1 and "Add keys under [service] api_keys" in bad.stderr
    # The report that started issue 13: "written 1, rejected 0" for this file; a stray quote costs its row only.
    quoted = isolated_env / "quoted.csv"
    quoted.write_text('id,text\nq1,"Tea [/] with a stray quote\nq2,Green tea [red]steeped[/red] for two minutes\n'
                      "q3,Black coffee brewed strong\nq4,Oolong tea from the hills\n")
    out = run(["ingest", str(quoted), "--collection", "quoted"], env)
    assert "written 3, rejected 1" in out.stdout
    assert f"rejected {quoted}:2: unclosed quote? A quoted field opened on this line runs on to line 5" in out.stdout
    table = run(["search", "green tea steeped", "--collection", "quoted", "-k", "1"], env)
    assert "Green tea [red]steeped[/red]" in table.stdout and "'green tea steeped'" in table.stdout
