"""`verify`: the table read back and compared with the run's dump; exit 3 when they differ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from resumable_import import (
    Figures,
    Hooks,
    UsageError,
    VerifyOptions,
    VerifyResult,
    runs_of,
    verify_run,
)

from .app import app, flags, guard
from .meter import open_meter
from .options import LedgerOpt, ProfileOpt, ProgressOpt
from .render import EXIT_DEAD_LETTERS, count, say


@app.command("verify")
def verify_cmd(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN_ID|FOLDER",
            help="Runs (an id or a unique prefix of one), or a folder: the last run of each of "
            "its files.",
            show_default=False,
        ),
    ],
    ledger: LedgerOpt = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="PATH",
            help="For a run started on a stream: the same bytes again (`-` for standard input).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Each result as one JSON object on stdout.")
    ] = False,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            metavar="get|scan",
            help="get: BatchGetItem by the dump's keys (read units in proportion to the dump); "
            "scan: a parallel Scan (in proportion to the table) [default: the one that costs "
            "fewer read units; scan with --extra].",
            show_default=False,
        ),
    ] = None,
    extra: Annotated[
        bool,
        typer.Option("--extra", help="Also count the table's items that the dump does not hold."),
    ] = False,
    sample: Annotated[
        float | None,
        typer.Option(
            "--sample",
            metavar="FRACTION",
            help="Check only this share of the keys, drawn at random (0.01: 1%).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Read the dump and say how the table would be read, and the cost."
        ),
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Write the missing and different items again through the run's writer, "
            "then check them again.",
        ),
    ] = False,
    progress: ProgressOpt = "auto",
    profile: ProfileOpt = None,
) -> None:
    """Read a completed run's dump again as it read it, and the table back: say which
    items are missing and which attributes differ (values are never printed).

    Numbers compare by value (1.5 is 1.50), sets unordered, binary as bytes; the later of
    two elements with one key is the one expected; dead letters are expected missing.
    Exit 0 when the table holds the dump, 3 when it does not, 2 for bad input.
    """
    options = VerifyOptions(source=source, profile=profile, method=method, extra=extra,
                            sample=sample, dry_run=dry_run, repair=repair)  # fmt: skip
    ids = guard(lambda: runs_of(targets, ledger))
    if source is not None and len(ids) > 1:
        guard(lambda: _one_stream(ids))
    verify_each(ids, options, ledger, progress, as_json)


def verify_each(
    ids: list[str],
    options: VerifyOptions,
    ledger: Path | None,
    progress: str,
    as_json: bool = False,
) -> None:
    """Verify each run and show what it found, going on past a run that cannot be
    verified; exits with the worst code of them (2 bad input, 3 a table not as its dump)."""
    worst = 0
    for run_id in ids:
        try:
            result = guard(lambda r=run_id: _verify(r, options, ledger, progress))
        except typer.Exit as e:  # said already; the other runs are verified all the same
            if e.exit_code >= 128:  # but not past Ctrl-C or a signal
                raise
            worst = max(worst, e.exit_code)
            continue
        _show(result, as_json)
        if not result.ok:
            worst = max(worst, EXIT_DEAD_LETTERS)
    if worst:
        raise typer.Exit(worst)


def _verify(
    run_id: str, options: VerifyOptions, ledger: Path | None, progress: str
) -> VerifyResult:
    with open_meter(progress, quiet=flags.quiet, verbose=flags.verbose) as bar:
        bar.run_id = run_id
        total: list[int | None] = [-1]

        def phase(figures: Figures) -> None:  # the dump's bytes, then the table's items
            if figures.bytes_total != total[0]:
                total[0] = figures.bytes_total
                bar.begin(figures.bytes_total)
            bar(figures)

        return verify_run(run_id, options, Hooks(on_progress=phase, notice=bar.note),
                          ledger=ledger)  # fmt: skip


def _one_stream(ids: list[str]) -> None:
    raise UsageError(
        f"--from gives the bytes of one stream, and {len(ids)} runs are named",
        "verify the run read from a stream on its own",
    )


def _show(result: VerifyResult, as_json: bool) -> None:
    if result.dry_run:  # the plan, said already, is all
        if as_json:
            typer.echo(json.dumps(result.as_dict()))
        return
    say(summary(result))
    for d in result.differences:
        key = ", ".join(f"{name}={_part(value)}" for name, value in d.key.items())
        what = "missing" if d.attributes is None else "differs in " + ", ".join(d.attributes)
        if d.not_deleted:
            what = "still in the table, though the file deletes it"
        say(f"  item {d.index:,} ({key}): {what}")
    shown = len(result.differences)
    if shown < result.missing + result.different:
        say(f"  ... and {count(result.missing + result.different - shown, 'more item')}")
    if result.extra is not None:
        keys = "; ".join(", ".join(f"{n}={_part(v)}" for n, v in k.items())
                         for k in result.extra_keys)  # fmt: skip
        say(f"{count(result.extra, 'item')} in the table that the dump does not hold"
            + (f", first: {keys}" if keys else ""))  # fmt: skip
    if result.repaired is not None:
        say(f"repaired: {count(result.repaired, 'item')} written again; checked again, "
            f"{result.unrepaired:,} still not as the dump has them")  # fmt: skip
    units = "consumed" if result.read_units_measured else "estimated"
    how = "by key" if result.method == "get" else "by a parallel scan"
    say(f"read {how} in {result.elapsed:.1f}s, {result.read_units:,.1f} read units ({units})")
    if not result.recorded:
        say("(not recorded: the ledger cannot be written to)")
    if as_json:
        typer.echo(json.dumps(result.as_dict()))


def summary(result: VerifyResult) -> str:
    share = "" if result.sample is None else f" (a sample of {result.sample:.2%} of the keys)"
    return (
        f"verified {count(result.items, 'item')}{share}: {result.identical:,} identical, "
        f"{result.missing:,} missing, {result.different:,} different, "
        f"{count(result.expected_missing, 'dead letter')} expected missing"
        + (f", {result.extra:,} extra" if result.extra is not None else "")
    )


def _part(value: dict[str, object]) -> str:
    """A key attribute as one short word (a key is no secret value: it names the item)."""
    ((kind, v),) = value.items()
    return f"{v}" if kind != "B" else f"b64:{v}"
