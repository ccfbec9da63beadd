"""Analysis commands: cluster (with maps), dedup, classify, customize train/apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vectorseam.cli import app
from vectorseam.cli.state import open_client, parse_filter_option
from vectorseam.errors import ValidationError
from vectorseam.tune_options import TrainingOptions

console = Console()
customize_app = typer.Typer(no_args_is_help=True, help="Learn and apply a matrix that customizes embeddings.")
app.add_typer(customize_app, name="customize")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@app.command()
# long: a typer command declares each command-line option as a parameter
def cluster(
    collection: Annotated[str, typer.Argument(help="collection to cluster")],
    k: Annotated[int | None, typer.Option("-k", help="number of clusters (default: chosen by silhouette)")] = None,
    k_min: Annotated[int, typer.Option(help="smallest k tried when -k is not given")] = 2,
    k_max: Annotated[int, typer.Option(help="largest k tried when -k is not given")] = 10,
    map_prefix: Annotated[Path | None, typer.Option("--map", help="write PREFIX.png and PREFIX.html")] = None,
    projection: Annotated[str, typer.Option(help="map projection: tsne, pca or umap")] = "tsne",
    color_by: Annotated[str, typer.Option(help="colour map points by 'cluster' or a metadata field")] = "cluster",
    name: Annotated[bool, typer.Option("--name", help="name clusters with the configured chat model")] = False,
    assign_field: Annotated[str | None, typer.Option(help="also store each record's cluster in this metadata field")] = None,
    filter: Annotated[str | None, typer.Option("--filter", help="only records matching this JSON filter")] = None,
    seed: Annotated[int, typer.Option(help="random seed (k-means, projection)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """k-means clusters of a collection, described by distinctive terms and central members."""
    f = parse_filter_option(filter)
    with open_client() as vs:
        projection = vs.check_projection(projection)
        result = vs.cluster(collection, k=k, k_range=(k_min, k_max), filter=f, seed=seed, name=name,
                            assign_field=assign_field)
        paths: tuple[Path, Path] | None = None
        if map_prefix is not None:
            paths = vs.cluster_map(result, map_prefix, projection, color_by, seed)
    if as_json:
        payload = result.to_json()
        if paths:
            payload["map"] = {"png": str(paths[0]), "html": str(paths[1])}
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    how = "chosen by silhouette" if k is None else "given"
    sil = f", silhouette {result.silhouette:.3f}" if result.silhouette is not None else ""
    console.print(f"{len(result.labels)} records of {collection!r} in {result.k} clusters (k {how}{sil})")
    table = Table(show_lines=True)
    for col in ("#", "size", "name / distinctive terms", "most central members"):
        table.add_column(col, overflow="fold")
    for c in result.clusters:
        title = (f"[bold]{c.name}[/]\n" if c.name else "") + ", ".join(c.terms)
        table.add_row(str(c.index), str(c.size), title, "\n".join(f"• {_short(t)}" for t in c.central_texts))
    console.print(table)
    if assign_field:
        console.print(f"cluster numbers written to metadata field {assign_field!r}")
    if paths:
        console.print(f"map written to {paths[0]} and {paths[1]}")


@app.command()
def dedup(
    collection: Annotated[str, typer.Argument(help="collection to search for near-duplicates")],
    threshold: Annotated[float, typer.Option(help="cosine similarity at or above which two records are duplicates")] = 0.95,
    method: Annotated[str, typer.Option(help="exact (blockwise), approximate (store self-join) or auto")] = "auto",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write pairs to a .csv or .json file")] = None,
    filter: Annotated[str | None, typer.Option("--filter", help="only records matching this JSON filter")] = None,
    show: Annotated[int, typer.Option(help="how many groups to print")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print the full result as JSON")] = False,
) -> None:
    """Every pair of records at or above THRESHOLD, and the groups they form."""
    if method not in ("exact", "approximate", "auto"):
        raise ValidationError(f"--method must be exact, approximate or auto, got {method!r}")
    f = parse_filter_option(filter)
    with open_client() as vs:
        result = vs.dedup(collection, threshold, cast(Literal["exact", "approximate", "auto"], method), f)
    if output is not None:
        result.write(output)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    identical = sum(1 for p in result.pairs if result.texts.get(p.a) == result.texts.get(p.b))
    console.print(
        f"{result.records} records, {len(result.pairs)} pairs >= {threshold} ({identical} with identical text, "
        f"{len(result.pairs) - identical} near-identical), {len(result.groups)} groups, "
        f"{result.extra_records} records beyond one per group [{result.method}]"
    )
    for gi, group in enumerate(result.groups[:show]):
        console.print(f"[bold]group {gi}[/] ({len(group)} records): {escape(', '.join(group[:8]))}"
                      + (" ..." if len(group) > 8 else ""))
        console.print(f"  {_short(result.texts.get(group[0], ''))}", markup=False, highlight=False)
    near = [p for p in result.pairs if result.texts.get(p.a) != result.texts.get(p.b)]
    if near:
        console.print("[bold]near-identical pairs (different text)[/]")
        for p in near[:show]:
            console.print(f"  {p.score:.4f}  {p.a} <> {p.b}", markup=False)
            console.print(f"    a: {_short(result.texts.get(p.a, ''))}", markup=False, highlight=False)
            console.print(f"    b: {_short(result.texts.get(p.b, ''))}", markup=False, highlight=False)
    if output is not None:
        console.print(f"pairs written to {output}")


@app.command()
def classify(
    collection: Annotated[str, typer.Argument(help="collection to classify")],
    label: Annotated[list[str], typer.Option("--label", "-l", help='NAME="description" (or bare NAME); repeat')],
    write_field: Annotated[str | None, typer.Option(help="store each record's label in this metadata field")] = None,
    filter: Annotated[str | None, typer.Option("--filter", help="only records matching this JSON filter")] = None,
    show: Annotated[int, typer.Option(help="how many records to print")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print every record's label and scores as JSON")] = False,
) -> None:
    """Zero-shot: give each record the label whose description it is closest to."""
    f = parse_filter_option(filter)
    with open_client() as vs:
        result = vs.classify(collection, label, filter=f, write_field=write_field)
    if as_json:
        typer.echo(json.dumps({"counts": result.counts(), "records": result.rows()}, ensure_ascii=False))
        return
    console.print(", ".join(f"{name}: {n}" for name, n in result.counts().items()))
    table = Table()
    for col in ("id", "label", "text"):
        table.add_column(col, overflow="fold")
    for row in result.rows()[:show]:
        table.add_row(str(row["id"]), str(row["label"]), _short(str(row["text"]), 100))
    console.print(table)
    if write_field:
        console.print(f"labels written to metadata field {write_field!r}")


@customize_app.command("train")
# long: a typer command declares each command-line option as a parameter
def customize_train(
    pairs_file: Annotated[Path, typer.Argument(help="CSV/TSV/JSONL of text pairs with a +1/-1 label")],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the matrix (.npz)")] = Path(
        "custom_matrix.npz"),
    text1_col: Annotated[str, typer.Option(help="column of the first text")] = "text_1",
    text2_col: Annotated[str, typer.Option(help="column of the second text")] = "text_2",
    label_col: Annotated[str, typer.Option(help="column of the label")] = "label",
    positive: Annotated[str | None, typer.Option(help="label value meaning similar, e.g. entailment")] = None,
    negative: Annotated[list[str] | None, typer.Option(help="label value meaning dissimilar (repeat)")] = None,
    seed: Annotated[int, typer.Option(help="seed for split, negatives, initial matrix, batches")] = 123,
    test_fraction: Annotated[float, typer.Option(help="share of pairs held out for the test figures")] = 0.5,
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    learning_rate: Annotated[float, typer.Option(help="gradient step (identity init: ~0.01; random: ~100)")] = 0.01,
    init: Annotated[str, typer.Option(help="start from the 'identity' or a 'random' matrix (the Cookbook's)")] = (
        "identity"),
    batch_size: Annotated[int, typer.Option(min=1)] = 100,
    dropout: Annotated[float, typer.Option(min=0.0, max=0.99)] = 0.0,
    dimension: Annotated[int | None, typer.Option(help="output dimension (default: the embedder's)")] = None,
    report_file: Annotated[Path | None, typer.Option("--report", help="also write the report as JSON")] = None,
) -> None:
    """Learn a matrix from labelled pairs; test accuracy before/after, threshold chosen on train."""
    options = TrainingOptions(seed=seed, test_fraction=test_fraction, epochs=epochs, learning_rate=learning_rate,
                              batch_size=batch_size, dropout=dropout, dimension=dimension,
                              init="random" if init == "random" else "identity")
    if init not in ("identity", "random"):
        raise ValidationError(f"--init must be identity or random, got {init!r}")
    with open_client() as vs:
        pairs, skipped = vs.read_pairs(pairs_file, text1_col, text2_col, label_col, positive, negative or [])
        custom, report = vs.train_custom_matrix(pairs, options)
    custom.save(output)
    console.print(f"{len(pairs)} labelled pairs read" + (f" ({skipped} rows with other labels skipped)" if skipped else ""))
    console.print(f"train {report.train_pairs} pairs ({report.train_positives} positive), test {report.test_pairs} "
                  f"pairs ({report.test_positives} positive)"
                  + ("; negatives synthesized from unrelated pairs" if report.synthesized_negatives else ""))
    console.print(f"loss {report.losses[0]:.4f} -> {report.losses[-1]:.4f} over {report.epochs} epochs")
    if report.before_train_threshold and report.after_train_threshold:
        console.print(f"test accuracy before: {report.before_train_threshold}")
        console.print(f"test accuracy after:  {report.after_train_threshold}")
        console.print(f"(thresholds chosen on the training split; tuned on test as the Cookbook does: "
                      f"{report.before_test_tuned} -> {report.after_test_tuned})", highlight=False)
    console.print(f"matrix {custom.input_dimension}x{custom.output_dimension} written to {output} "
                  f"(fingerprint {custom.fingerprint})")
    if report_file is not None:
        report_file.write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")


@customize_app.command("apply")
def customize_apply(
    collection: Annotated[str, typer.Argument(help="collection whose vectors to transform")],
    matrix: Annotated[Path, typer.Option("--matrix", "-m", help="matrix written by `customize train`")],
    into: Annotated[str, typer.Option("--into", help="new collection to write the customized vectors to")],
) -> None:
    """Write COLLECTION's records, vectors mapped by the matrix, into a new collection."""
    with open_client() as vs:
        written, custom = vs.apply_custom_matrix(collection, matrix, into)
    console.print(f"{written} records written to {into!r} (embedder {custom.fingerprint})")
    console.print(f"to query it, set embedder.custom_matrix = {str(matrix)!r} "
                  f"(e.g. VECTORSEAM_EMBEDDER__CUSTOM_MATRIX={matrix})", markup=False, highlight=False)
