"""Core commands: ingest, search, collections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vectorseam.cli import app
from vectorseam.cli.state import (
    CollectionOption,
    hit_dict,
    open_client,
    parse_filter_option,
    print_hits,
    set_config_file,
)
from vectorseam.embedding import FINGERPRINT_KEY
from vectorseam.ingest_options import IngestOptions
from vectorseam.retrying import RetryPolicy

console = Console()


@app.callback()
def _global(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="path to a vectorseam.toml")] = None,
) -> None:
    set_config_file(config)


@app.command()
# long: a typer command declares each command-line option as a parameter
def ingest(
    source: Annotated[Path, typer.Argument(
        help="a .csv, .tsv, .jsonl or .parquet file, or a directory of .txt/.md/.html/.pdf files")],
    collection: Annotated[str | None, typer.Option("--collection", help="target collection (or alias)")] = None,
    id_field: Annotated[str | None, typer.Option(help="field holding the record id (default: 'id', else the row number)")] = None,
    text_field: Annotated[str, typer.Option(help="field holding the text to embed")] = "text",
    text_template: Annotated[str | None, typer.Option(help="build the text from fields, e.g. 'Title: {Summary}; Content: {Text}'")] = None,
    metadata_fields: Annotated[str | None, typer.Option(help="comma-separated fields kept as metadata (default: all others)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096)] = 64,
    strict: Annotated[bool, typer.Option(help="stop at the first bad row instead of reporting it and going on")] = False,
    rejects_file: Annotated[Path | None, typer.Option(help="where bad rows go (file:line and reason); default: under the data directory")] = None,
    cleanup: Annotated[str, typer.Option(help="'full': also delete records whose source row or file vanished")] = "none",
    verify: Annotated[bool, typer.Option(help="reconcile the store with the record manager record by record")] = False,
    chunk_tokens: Annotated[int | None, typer.Option(help="tokens per chunk (default: the embedder's limit; 0: never split)")] = None,
    chunk_overlap: Annotated[int, typer.Option(help="tokens shared by neighbouring chunks")] = 32,
    embed_cache: Annotated[Path | None, typer.Option(help="embedding cache file (default: under the data directory)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="embed every text again, ignoring the cache")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    checkpoint_seconds: Annotated[float | None, typer.Option(hidden=True, help="seconds between durable checkpoints")] = None,
    retries: Annotated[int, typer.Option(min=1, max=100, help="attempts per store call before giving up")] = 6,
    retry_backoff: Annotated[float, typer.Option(hidden=True, help="first retry delay in seconds")] = 0.5,
    duplicates: Annotated[str, typer.Option(help="'tag' (metadata duplicate_of) or 'drop' (into the rejects file) near-duplicates of the collection and of earlier rows")] = "off",
    duplicate_threshold: Annotated[float, typer.Option(help="cosine similarity from which a record is a duplicate")] = 0.98,
    engine: Annotated[str | None, typer.Option(help="'local' (this process) or 'ray' (a Ray cluster; SOURCE may then be a glob); default: [ingest] engine")] = None,
    ray_address: Annotated[str | None, typer.Option(help="the Ray cluster: 'auto' or 'ray://HOST:PORT' (default: [ingest] ray_address, else a local cluster)")] = None,
    allow_empty_source: Annotated[bool, typer.Option("--allow-empty-source", help="let --cleanup full delete every record of a source that now yields no documents (refused otherwise: an unmounted volume looks the same)")] = False,
) -> None:
    """Embed SOURCE into a collection: incremental (unchanged records are skipped), resumable, safe to kill."""
    from vectorseam.cli.jobs import run_ingest

    options = IngestOptions(
        batch_size=batch_size, strict=strict, cleanup=cleanup, verify=verify,  # type: ignore[arg-type]
        chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, checkpoint_seconds=checkpoint_seconds,
        retry=RetryPolicy(attempts=retries, backoff=retry_backoff), rejects_path=rejects_file,
        duplicates=duplicates, duplicate_threshold=duplicate_threshold,  # type: ignore[arg-type]
        allow_empty_source=allow_empty_source, use_cache=not no_cache, embed_cache=embed_cache,
        engine=engine, ray_address=ray_address)  # type: ignore[arg-type]
    run_ingest(source, collection, (id_field, text_field, text_template, metadata_fields), options, progress)


@app.command()
def search(
    queries: Annotated[list[str], typer.Argument(help="what to search for (several queries: one table each)")],
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="how many hits")] = 5,
    collection: CollectionOption = None,
    filter: Annotated[str | None, typer.Option("--filter", help='metadata filter as JSON, e.g. \'{"Score": {"$gte": 4}}\'')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
    mode: Annotated[str, typer.Option("--mode", help="dense | bm25 | hybrid (dense and BM25 fused by RRF)")] = "dense",
    mmr: Annotated[float | None, typer.Option("--mmr", min=0.0, max=1.0, help="re-rank for diversity (MMR lambda; 1 = relevance only)")] = None,
    no_profile: Annotated[bool, typer.Option("--no-profile", help="ignore the collection's tuned profile (vectorseam tune)")] = False,
) -> None:
    """Semantic search: the k records most similar in meaning to each QUERY."""
    f = parse_filter_option(filter)
    with open_client() as vs:
        results = vs.search_many(queries, k=k, filter=f, collection=collection, mode=mode, mmr=mmr,
                                   profile=not no_profile)
    if as_json:
        payload = [{"query": q, "hits": [hit_dict(h) for h in hits]} for q, hits in zip(queries, results, strict=True)]
        typer.echo(json.dumps(payload[0]["hits"] if len(queries) == 1 else payload, ensure_ascii=False))
        return
    for query, hits in zip(queries, results, strict=True):
        print_hits(console, repr(query), hits)


@app.command()
def collections(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """List collections: name, record count, dimension, metric and embedder."""
    with open_client() as vs:
        infos = vs.collections()
        caps = vs.store.capabilities
    if as_json:
        typer.echo(json.dumps([
            {"name": i.name, "count": i.count, "dimension": i.dimension, "metric": i.metric,
             "embedder": i.metadata.get(FINGERPRINT_KEY)} for i in infos
        ]))
        return
    if not infos:
        where = f" under {vs.data_dir.root}" if caps.name == "memory" else ""
        console.print(f"no collections in the {caps.name} store{where} yet; create one with "
                      "`vectorseam ingest FILE --collection NAME`", highlight=False, markup=False, soft_wrap=True)
        return
    kept = "persistent" if caps.persistent else "in memory only"
    keywords = "keyword search in the store" if caps.native_keywords else "keyword search from the BM25 sidecar"
    table = Table(title=f"collections in the {caps.name} store", title_justify="left",
                  caption="; ".join((kept, keywords, *caps.notes)), caption_justify="left")
    for col in ("name", "count", "dimension", "metric", "embedder"):
        table.add_column(col)
    for i in infos:
        table.add_row(i.name, str(i.count), str(i.dimension), i.metric, i.metadata.get(FINGERPRINT_KEY, "-"))
    console.print(table)
