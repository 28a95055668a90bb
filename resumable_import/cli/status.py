"""`rimport status`: every run as a table, or one in full, or either as JSON; and `rimport
cancel`, which stops the bulk operation a `--via` run handed off to."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer

from resumable_import import cancel_via, redacted, run_status, staging_of

from .app import app, guard
from .hints import ledger_check_command
from .options import LedgerOpt, RunIdArg
from .render import EXIT_ERROR, count, print_run, print_table, run_json, say


@app.command()
def status(
    run_id: Annotated[
        str | None, typer.Argument(metavar="RUN_ID", help="One run [default: all of them].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ledger: LedgerOpt = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            "--endpoint-url",
            metavar="URL",
            help="Only the runs that write to this endpoint (`aws`: AWS itself).",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            metavar="REGION",
            help="Only the runs that write to this region.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show what every run (or one) has done."""
    runs = guard(lambda: run_status(run_id, ledger=ledger, endpoint=endpoint, region=region))
    staged = guard(lambda: staging_of(runs[0].id, ledger=ledger)) if run_id else None
    if as_json:
        payload: Any = run_json(runs[0], ledger) if run_id else [r.as_dict() for r in runs]
        if staged:
            payload["via"] = {**asdict(staged[0]), "staged": [asdict(o) for o in staged[1]]}
        typer.echo(json.dumps(payload, indent=2))
    elif run_id:
        print_run(runs[0], ledger)
        if staged:
            _print_via(*staged)
    elif not runs and runs.hidden:
        typer.echo("no runs write there")
    elif not runs:
        typer.echo("no runs yet: `rimport start FILE --table T` begins one")
    else:
        print_table(runs)
    if runs.hidden and not as_json:
        where = " and ".join(x for x in (endpoint and redacted(endpoint), region) if x)
        say(f"({count(runs.hidden, 'run')} writing elsewhere than {where} not shown)")
    if runs.unreadable:
        say(f"error: the ledger is damaged: {count(len(runs.unreadable), 'run')} cannot be "
             f"read in full ({', '.join(runs.unreadable)})")  # fmt: skip
        say(f"hint: {ledger_check_command(ledger)} says more")
        raise typer.Exit(EXIT_ERROR)


def _print_via(op: Any, objects: list[Any]) -> None:
    """A `--via` run: where it staged, and the operation's ARN, state and counts."""
    items, size = sum(o.items for o in objects), sum(o.bytes for o in objects)
    for name, value in (
        ("via", op.via),
        ("staged", f"{len(objects)} of {op.objects} objects, {items:,} items, {size:,} bytes"),
        ("operation", "ImportTable" if op.operation == "import" else "StartBulkPutItems"),
        ("operation arn", op.arn or "- (not started)"),
        ("operation state", op.status or "-"),
        ("processed", f"{op.processed_items or 0:,} items, {op.processed_bytes or 0:,} bytes"),
        ("imported", f"{op.imported_items or 0:,} items, {op.error_count or 0:,} refused"),
        *([("operation failure", f"{op.failure_code}: {op.failure_message}")]
          if op.failure_code or op.failure_message else []),
    ):  # fmt: skip
        typer.echo(f"{name + ':':<17}{value}")


@app.command()
def cancel(run_id: RunIdArg, ledger: LedgerOpt = None) -> None:
    """Cancel the StartBulkPutItems a `--via` run handed off to; what it wrote stays."""
    op = guard(lambda: cancel_via(run_id, ledger=ledger))
    typer.echo(f"{op.arn}: {op.status}; {op.imported_items or 0:,} items written before")
