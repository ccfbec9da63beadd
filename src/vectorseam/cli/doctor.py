"""``vectorseam doctor``: check the embedded store's collections, recover a damaged one, upgrade old ones."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from vectorseam.cli import app
from vectorseam.cli.state import open_client

console = Console()


@app.command()
def doctor(
    collection: Annotated[str | None, typer.Argument(help="one collection (default: every collection)")] = None,
    recover: Annotated[bool, typer.Option(
        "--recover", help="rebuild a damaged collection from its intact records (the damaged file is kept)")] = False,
    upgrade: Annotated[bool, typer.Option(
        "--upgrade", help="convert collections written by releases before the SQLite store (done on first open too)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """Check the memory store's collections: SQLite's integrity check, every record against its checksum,
    the snapshots. Exits 1 when a collection is damaged (and was not recovered)."""
    with open_client() as vs:
        results = vs.doctor(collection, recover=recover, upgrade=upgrade)
    rows = []
    for health, recovery in results:
        row: dict[str, object] = {"collection": health.name, "ok": health.ok, "records": health.records,
                                  "problems": health.problems, "snapshots": health.snapshots}
        if recovery is not None:
            row["recovered"] = {
                "kept": recovery.kept, "restored_from_snapshot": len(recovery.from_snapshot),
                "damaged_records": recovery.damaged_rows, "lost": recovery.lost, "method": recovery.method,
                "damaged_copy": recovery.damaged_copy,
            }
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    elif not rows:
        console.print("no collections to check", highlight=False)
    for health, recovery in [] if as_json else results:
        status = "ok" if health.ok else "DAMAGED"
        console.print(Text(f"{health.name}: {status}, {health.records} records"), highlight=False)
        for problem in health.problems:
            console.print(Text(f"  - {problem}"), highlight=False, soft_wrap=True)
        for snap in health.snapshots:
            console.print(Text(f"  snapshot {snap}"), highlight=False, soft_wrap=True)
        if recovery is not None:
            lost = "unknown" if recovery.lost is None else str(recovery.lost)
            console.print(Text(
                f"  recovered ({recovery.method}): {recovery.kept} records kept, {len(recovery.from_snapshot)} "
                f"restored from the newest snapshot (as of that snapshot), {len(recovery.damaged_rows)} damaged, "
                f"{lost} lost; the damaged database is kept in {recovery.damaged_copy}"), highlight=False,
                soft_wrap=True)
        elif not health.ok:
            console.print(Text(f"  run `vectorseam doctor {health.name} --recover` to rebuild it from its intact "
                               "records (the damaged file is kept)"), highlight=False, soft_wrap=True)
    if any(not health.ok for health, _ in results):
        raise typer.Exit(1)
