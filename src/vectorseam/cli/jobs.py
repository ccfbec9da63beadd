"""Load-job commands: the ingest runner (the ``ingest`` command in core.py delegates here), reindex,
migrate and alias."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import vectorseam.client as facade
from vectorseam.cli import app
from vectorseam.cli.state import open_client
from vectorseam.client import IngestReport, MigrationReport, ReindexReport
from vectorseam.durable import private_dir
from vectorseam.errors import ValidationError, VectorseamError
from vectorseam.ingest_options import IngestOptions

console = Console()
err_console = Console(stderr=True)


def _bar(disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err_console, transient=False, disable=disable,
    )


def run_ingest(source: Path, collection: str | None, rows: tuple[str | None, str, str | None, str | None],
               options: IngestOptions, show_progress: bool) -> None:
    """The ``ingest`` command's work: ``rows`` are its id field, text field, text template and comma-separated
    metadata fields; ``options`` what it was told (the rejects file defaults to the data directory's)."""
    id_field, text_field, text_template, metadata_fields = rows
    fields = [f.strip() for f in metadata_fields.split(",") if f.strip()] if metadata_fields else None
    with open_client() as vs:
        name = vs.resolve(collection)
        default_rejects = options.rejects_path is None
        opts = options if not default_rejects else replace(options, rejects_path=vs.data_dir.rejects(name))
        assert opts.rejects_path is not None
        private_dir(opts.rejects_path.parent)
        # the source and the collection are checked before the bar is drawn: a missing file is one line
        prepared = vs.prepare_ingest(source, name, id_field, text_field, text_template, fields, opts)
        with _bar(disable=not show_progress) as bar:
            task = bar.add_task(escape(f"ingest {source.name} -> {name}"), total=None, rate="")

            def progress(report: IngestReport) -> None:
                elapsed = bar.tasks[task].elapsed or 0.0
                rate = f"{report.processed / elapsed:.0f} rec/s" if elapsed > 0 else ""
                if report.rejected:
                    rate += f", {report.rejected} rejected"
                bar.update(task, total=report.expected, completed=report.processed, rate=rate)

            report = prepared.run(progress if show_progress else None)
    _print_ingest(report, name)
    if report.rejected or (report.duplicates and opts.duplicates == "drop"):
        console.print(f"rejects{' and dropped duplicates' if opts.duplicates == 'drop' else ''} written to "
                      f"{opts.rejects_path}", highlight=False, markup=False)
    elif default_rejects:
        opts.rejects_path.unlink(missing_ok=True)
    if report.nothing_accepted:  # a misnamed field or the wrong file: a failure, not an empty success
        raise ValidationError(f"nothing was written: every one of the {report.rejected} rows of {source} was "
                              "rejected (the first reasons are above); fix the rows, or --text-field, --id-field "
                              "or --text-template")


def _print_ingest(report: IngestReport, name: str) -> None:
    """What the run did, the first rejects and duplicates."""
    console.print(f"written {report.written}, rejected {report.rejected} into collection {name!r}: "
                  f"{report.summary()} ({report.chunks_written} records written, {report.chunks_deleted} "
                  f"deleted; {report.embedded} texts embedded, {report.cached} from the cache; "
                  f"{report.seconds:.1f}s)", highlight=False, soft_wrap=True)
    for reject in report.rejects[:10]:
        console.print(f"  rejected {reject}", highlight=False, markup=False)
    if report.rejected > 10:
        console.print(f"  ... and {report.rejected - 10} more")
    for note in report.duplicate_notes[:10]:
        console.print(f"  {note}", highlight=False, markup=False)
    if report.duplicates > 10:
        console.print(f"  ... and {report.duplicates - 10} more duplicates")


@app.command()
def reindex(
    collection: Annotated[str, typer.Argument(help="the collection (or alias) to re-embed")],
    embedder: Annotated[str, typer.Option("--embedder", help="the new embedder: 'local' or 'openai'")],
    model: Annotated[str | None, typer.Option(help="the new embedder's model")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint of the new embedder")] = None,
    dimension: Annotated[int | None, typer.Option(help="vector length, for models the client does not know")] = None,
    into: Annotated[str | None, typer.Option(help="name of the new collection (default: COLLECTION__<hash>)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096)] = 64,
) -> None:
    """Re-embed COLLECTION with another embedder into a new collection; switch the alias COLLECTION to it
    only when it is complete (searches keep using the old one until then)."""
    with open_client() as vs, _bar() as bar:
        task = bar.add_task(f"reindex {collection}", total=None, rate="")

        def progress(report: ReindexReport) -> None:
            bar.update(task, total=report.total, completed=report.written + report.skipped)

        report, fingerprint = vs.reindex(collection, embedder, model, base_url, dimension, into, batch_size,
                                         progress=progress)
    console.print(
        f"re-embedded {report.written} records of {report.source!r} into {report.target!r} with "
        f"{fingerprint} ({report.skipped} already there, {report.cached} from the cache); alias "
        f"{report.alias!r} -> {report.target!r}. Configure that embedder to search it; drop "
        f"{report.source!r} when no longer needed", highlight=False,
    )


@app.command()
def migrate(
    collection: Annotated[str, typer.Argument(help="the collection to copy")],
    from_config: Annotated[Path, typer.Option("--from", help="vectorseam.toml of the source store")],
    to_config: Annotated[Path, typer.Option("--to", help="vectorseam.toml of the target store")],
    to_collection: Annotated[str | None, typer.Option(help="name in the target (default: the same)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10000)] = 500,
    sample: Annotated[int, typer.Option(min=0, help="records compared field by field at the end")] = 200,
) -> None:
    """Copy COLLECTION (ids, vectors, text, metadata) between two stores; resumable, verified at the end."""
    with _bar() as bar:
        task = bar.add_task(f"migrate {collection}", total=None, rate="")

        def progress(report: MigrationReport) -> None:
            bar.update(task, total=report.source_count, completed=report.copied + report.resumed_from)

        report = facade.migrate(collection, from_config, to_config, to_collection, batch_size, sample, progress)
    resumed = f" (resumed after {report.resumed_from})" if report.resumed_from else ""
    console.print(f"copied {report.copied} records{resumed}: source {report.source_count}, target "
                  f"{report.target_count}; {report.sampled} sampled records compared", highlight=False)
    if not report.verified:
        for problem in report.mismatches[:20]:
            err_console.print(f"  mismatch: {problem}", highlight=False, markup=False)
        raise VectorseamError(f"the migration of {collection!r} did not verify ({len(report.mismatches)} "
                              "problems above); the target may hold other records, or the source changed")
    console.print("verified", style="bold green")


alias_app = typer.Typer(help="Collection aliases (a name that points at a collection; reindex switches them).",
                        no_args_is_help=True)
app.add_typer(alias_app, name="alias")


@alias_app.command("set")
def alias_set(
    alias: Annotated[str, typer.Argument()],
    collection: Annotated[str, typer.Argument()],
) -> None:
    """Point ALIAS at COLLECTION."""
    with open_client() as vs:
        vs.set_alias(alias, collection)
    console.print(f"{alias} -> {collection}")


@alias_app.command("list")
def alias_list() -> None:
    """Every alias of the configured store."""
    with open_client() as vs:
        for alias, target in sorted(vs.aliases.all().items()):
            console.print(f"{alias} -> {target}", highlight=False)


@alias_app.command("remove")
def alias_remove(alias: Annotated[str, typer.Argument()]) -> None:
    """Remove ALIAS (the collection it points at is kept)."""
    with open_client() as vs:
        if not vs.aliases.remove(alias):
            raise ValidationError(f"there is no alias {alias!r}")
    console.print(f"removed alias {alias}")
