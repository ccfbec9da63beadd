"""Core commands: ingest, search, collections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vectorseam.cli import app
from vectorseam.cli.state import open_client, parse_filter_option, set_config_file
from vectorseam.embedders.base import FINGERPRINT_KEY
from vectorseam.types import Hit

console = Console()


@app.callback()
def _global(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="path to a vectorseam.toml")] = None,
) -> None:
    set_config_file(config)


def _count_lines(path: Path) -> int | None:
    try:
        with open(path, "rb") as fh:
            return max(sum(1 for _ in fh) - (1 if path.suffix.lower() in (".csv", ".tsv") else 0), 0)
    except OSError:
        return None


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="a .csv, .tsv or .jsonl file")],
    collection: Annotated[str | None, typer.Option("--collection", help="target collection")] = None,
    id_field: Annotated[str | None, typer.Option(help="field holding the record id (default: 'id', else the row number)")] = None,
    text_field: Annotated[str, typer.Option(help="field holding the text to embed")] = "text",
    text_template: Annotated[str | None, typer.Option(help="build the text from fields, e.g. 'Title: {Summary}; Content: {Text}'")] = None,
    metadata_fields: Annotated[str | None, typer.Option(help="comma-separated fields kept as metadata (default: all others)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096)] = 64,
    strict: Annotated[bool, typer.Option(help="stop at the first bad row instead of reporting it and going on")] = False,
    rejects_file: Annotated[Path | None, typer.Option(help="write rejected rows (file:line and reason) here")] = None,
) -> None:
    """Embed the rows of FILE and upsert them into a collection (idempotent by id)."""
    fields = [f.strip() for f in metadata_fields.split(",") if f.strip()] if metadata_fields else None
    with open_client() as vs:
        name = collection or vs.settings.collection
        total = _count_lines(file)
        with Progress(
            TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console, transient=False,
        ) as bar:
            task = bar.add_task(f"{file.name} -> {name}", total=total, rate="")

            def progress(written: int, rejected: int) -> None:
                elapsed = bar.tasks[task].elapsed or 0.0
                rate = f"{written / elapsed:.0f} rec/s" if elapsed > 0 else ""
                bar.update(task, completed=written + rejected, rate=rate)

            report = vs.ingest_file(file, name, id_field, text_field, text_template, fields, batch_size,
                                    strict, progress)
    console.print(f"written {report.written}, rejected {report.rejected} into collection {name!r}")
    if report.rejects:
        for reject in report.rejects[:10]:
            console.print(f"  rejected {reject}", highlight=False, markup=False)
        if report.rejected > 10:
            console.print(f"  ... and {report.rejected - 10} more")
        if rejects_file is not None:
            rejects_file.write_text("".join(f"{r}\n" for r in report.rejects), encoding="utf-8")
            console.print(f"rejects written to {rejects_file}")


def _hit_json(hit: Hit) -> dict[str, object]:
    return {"id": hit.id, "score": hit.score, "text": hit.text, "metadata": hit.metadata}


@app.command()
def search(
    queries: Annotated[list[str], typer.Argument(help="what to search for (several queries: one table each)")],
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="how many hits")] = 5,
    collection: Annotated[str | None, typer.Option("--collection")] = None,
    filter: Annotated[str | None, typer.Option("--filter", help='metadata filter as JSON, e.g. \'{"Score": {"$gte": 4}}\'')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """Semantic search: the k records most similar in meaning to each QUERY."""
    f = parse_filter_option(filter)
    with open_client() as vs:
        results = vs.search_many(queries, k=k, filter=f, collection=collection)
    if as_json:
        payload = [{"query": q, "hits": [_hit_json(h) for h in hits]} for q, hits in zip(queries, results, strict=True)]
        typer.echo(json.dumps(payload[0]["hits"] if len(queries) == 1 else payload, ensure_ascii=False))
        return
    for query, hits in zip(queries, results, strict=True):
        _print_hits(query, hits)


def _print_hits(query: str, hits: list[Hit]) -> None:
    table = Table(title=f"{query!r}", title_justify="left", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id")
    table.add_column("text", overflow="fold", max_width=90)
    for rank, hit in enumerate(hits, 1):
        text = hit.text if len(hit.text) <= 200 else hit.text[:197] + "..."
        table.add_row(str(rank), f"{hit.score:.3f}", hit.id, text)
    console.print(table)
    if not hits:
        console.print("no hits")


@app.command()
def collections(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """List collections: name, record count, dimension, metric and embedder."""
    with open_client() as vs:
        infos = vs.collections()
        store_name = vs.store.capabilities.name
    if as_json:
        typer.echo(json.dumps([
            {"name": i.name, "count": i.count, "dimension": i.dimension, "metric": i.metric,
             "embedder": i.metadata.get(FINGERPRINT_KEY)} for i in infos
        ]))
        return
    table = Table(title=f"collections in the {store_name} store", title_justify="left")
    for col in ("name", "count", "dimension", "metric", "embedder"):
        table.add_column(col)
    for i in infos:
        table.add_row(i.name, str(i.count), str(i.dimension), i.metric, i.metadata.get(FINGERPRINT_KEY, "-"))
    console.print(table)
