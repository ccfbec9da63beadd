"""Retrieval commands: recommend, ask, and ``eval beir``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vectorseam.cli import app
from vectorseam.cli.state import CollectionOption, hit_dict, open_client, parse_filter_option, print_hits
from vectorseam.errors import ValidationError
from vectorseam.keywords import DEFAULT_RRF_K
from vectorseam.query import MODES, STRATEGIES, Answer

console = Console()
eval_app = typer.Typer(no_args_is_help=True, help="Measure retrieval quality on benchmark data sets.")
app.add_typer(eval_app, name="eval")

ModeOption = Annotated[str, typer.Option("--mode", help=f"retrieval mode: {' | '.join(MODES)}")]


@app.command()
def recommend(
    ids: Annotated[list[str], typer.Argument(help="ids of records to find more like")],
    negative: Annotated[list[str] | None, typer.Option("--negative", help="id of a record to steer away from (repeatable)")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="how many recommendations")] = 5,
    strategy: Annotated[str, typer.Option(help=f"{' | '.join(STRATEGIES)}")] = "average_vector",
    collection: CollectionOption = None,
    filter: Annotated[str | None, typer.Option("--filter", help="metadata filter as JSON")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """Records most like the given ones (and unlike --negative ones), excluding them and identical texts."""
    f = parse_filter_option(filter)
    with open_client() as vs:
        hits = vs.recommend(ids, negative or [], k=k, filter=f, strategy=strategy, collection=collection)
    if as_json:
        typer.echo(json.dumps([hit_dict(h) for h in hits], ensure_ascii=False))
        return
    title = "like " + ", ".join(ids) + (f"; unlike {', '.join(negative)}" if negative else "")
    print_hits(console, title, hits, empty="no recommendations")


def _print_sources(answer: Answer) -> None:
    cited = {p.number for p in answer.citations}
    console.print("\n[bold]Sources[/]")
    for p in answer.passages:
        mark = "*" if p.number in cited else " "
        snippet = p.text if len(p.text) <= 100 else p.text[:97] + "..."
        console.print(f" {mark} [{p.number}] {p.id}: {snippet}", highlight=False, markup=False)
    if answer.unknown_citations:
        console.print(f"warning: the answer cites passage(s) {answer.unknown_citations} that were not given",
                      style="yellow")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="passages to retrieve")] = 5,
    budget: Annotated[int, typer.Option(min=200, max=200_000, help="token budget for question + passages")] = 1500,
    mode: ModeOption = "dense",
    collection: CollectionOption = None,
    filter: Annotated[str | None, typer.Option("--filter", help="metadata filter as JSON")] = None,
    stream: Annotated[bool, typer.Option(help="print the answer as the model writes it")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines (no streaming)")] = False,
) -> None:
    """Answer QUESTION from the collection, citing the passages used as [1], [2]...

    With no LLM configured (llm.model / llm.base_url), the answer is extracted from the passages.
    """
    f = parse_filter_option(filter)
    with open_client() as vs:
        if as_json or not stream:
            answer = vs.ask(question, k=k, budget=budget, mode=mode, filter=f, collection=collection)
            if not as_json:
                console.print(answer.text, highlight=False, markup=False)
        else:
            answer_stream = vs.ask_stream(question, k=k, budget=budget, mode=mode, filter=f, collection=collection)
            for chunk in answer_stream:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            sys.stdout.write("\n")
            assert answer_stream.answer is not None
            answer = answer_stream.answer
    if as_json:
        typer.echo(json.dumps({
            "question": answer.question, "answer": answer.text, "extractive": answer.extractive,
            "abstained": answer.abstained,
            "citations": [{"n": p.number, "id": p.id} for p in answer.citations],
            "unknown_citations": answer.unknown_citations,
            "passages": [{"n": p.number, "id": p.id, "score": p.score, "text": p.text} for p in answer.passages],
        }, ensure_ascii=False))
        return
    _print_sources(answer)


@eval_app.command("beir")
def beir(
    directory: Annotated[Path, typer.Argument(help="BEIR data set folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv")],
    split: Annotated[str, typer.Option(help="which qrels/SPLIT.tsv to score against")] = "test",
    mode: Annotated[list[str] | None, typer.Option("--mode", help="dense | bm25 | hybrid (repeatable; default all)")] = None,
    collection: Annotated[str | None, typer.Option("--collection", help="where the corpus is embedded (default beir-NAME)")] = None,
    rrf_k: Annotated[float, typer.Option(help="the Reciprocal Rank Fusion constant")] = DEFAULT_RRF_K,
    output: Annotated[Path | None, typer.Option(help="write the results as JSON here (default: DIR-SPLIT-eval.json)")] = None,
    no_profile: Annotated[bool, typer.Option("--no-profile", help="ignore the collection's tuned profile (vectorseam tune)")] = False,
) -> None:
    """nDCG@10, recall@100 and MRR@10 of each search mode on a BEIR-format data set."""
    modes = tuple(mode or MODES)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValidationError(f"unknown --mode {bad[0]!r}; use {', '.join(MODES)}")
    with open_client() as vs, console.status(f"evaluating {directory} ({split})..."):
        report = vs.evaluate_beir(directory, split, modes, collection, rrf_k, profile=not no_profile)
    target = output or Path(f"{directory.name}-{split}-eval.json")
    target.write_text(report.to_json() + "\n", encoding="utf-8")
    console.print(report.to_markdown(), highlight=False, markup=False)
    console.print(f"results written to {target}")
