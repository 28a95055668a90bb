"""The commands about the items DynamoDB refused: `retry-failed` writes them again,
`dead-letters` writes them out to a file to fix and import again."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from resumable_import import (
    ExportResult,
    ImportResult,
    Ledger,
    Run,
    dead_letter_counts,
    export_run,
    fix_commands,
    retry_failed,
    run_status,
    sidecar_path,
)

from .app import app, guard
from .hints import command, spelled
from .options import LedgerOpt, ProfileOpt, RunEndpointOpt, RunIdArg, RunRegionOpt
from .render import EXIT_DEAD_LETTERS, count, say


@app.command("retry-failed")
def retry_failed_cmd(
    run_id: Annotated[
        str | None,
        typer.Argument(metavar="RUN_ID", help="The run [default: every run with retryable items]."),
    ] = None,
    ledger: LedgerOpt = None,
    endpoint: RunEndpointOpt = None,
    region: RunRegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Write a run's retryable dead letters again, with backoff; say what remains and why.

    Without RUN_ID, --endpoint and --region choose the runs that write there."""

    def work() -> list[ImportResult]:
        if run_id:
            ids = [run_id]
        else:
            runs = run_status(ledger=ledger, endpoint=endpoint, region=region)
            with Ledger(ledger) as book:
                ids = [r.id for r in runs
                       if book.dead_letters(r.id, retryable_only=True, limit=1)]  # fmt: skip
        results = []
        for rid in ids:
            before = dead_letter_counts(rid, ledger=ledger)
            moot = run_status(rid, ledger=ledger)[0].superseded_dead_letters
            result = retry_failed(rid, ledger=ledger, profile=profile, endpoint=endpoint,
                                  region=region)  # fmt: skip
            after = dead_letter_counts(rid, ledger=ledger)
            _said_retried(run_status(rid, ledger=ledger)[0], result, before, after,
                          result.superseded - moot)  # fmt: skip
            results.append(result)
        if not ids:
            say("no run has dead letters worth retrying")
        return results

    results = guard(work)
    if any(r.dead_letters for r in results):
        raise typer.Exit(EXIT_DEAD_LETTERS)


def _said_retried(
    run: Run,
    result: ImportResult,
    before: dict[str, Counter[str]],
    after: dict[str, Counter[str]],
    superseded: int = 0,
) -> None:
    """What a retry did, what remains by reason, and what to do about it. `superseded`:
    those it left out for a later one with the same key (written instead, or pending)."""
    total = sum(sum(c.values()) for c in before.values())
    remain = [(code, n, kind) for kind, c in after.items() for code, n in c.most_common()]
    listing = ", ".join(f"{n:,} {code} ({kind})" for code, n, kind in remain)
    if total and not sum(before["retryable"].values()):
        say(f"none of run {run.id}'s {count(total, 'dead letter')} can succeed by retrying: "
             f"{listing}")  # fmt: skip
    else:
        rest = f": {listing}" if listing else ""
        moot = f", {superseded:,} superseded by a later one with the same key" if superseded else ""
        say(f"run {run.id}: {total - result.dead_letters - superseded:,} of {total:,} dead "
             f"letters written{moot}, {result.dead_letters:,} remain{rest}")  # fmt: skip
    if after["retryable"]:
        say(f"{command(run, 'retry-failed', run.id)} tries the retryable ones again later")
    if after["not retryable"]:
        export, load = fix_commands(run)
        which = "the others" if after["retryable"] else "them"
        say(f"fix {which} with {spelled(export)}, then {spelled(load)}")


@app.command("dead-letters")
def dead_letters_cmd(
    run_id: RunIdArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", metavar="FILE", help="Write to FILE (created private) [default: stdout]."
        ),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="jsonl, json (an array), ddb-json (DynamoDB's typed JSON, one item a "
            "line) or request-items (a request file again, for a run that read one) "
            "[default: jsonl, ddb-json for a run that read DynamoDB JSON, request-items for "
            "one that read a request file].",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[
        list[str] | None,
        typer.Option(
            "--reason",
            metavar="REASON",
            help="Only those of this error code (as `rimport status RUN_ID` lists them), "
            "or `retryable` / `not-retryable`; may be repeated.",
            show_default=False,
        ),
    ] = None,
    with_reasons: Annotated[
        bool,
        typer.Option(
            "--with-reasons",
            help="Also write FILE.reasons.jsonl: each item's index in the dump, error and "
            "attempts, line for line.",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    ledger: LedgerOpt = None,
) -> None:
    """Write a run's pending dead letters as a dump to fix and import again with `start`.

    Items a format cannot hold as they were (binary or sets in plain JSON, items nested
    too deep to decode) are left out and counted; the exit code is then 3.
    """

    def work() -> ExportResult:
        return export_run(run_id, out if out is not None else sys.stdout, fmt=format,
                          reasons=reason, with_reasons=with_reasons, force=force,
                          ledger=ledger)  # fmt: skip

    result = guard(work)
    where = str(out) if out is not None else "stdout"
    run = result.run
    say(f"run {run.id}: {count(result.written, 'dead letter')} written to {where} "
         f"({result.format})")  # fmt: skip
    if with_reasons and out is not None:
        say(f"why each was refused: {sidecar_path(out)}")
    for why, n in result.left_out.most_common():
        say(f"left out {count(n, 'item')}: {why}")
    if out is not None and result.written:
        _, load = fix_commands(run, str(out), result.format)
        say(f"once fixed, import them with {spelled(load)}; then {command(run, 'forget', run.id)} "
             "drops the old run and its dead letters")  # fmt: skip
    if result.left_out:
        raise typer.Exit(EXIT_DEAD_LETTERS)
