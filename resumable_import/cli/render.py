"""What the commands print: a run's outcome, the table of runs, one run in full or as
JSON, a validation report; and the exit codes besides 0 that go with them.

Messages go to stderr (`say`), results to stdout, so that `rimport start ... | ...` gets
the run id alone.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from resumable_import import (
    FolderResult,
    ImportResult,
    Ledger,
    Report,
    Run,
    Verification,
    redacted,
    settings_of,
)

from .hints import command, in_flags, spelled

# Exit codes besides 0 and those the errors carry (2 for usage and input, 1 otherwise).
EXIT_ERROR, EXIT_DEAD_LETTERS = 1, 3


def say(message: str) -> None:
    typer.echo(message, err=True)


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def finish(result: ImportResult, ledger: Path | None) -> None:
    rate = f", {result.items_written / result.elapsed:,.0f} items/s" if result.elapsed else ""
    say(
        f"run {result.run_id}: {result.state}: {count(result.items_committed, 'item')} read, "
        f"{result.items_written:,} written, {result.dead_letters:,} dead-lettered"
        f"{_superseded(result.superseded)} in {result.elapsed:.1f}s{rate}"
    )
    if result.dead_letters:
        rid, where = result.run_id, f" --ledger {ledger}" if ledger else ""
        export = f"`rimport dead-letters {rid} --out dead-letters-{rid}.jsonl{where}`"
        if result.retryable == result.dead_letters:
            say(f"see them with `rimport status {rid}{where}`; retry with "
                 f"`rimport retry-failed {rid}{where}`")  # fmt: skip
        elif result.retryable:
            say(f"see them with `rimport status {rid}{where}`; retry the "
                 f"{result.retryable:,} retryable ones with `rimport retry-failed {rid}{where}`; "
                 f"{export} writes them all to a file to fix and import again")  # fmt: skip
        else:
            say(f"none of them can succeed by retrying: see why with `rimport status {rid}"
                 f"{where}`; {export} writes them to a file to fix and import again")  # fmt: skip
        raise typer.Exit(EXIT_DEAD_LETTERS)


def imported_before(file: str, table: str, result: ImportResult) -> str:
    """The one line of a `start` that found its file imported already (exit 0)."""
    return (
        f"{file}: already imported into table {table} by run {result.run_id}, completed at "
        f"{utc(result.finished_at)} ({count(result.items_committed, 'item')}); not imported again "
        "(--new imports it again)"
    )


def utc(stamp: str | None) -> str:
    """A ledger time (ISO 8601, UTC) as `2026-11-29 22:10:03 UTC`."""
    if not stamp:
        return "-"
    return stamp.replace("T", " ").removesuffix("+00:00") + " UTC"


def finish_folder(result: FolderResult) -> None:
    """One line per file, then the exit code of the worst: 2 for a file that failed,
    3 for dead letters."""
    codes = [0]
    for f in result.files:
        r = f.result
        if f.action == "skipped" and r is not None:
            line = f"skipped: imported by run {r.run_id} ({count(r.items_committed, 'item')})"
        elif r is not None:
            deleted = f", {r.items_deleted:,} deleted" if r.items_deleted else ""
            line = (f"{f.action}: run {r.run_id} {r.state}, {r.items_written:,} written{deleted}, "
                    f"{r.dead_letters:,} dead-lettered")  # fmt: skip
        elif f.action == "empty":
            line = "empty: an empty partition of the export (its manifest lists no items)"
        else:
            line = "failed"
        if f.error is not None:
            in_flags(f.error)
            line = f"{line}: {spelled(f.error.message)}" + (
                f" (hint: {spelled(f.error.hint)})" if f.error.hint else ""
            )
            codes.append(f.error.exit_code)
        elif r is not None and r.dead_letters:
            codes.append(EXIT_DEAD_LETTERS)
        say(f"{f.entry.path.name} -> {f.entry.table}: {line}")
    ok = sum(1 for f in result.files if f.error is None)
    say(f"{result.plan.folder}: {ok} of {len(result.files)} files done, "
         f"{count(result.items, 'item')} read")  # fmt: skip
    if result.count_error:
        say(f"error: {result.count_error}")
        codes.append(2)
    if any(c == 2 for c in codes):
        say(f"hint: fix what is named above, then run the same `rimport start "
             f"{result.plan.folder}` again: finished files are skipped")  # fmt: skip
    worst = 2 if 2 in codes else max(codes)
    if worst:
        raise typer.Exit(worst)


def print_report(r: Report) -> None:
    mb, text_mb = r.bytes / 1e6, r.text_bytes / 1e6
    size = f"{text_mb:,.1f} MB ({mb:,.1f} MB stored)" if "+" in r.shape else f"{mb:,.1f} MB"
    rate = max(r.elapsed, 1e-9)
    typer.echo(
        f"{r.file}: {r.shape}, {count(r.items, 'item')}, {size} read in {r.elapsed:.1f}s "
        f"({text_mb / rate:,.1f} MB/s, {r.items / rate:,.0f} items/s)"
    )
    if r.transformed is not None:
        typer.echo(f"the transform made {count(r.transformed, 'item')} of them")
    if r.duplicates:
        typer.echo(f"duplicate keys: {r.duplicates:,} (items with the key of an earlier item, "
                   "which they replace: the last one wins)")  # fmt: skip
    total = sum(r.counts.values())
    if total:
        typer.echo(f"{count(total, 'item')} DynamoDB would refuse:")
        for p in r.problems:
            typer.echo(f"  {p}")
        if total > len(r.problems):
            typer.echo(f"  ... and {total - len(r.problems):,} more")
        typer.echo("by kind:")
        for code, n in r.counts.most_common():
            typer.echo(f"  {code:<16}{n:>10,}")
    if r.stopped is not None:
        typer.echo(f"error: {spelled(r.stopped.message)}")
        typer.echo(f"hint: {spelled(r.stopped.hint or 'fix the file, then check it again')}")
    elif not total:
        typer.echo("no problems: every item can be written")


def print_table(runs: list[Run]) -> None:
    """Runs of single files first, then each folder's runs under a line that sums them up.
    A run that stopped with an error has it on the line below, cut to the terminal's width."""
    header = ("RUN", "STATE", "TABLE", "ITEMS", "WRITTEN", "DEAD", "DONE", "ELAPSED", "RATE",
              "ENDPOINT", "FILE")  # fmt: skip
    width = shutil.get_terminal_size((120, 24)).columns
    folders: dict[str | None, list[Run]] = {}
    for r in runs:
        folders.setdefault(r.folder, []).append(r)
    rows: list[tuple[str, ...] | str] = [header]
    for folder, group in sorted(folders.items(), key=lambda kv: kv[0] is not None):
        if folder is not None:
            states = Counter(r.state for r in group)
            summary = ", ".join(f"{n} {state}" for state, n in states.most_common())
            rows.append(f"folder {folder}: {len(group)} runs ({summary})")
        indent = "" if folder is None else "  "
        for r in group:
            # The checkpoint counts decompressed bytes: no share of a compressed file's size.
            done = (
                f"{100 * r.byte_offset / r.file_size:.0f}%"
                if "+" not in r.shape and r.file_size
                else "-"
            )
            if r.state in ("completed", "completed_with_failures"):
                done = "100%"
            dead = f"{r.dead_letters:,}" if r.dead_letters >= 0 else "?"
            rows.append((indent + r.id, r.state, r.table, f"{r.items_committed:,}",
                         f"{r.items_written:,}", dead, done, _duration(r.elapsed), _rate(r),
                         _endpoint(r.endpoint), Path(r.file).name))  # fmt: skip
            if r.error:
                lead = f"{indent}    {_error_label(r)}: "
                rows.append(lead + _cut(r.error, width - len(lead)))
    widths = [
        max(len(row[i]) for row in rows if isinstance(row, tuple)) for i in range(len(header))
    ]
    for row in rows:
        if isinstance(row, str):
            typer.echo(row)
        else:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _error_label(run: Run) -> str:
    return "stopped by" if run.state != "completed" else "note"


