"""`verify`: the table read back and compared with the run's dump; exit 3 when they differ."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from resumable_import import VerifyOptions, VerifyResult, verify_run

from .app import app, guard
from .options import LedgerOpt, ProfileOpt, RunIdArg
from .render import EXIT_DEAD_LETTERS, count, say


@app.command("verify")
def verify_cmd(
    run_id: RunIdArg,
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
        bool, typer.Option("--json", help="The result as one JSON object on stdout.")
    ] = False,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            metavar="get|scan",
            help="get: BatchGetItem by the dump's keys (read units in proportion to the dump); "
            "scan: a parallel Scan (in proportion to the table) [default: scan with --extra, "
            "else get].",
            show_default=False,
        ),
    ] = None,
    extra: Annotated[
        bool,
        typer.Option("--extra", help="Also count the table's items that the dump does not hold."),
    ] = False,
    profile: ProfileOpt = None,
) -> None:
    """Read a completed run's dump again as it read it, and the table by key (strongly
    consistent BatchGetItem): say which items are missing and which attributes differ.

    Numbers compare by value (1.5 is 1.50), sets unordered, binary as bytes; the later of
    two elements with one key is the one expected; dead letters are expected missing.
    Exit 0 when the table holds the dump, 3 when it does not, 2 for bad input.
    """

    def work() -> VerifyResult:
        options = VerifyOptions(source=source, profile=profile, method=method, extra=extra)
        return verify_run(run_id, options, ledger=ledger)

    result = guard(work)
    say(summary(result))
    for d in result.differences:
        key = ", ".join(f"{name}={_part(value)}" for name, value in d.key.items())
        what = "missing" if d.attributes is None else "differs in " + ", ".join(d.attributes)
        say(f"  item {d.index:,} ({key}): {what}")
    shown = len(result.differences)
    if shown < result.missing + result.different:
        say(f"  ... and {count(result.missing + result.different - shown, 'more item')}")
    if result.extra is not None:
        keys = "; ".join(", ".join(f"{n}={_part(v)}" for n, v in k.items())
                         for k in result.extra_keys)  # fmt: skip
        say(f"{count(result.extra, 'item')} in the table that the dump does not hold"
            + (f", first: {keys}" if keys else ""))  # fmt: skip
    units = "consumed" if result.read_units_measured else "estimated"
    how = "by key" if result.method == "get" else "by a parallel scan"
    say(f"read {how} in {result.elapsed:.1f}s, {result.read_units:,.1f} read units ({units})")
    if not result.recorded:
        say("(not recorded: the ledger cannot be written to)")
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    if not result.ok:
        raise typer.Exit(EXIT_DEAD_LETTERS)


def summary(result: VerifyResult) -> str:
    return (
        f"verified {count(result.items, 'item')}: {result.identical:,} identical, "
        f"{result.missing:,} missing, {result.different:,} different, "
        f"{count(result.expected_missing, 'dead letter')} expected missing"
        + (f", {result.extra:,} extra" if result.extra is not None else "")
    )


def _part(value: dict[str, object]) -> str:
    """A key attribute as one short word (a key is no secret value: it names the item)."""
    ((kind, v),) = value.items()
    return f"{v}" if kind != "B" else f"b64:{v}"
