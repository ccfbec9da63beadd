"""Tuning commands: ``tune`` learns a collection's retrieval profile from judged queries; ``profile``
shows or removes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vectorseam.cli import app
from vectorseam.cli.state import CollectionOption, open_client
from vectorseam.tune_options import FinetuneOptions, TuneOptions

console = Console()
err_console = Console(stderr=True)
profile_app = typer.Typer(no_args_is_help=True, help="Show or remove a collection's tuned retrieval profile.")
app.add_typer(profile_app, name="profile")


@app.command()
# long: a typer command declares each command-line option as a parameter
def tune(
    directory: Annotated[Path, typer.Argument(help="BEIR data set folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv")],
    split: Annotated[str, typer.Option(help="the judgements to tune on (qrels/SPLIT.tsv); never evaluate on it")] = "train",
    collection: Annotated[str | None, typer.Option("--collection", help="where the corpus is embedded (default beir-NAME, as eval beir)")] = None,
    folds: Annotated[int, typer.Option(min=2, max=20, help="cross-validation folds over the judged queries")] = 5,
    seed: Annotated[int, typer.Option(help="seed of the folds and of adapter training")] = 0,
    folds_by: Annotated[str, typer.Option(help="'queries': any judged query may be held out; 'documents': queries sharing a relevant document are held out together (choose for queries about new documents)")] = "queries",
    adapter: Annotated[bool, typer.Option(help="try a query-side linear adapter")] = True,
    mmr: Annotated[bool, typer.Option(help="try MMR re-ranking")] = True,
    feedback: Annotated[bool, typer.Option(help="try pseudo-relevance feedback (the query moved towards its top results)")] = True,
    ranker: Annotated[bool, typer.Option(help="try a learned ranker (linear or LambdaMART) over every score")] = True,
    finetune: Annotated[bool, typer.Option("--finetune", help="fine-tune the local model on the judgements instead, then re-embed the collection with it behind its alias (tune again once it is configured)")] = False,
    epochs: Annotated[int, typer.Option(min=1, max=50, help="--finetune: epochs at most (early-stopped)")] = 4,
    save: Annotated[bool, typer.Option(help="save the profile with the collection (--no-save: report only)")] = True,
    output: Annotated[Path | None, typer.Option(help="write the report as JSON here (default: DIR-SPLIT-tune.json)")] = None,
) -> None:
    """Learn how to search a collection from judged queries, by cross-validation over them.

    Tries tuned fusion (RRF or normalised-score fusion, weights, depth), a query adapter and MMR; keeps
    what raised nDCG@10 on held-out folds, reports each step's gain with a 95% interval (also on folds
    that hold out whole documents), and saves the profile so that search and eval use it (turn off
    with --no-profile).
    """
    if folds_by not in ("queries", "documents"):
        raise typer.BadParameter(f"--folds-by must be 'queries' or 'documents', got {folds_by!r}")
    if finetune:
        _finetune(directory, split, collection, seed, epochs)
        return
    with open_client() as vs:
        options = TuneOptions(folds=folds, seed=seed, adapter=adapter, mmr=mmr, feedback=feedback, ranker=ranker,
                              group_by_documents=folds_by == "documents")
        _, report = vs.tune_beir(directory, split, collection, save=save, say=_say, progress=_progress,
                                 options=options)
    target = output or Path(f"{directory.name}-{split}-tune.json")
    target.write_text(report.to_json() + "\n", encoding="utf-8")
    console.print(report.to_markdown(), highlight=False, markup=False)
    console.print(f"report written to {target}", highlight=False, markup=False)


def _finetune(directory: Path, split: str, collection: str | None, seed: int, epochs: int) -> None:
    with open_client() as vs:
        report, reindexed = vs.finetune_beir(directory, split, collection, say=_say, progress=_progress,
                                             options=FinetuneOptions(seed=seed, epochs=epochs))
    held = ", ".join(f"{x:.4f}" for x in report.held_out)
    console.print(f"fine-tuned on {report.pairs} (query, document) pairs in {report.seconds:.0f} s; held-out "
                  f"nDCG@10 by epoch (0: the base model): {held}", highlight=False, markup=False)
    if not report.path:
        console.print("no epoch beat the base model on the held-out queries: nothing written, nothing reindexed",
                      highlight=False, markup=False)
        return
    console.print(f"model written to {report.path} (fingerprint local:finetuned/{report.name}:...)",
                  highlight=False, markup=False)
    if reindexed is not None:
        console.print(f"re-embedded {reindexed.total} records into {reindexed.target!r}; alias {reindexed.alias!r} "
                      f"-> {reindexed.target!r} ({reindexed.source!r} is kept until you drop it)",
                      highlight=False, markup=False)
        if reindexed.profile:
            console.print(reindexed.profile, highlight=False, markup=False)
    console.print(f"search with it: set embedder.model = \"{report.path}\" (VECTORSEAM_EMBEDDER__MODEL), then "
                  "`vectorseam tune` again to tune the profile for the new model", highlight=False, markup=False)


def _say(message: str) -> None:
    err_console.print(message, highlight=False, markup=False)


def _progress(done: int, total: int) -> None:
    if done == total or done % 640 == 0:
        _say(f"embedded {done}/{total} documents")


@profile_app.command("show")
def show(
    collection: CollectionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the tuning report as JSON")] = False,
) -> None:
    """The collection's profile and the cross-validated report that chose it."""
    with open_client() as vs:
        profile = vs.profile(collection)
        name = vs.resolve(collection)
        where = vs.profiles.where
    if profile is None:
        console.print(f"collection {name!r} has no tuned profile; make one with `vectorseam tune`",
                      highlight=False, markup=False)
        return
    if as_json:
        typer.echo(json.dumps({"profile": profile.describe(), "embedder": profile.embedder, "corpus": profile.corpus,
                               "report": profile.report}, ensure_ascii=False))
        return
    console.print(f"{name}: {profile.describe()}", highlight=False, markup=False)
    console.print(f"embedder {profile.embedder}, corpus {profile.corpus} (kept {where})",
                  highlight=False, markup=False)
    stages = profile.report.get("stages") or []
    for stage in stages:
        low, high = stage["ci95"]
        console.print(f"  {stage['name']}: nDCG@10 {stage['ndcg']:.4f} ({stage['gain']:+.4f}, 95% CI "
                      f"[{low:+.4f}, {high:+.4f}]) {'kept' if stage['kept'] else 'dropped'}",
                      highlight=False, markup=False)
    for warning in profile.report.get("warnings") or []:
        console.print(f"  WARNING: {warning}", highlight=False, markup=False)


@profile_app.command("remove")
def remove(collection: CollectionOption = None) -> None:
    """Forget the collection's profile: search and eval go back to the untuned defaults."""
    with open_client() as vs:
        removed = vs.remove_profile(collection)
        name = vs.resolve(collection)
    console.print(f"removed the profile of {name!r}" if removed else f"{name!r} has no profile",
                  highlight=False, markup=False)