def _cut(text: str, width: int) -> str:
    """One line of at most `width` characters (never fewer than 40 kept)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 40)] + "…"


def _endpoint(url: str) -> str:
    """The endpoint as the table shows it: without its scheme, and never a password."""
    return re.sub(r"^https?://", "", redacted(url))


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _elapsed(run: Run) -> str:
    """How long a run has worked, as `status RUN_ID` says it: tenths of a second for a short
    one (a finished run of a few thousand items takes under a second, which `0s` hid), and
    whether it is still at it."""
    seconds = run.elapsed
    took = f"{seconds:.1f}s" if seconds < 60 else _duration(seconds)
    if run.state in ("completed", "completed_with_failures"):
        return f"{took} (from start to finish, pauses not counted)"
    if run.state == "running":
        return f"{took} so far (running; up to its last checkpoint)"
    return f"{took} (until it stopped, pauses not counted)"


def _rate(run: Run) -> str:
    return "-" if run.rate is None else f"{run.rate:,.0f}/s"


def print_run(run: Run, ledger: Path | None) -> None:
    fields = [
        ("run", run.id), ("state", run.state),
        ("file", run.file + (" (a stream)" if run.source == "stream" else "")),
        ("file size", f"{run.file_size:,} bytes" if run.file_hash else "known at its end"),
        ("file hash", run.file_hash or "known at its end"),
        ("shape", run.shape), ("table", run.table),
        ("endpoint", f"{redacted(run.endpoint)} ({run.region})"),
        ("items committed", f"{run.items_committed:,} (byte {run.byte_offset:,})"),
        ("items written", f"{run.items_written:,}"),
        *([("items deleted", f"{run.items_deleted:,}")] if run.shape.startswith("table:") else []),
        ("dead letters", f"{run.dead_letters:,}" + _superseded(run.superseded_dead_letters)),
        ("started", run.started_at), ("updated", run.updated_at),
        ("finished", run.finished_at or "-"),
        ("elapsed", _elapsed(run)),
        ("rate", "-" if run.rate is None else f"{run.rate:,.0f} items/s"),
        *([("verified", verified(run.verified))] if run.verified else []),
    ]  # fmt: skip
    if run.folder:
        fields.insert(3, ("folder", run.folder))
    fields.insert(fields.index(("shape", run.shape)) + 2, ("settings", _settings(run)))
    if transform := run.recorded.transform:
        fields.insert(fields.index(("table", run.table)), ("transform", transform["spec"]))
    if run.error:
        fields.append((_error_label(run), run.error))
    for name, value in fields:
        typer.echo(f"{name + ':':<17}{value}")
    if run.dead_letters:
        shown = SHOWN
        with Ledger(run.ledger or ledger, readonly=True) as book:
            letters = book.dead_letters(run.id, limit=shown)  # a page, never all of them
            counts = book.dead_letter_counts(run.id)
        typer.echo("\ndead letters by reason:")
        for kind, by_code in counts.items():
            for code, n in by_code.most_common():
                typer.echo(f"  {code:<40}{n:>10,}  {kind}")
        typer.echo(f"\nthe first {min(shown, run.dead_letters)} (item index, error):")
        for d in letters:
            again = "" if d.retryable else " [not retryable]"
            typer.echo(f"  {d.index:>10}  {d.code}: {d.message}{again}")
        if run.dead_letters > shown:
            typer.echo(f"  ... and {run.dead_letters - shown:,} more: "
                       f"{command(run, 'dead-letters', run.id, '--with-reasons', '--out', 'FILE')}"
                       " writes them all")  # fmt: skip


def _superseded(n: int) -> str:
    """Dead letters a later item with the same key made moot, said apart from the failures."""
    if not n:
        return ""
    return f" ({n:,} more superseded by a later item with the same key: not failures)"


def verified(v: Verification) -> str:
    """The last `verify` of a run on one line: when, how, and what it found."""
    how = "by key" if v.method == "get" else "by a parallel scan"
    extra = "" if v.extra is None else f", {v.extra:,} extra"
    units = "estimated" if v.read_units_estimated else "consumed"
    share = "" if v.sample is None else f" (a sample of {v.sample:.2%} of the keys)"
    mended = "" if v.repaired is None else (
        f"; repaired {count(v.repaired, 'item')}, {v.unrepaired or 0:,} still not as the dump "
        "has them"
    )  # fmt: skip
    return (
        f"{utc(v.at)} {how}: {count(v.items, 'item')}{share}, {v.identical:,} identical, "
        f"{v.missing:,} missing, {v.different:,} different{extra}, "
        f"{count(v.expected_missing, 'dead letter')} expected missing{mended} "
        f"({v.read_units:,.1f} read units {units}, {v.seconds:.1f}s)"
    )


SHOWN = 20  # dead letters `status RUN_ID` shows; `dead-letters` writes them all


def run_json(run: Run, ledger: Path | None) -> dict[str, Any]:
    """One run, with its dead letters by reason and the first SHOWN of them (no items):
    `dead_letter_details.all` names the command that writes all of them."""
    d = run.as_dict()
    by_reason: list[dict[str, Any]] = []
    first: list[dict[str, Any]] = []
    if run.dead_letters > 0:
        with Ledger(run.ledger or ledger, readonly=True) as book:
            for kind, by_code in book.dead_letter_counts(run.id).items():
                for code, n in by_code.most_common():
                    by_reason.append({"code": code, "retryable": kind == "retryable", "count": n})
            first = [
                {"index": x.index, "code": x.code, "message": x.message,
                 "attempts": x.attempts, "retryable": x.retryable}
                for x in book.dead_letters(run.id, limit=SHOWN)
            ]  # fmt: skip
    d["dead_letter_details"] = {
        "by_reason": by_reason,
        "first": first,
        "first_limit": SHOWN,
        "all": command(run, "dead-letters", run.id, "--with-reasons", "--out", "FILE").strip("`"),
    }
    return d


_SETTING_NAMES = {"batch_size": "batch size", "concurrency": "concurrency",
                  "max_wcu": "max WCU", "max_outage": "max outage",
                  "workers": "writer processes"}  # fmt: skip


def _settings(run: Run) -> str:
    """What the run writes with, and what a `resume` changed: "batch size 10 (25 until
    resumed at 2026-11-29 22:10 UTC), concurrency 32, ..."."""
    parts = []
    for name, value, before in settings_of(run):
        if name == "workers" and value is None and not before:
            continue  # a run from before writer processes: it writes with one
        shown = "-" if value is None else f"{value:g}" if isinstance(value, float) else value
        unit = " s" if name == "max_outage" and value is not None else ""
        earlier = "; ".join(
            f"{'-' if old is None else old} until resumed at {at[:16].replace('T', ' ')} UTC"
            for old, at in before
        )
        parts.append(f"{_SETTING_NAMES[name]} {shown}{unit}" + (f" ({earlier})" if earlier else ""))
    return ", ".join(parts)
