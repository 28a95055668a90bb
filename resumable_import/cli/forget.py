"""Looking after the ledger: `forget` removes runs and their dead letters, `ledger check`
says whether the file is damaged and which runs can still be read."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from resumable_import import Forgotten, UsageError, check_ledger, finished_runs, forget_runs

from .app import App, app, guard
from .hints import spelled
from .options import LedgerOpt
from .render import EXIT_ERROR, count, say


@app.command()
def forget(
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="RUN_ID",
            help="The runs (any unique prefix of each id).",
            show_default=False,
        ),
    ] = None,
    completed: Annotated[
        bool, typer.Option("--completed", help="Every run that completed without dead letters.")
    ] = False,
    with_failures: Annotated[
        bool,
        typer.Option(
            "--with-failures",
            help="With --completed: also those that completed with dead letters, which go too.",
        ),
    ] = False,
    older_than: Annotated[
        str | None,
        typer.Option(
            metavar="AGE",
            help="With --completed: only those finished more than AGE ago (30d, 12h, 90m).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say which runs would be forgotten.")
    ] = False,
    ledger: LedgerOpt = None,
) -> None:
    """Remove runs and their dead letters from the ledger; never one that is running.

    Once a folder's runs are forgotten, `start` on that folder imports their files again.
    """

    def work() -> list[Forgotten]:
        if bool(run_ids) == completed:
            raise UsageError("name the runs to forget, or pass --completed (not both)",
                             "`rimport forget --completed --older-than 30d` forgets "
                             "the runs that completed 30 days ago or more")  # fmt: skip
        if not completed and (with_failures or older_than):
            raise UsageError("--with-failures and --older-than go with --completed")
        ids = run_ids or []
        if completed:
            age = parse_age(older_than) if older_than else None
            runs = finished_runs(older_than=age, with_failures=with_failures, ledger=ledger)
            ids = [r.id for r in runs]
        return forget_runs(ids, ledger=ledger, dry_run=dry_run)

    done = guard(work)
    verb = "would forget" if dry_run else "forgot"
    dead = 0
    for f in done:
        r = f.run
        if f.error is not None:
            say(f"error: {spelled(f.error.message)}; it is not forgotten")
            continue
        dead += f.dead_letters
        letters = f", with its {count(f.dead_letters, 'dead letter')}" if f.dead_letters else ""
        say(f"{verb} run {r.id}: {r.state}, {Path(r.file).name} -> {r.table}, started "
             f"{r.started_at}{letters}")  # fmt: skip
    if not done:
        say("no run to forget" + (" (none finished that long ago)" if older_than else ""))
    else:
        n = sum(1 for f in done if f.error is None)
        say(f"{verb} {count(n, 'run')} and {count(dead, 'pending dead letter')}")
    if any(f.error for f in done):
        raise typer.Exit(EXIT_ERROR)


ledger_app = App(no_args_is_help=True, help="Look after the ledger itself.", rich_markup_mode=None)


app.add_typer(ledger_app, name="ledger")


@ledger_app.command("check")
def ledger_check(ledger: LedgerOpt = None) -> None:
    """Check the ledger file for damage, and say which runs can still be read.

    Exits 0 when it is sound, 1 when it is damaged.
    """
    health = guard(lambda: check_ledger(ledger))
    if not health.problems and not health.unreadable:
        typer.echo(f"{health.path}: sound, {count(len(health.runs), 'run')}")
        return
    typer.echo(f"{health.path}: damaged")
    for problem in health.problems[:10]:
        typer.echo(f"  {problem}")
    typer.echo(f"runs that can be read: {len(health.runs)}"
               + (f" ({', '.join(r.id for r in health.runs)})" if health.runs else ""))  # fmt: skip
    if health.unreadable:
        typer.echo(f"runs that cannot be read: {', '.join(health.unreadable)}")
    say(
        "hint: start new runs in another file with --ledger PATH; `sqlite3 LEDGER .recover` "
        "may save more of this one (keep a copy first)"
    )
    raise typer.Exit(EXIT_ERROR)


_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`: the command's way to write an age; the library takes a timedelta."""
    m = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if not m:
        raise UsageError(f"{text!r} is not an age", "write it as 30d, 12h or 90m")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
