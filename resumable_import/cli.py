"""`rimport`: flags in, one call into the library, results out.

Every error the user can cause arrives here as a RimportError and leaves as one line, a
hint and an exit code; a traceback only with --debug.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from tqdm import tqdm

from . import endpoint as endpoints
from .dynamo import table_keys
from .errors import InputError, RimportError, Stopped, UsageError
from .folder import Entry, FolderResult, folder_of, import_folder, plan, table_for
from .items import KeySpec
from .ledger import Ledger, Run
from .run import (
    DEFAULT_CONCURRENCY,
    ImportResult,
    check_ledger,
    import_file,
    resume_run,
    retry_failed,
    run_status,
)
from .validate import Report, validate_file

# Exit codes besides 0 and those the errors carry (2 for usage and input, 1 otherwise).
EXIT_ERROR, EXIT_DEAD_LETTERS = 1, 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Import large JSON dumps into DynamoDB, resumably: a killed import continues "
    "from its last checkpoint, and items DynamoDB refused wait in a ledger for a retry.",
)
_debug = False

LedgerOpt = Annotated[
    Path | None,
    typer.Option(
        "--ledger",
        metavar="PATH",
        help="SQLite ledger of runs [default: $RIMPORT_LEDGER, else "
        "$XDG_STATE_HOME/rimport/ledger.sqlite]",
        show_default=False,
    ),
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    global _debug
    _debug = debug


FileArg = Annotated[
    str,
    typer.Argument(
        metavar="PATH",
        help="The dump (a JSON array, a wrapper object, JSON Lines), or a folder of dumps, "
        "or the folder of a DynamoDB export to S3; `-` for standard input (or any pipe), "
        "s3://BUCKET/KEY for an object in S3.",
    ),
]
TableOpt = Annotated[
    str | None,
    typer.Option(
        "--table",
        "-t",
        metavar="TABLE",
        help="DynamoDB table [default: from each file's name: messages-dump.json.gz -> "
        "messages; for an export, the exported table].",
        show_default=False,
    ),
]
PatternOpt = Annotated[
    str | None,
    typer.Option(
        metavar="GLOB",
        help="Which files of a folder [default: *.json, *.jsonl, *.ndjson, compressed or not].",
        show_default=False,
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help="DynamoDB endpoint URL, or `aws` for the region's AWS endpoint "
        "[default: $AWS_ENDPOINT_URL_DYNAMODB, $AWS_ENDPOINT_URL, http://localhost:8000]",
        show_default=False,
    ),
]
RegionOpt = Annotated[
    str | None, typer.Option(metavar="REGION", help="AWS region [default: from the AWS config]")
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="auto, json (array or wrapper), jsonl, ddb-json (DynamoDB's typed JSON, "
        "in any of those layouts) or ddb-export (the lines of a DynamoDB export to S3).",
    ),
]
ItemsPathOpt = Annotated[
    str | None,
    typer.Option(
        metavar="PATH",
        help="Where the items array sits in a wrapper object, as dotted keys "
        "(Items, data.records).",
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME:TYPE",
        help="Partition key as NAME:S|N|B, for a table that does not exist yet.",
    ),
]
SortKeyOpt = Annotated[
    str | None, typer.Option(metavar="NAME:TYPE", help="Sort key as NAME:S|N|B, with --key.")
]


@app.command()
def start(
    file: FileArg,
    table: TableOpt = None,
    pattern: PatternOpt = None,
    endpoint: EndpointOpt = None,
    region: RegionOpt = None,
    ledger: LedgerOpt = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=25, metavar="N", help="Items per BatchWriteItem.")
    ] = 25,
    format: FormatOpt = "auto",
    items_path: ItemsPathOpt = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, metavar="N", help="Requests in flight at once.")
    ] = DEFAULT_CONCURRENCY,
    max_wcu: Annotated[
        float | None,
        typer.Option(metavar="N", help="Cap on write capacity units per second.", min=1),
    ] = None,
    create_table: Annotated[
        bool,
        typer.Option("--create-table", help="Create the table (on-demand, with --key) if missing."),
    ] = False,
    key: KeyOpt = None,
    sort_key: SortKeyOpt = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow an endpoint that is not this machine.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only check the dump, as `rimport validate` does."),
    ] = False,
    max_outage: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            min=0,
            help="How long to keep trying while the endpoint answers nothing before the run "
            "stops (resumably).",
        ),
    ] = 300,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="Start afresh even if the file has an unfinished run (or, in a folder, "
            "was imported already).",
        ),
    ] = False,
) -> None:
    """Import a dump, or every dump of a folder, each file as a run; prints run ids first.

    Started again on a folder, it skips the files already imported and continues the
    unfinished ones.
    """
    if dry_run:
        _validate(file, table, pattern, key, sort_key, endpoint, region, format, items_path)

    def work() -> ImportResult | FolderResult:
        keys = _key_specs(key, sort_key)
        if create_table and not keys:
            raise UsageError("--create-table needs --key NAME:S|N|B")
        if keys and not create_table:
            raise UsageError("--key and --sort-key go with --create-table or --dry-run")
        with _Bar() as bar:
            options: dict[str, Any] = dict(
                endpoint=endpoint, region=region, ledger=ledger, batch_size=batch_size,
                items_path=items_path, create_keys=keys, allow_remote=allow_remote,
                concurrency=concurrency, max_wcu=max_wcu, progress=bar, on_start=_starting(bar),
                max_outage=max_outage, notice=bar.note,
            )  # fmt: skip
            if _is_folder(file):
                return import_folder(file, table, pattern=pattern, fmt=format, new=new,
                                     on_file=_announce, **options)  # fmt: skip
            if pattern:
                raise UsageError("--pattern goes with a folder")
            return import_file(file, table or _table_for(file), fmt=format, new=new, **options)

    result = _guard(work)
    if isinstance(result, FolderResult):
        _finish_folder(result)
    else:
        _finish(result, ledger)


@app.command()
def validate(
    file: FileArg,
    table: TableOpt = None,
    pattern: PatternOpt = None,
    key: KeyOpt = None,
    sort_key: SortKeyOpt = None,
    endpoint: EndpointOpt = None,
    region: RegionOpt = None,
    format: FormatOpt = "auto",
    items_path: ItemsPathOpt = None,
) -> None:
    """Read all of a dump (or each of a folder) and report what DynamoDB would refuse.

    Writes nothing. Exits 0 when every item can be written, 3 when some cannot, 2 when a
    file cannot be read to the end.
    """
    _validate(file, table, pattern, key, sort_key, endpoint, region, format, items_path)


@app.command()
def resume(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run (any unique prefix of its id).")
    ],
    ledger: LedgerOpt = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="PATH",
            help="For a run started on a stream: the same bytes again (`-` for standard "
            "input); the part before the checkpoint is read and checked, not written again.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Continue a run from its last checkpoint, after checking the file is unchanged."""

    def work() -> ImportResult:
        with _Bar() as bar:
            return resume_run(run_id, source=source, ledger=ledger, progress=bar,
                              on_start=_starting(bar), notice=bar.note)  # fmt: skip

    _finish(_guard(work), ledger)


@app.command("retry-failed")
def retry_failed_cmd(
    run_id: Annotated[
        str | None,
        typer.Argument(metavar="RUN_ID", help="The run [default: every run with retryable items]."),
    ] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Write a run's dead-lettered items again, with backoff."""

    def work() -> list[ImportResult]:
        if run_id:
            ids = [run_id]
        else:
            with Ledger(ledger) as book:
                ids = [r.id for r in book.runs() if book.dead_letters(r.id, retryable_only=True)]
        results = []
        for rid in ids:
            before = run_status(rid, ledger=ledger)[0].dead_letters
            result = retry_failed(rid, ledger=ledger)
            _say(
                f"run {rid}: {before - result.dead_letters} of {before} dead letters written, "
                f"{result.dead_letters} remain"
            )
            results.append(result)
        if not ids:
            _say("no run has dead letters worth retrying")
        return results

    results = _guard(work)
    if any(r.dead_letters for r in results):
        _say("`rimport status RUN_ID` lists what remains and why")
        raise typer.Exit(EXIT_DEAD_LETTERS)


@app.command()
def status(
    run_id: Annotated[
        str | None, typer.Argument(metavar="RUN_ID", help="One run [default: all of them].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ledger: LedgerOpt = None,
) -> None:
    """Show what every run (or one) has done."""
    runs = _guard(lambda: run_status(run_id, ledger=ledger))
    if as_json:
        payload: Any = runs[0].as_dict() if run_id else [r.as_dict() for r in runs]
        typer.echo(json.dumps(payload, indent=2))
    elif run_id:
        _print_run(runs[0], ledger)
    elif not runs:
        typer.echo("no runs yet: `rimport start FILE --table T` begins one")
    else:
        _print_table(runs)
    if runs.unreadable:
        _say(f"error: the ledger is damaged: {_count(len(runs.unreadable), 'run')} cannot be "
             f"read in full ({', '.join(runs.unreadable)})")  # fmt: skip
        _say(f"hint: {_ledger_check_command(ledger)} says more")
        raise typer.Exit(EXIT_ERROR)


ledger_app = typer.Typer(
    no_args_is_help=True, help="Look after the ledger itself.", rich_markup_mode=None
)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("check")
def ledger_check(ledger: LedgerOpt = None) -> None:
    """Check the ledger file for damage, and say which runs can still be read.

    Exits 0 when it is sound, 1 when it is damaged.
    """
    health = _guard(lambda: check_ledger(ledger))
    if not health.problems and not health.unreadable:
        typer.echo(f"{health.path}: sound, {_count(len(health.runs), 'run')}")
        return
    typer.echo(f"{health.path}: damaged")
    for problem in health.problems[:10]:
        typer.echo(f"  {problem}")
    typer.echo(f"runs that can be read: {len(health.runs)}"
               + (f" ({', '.join(r.id for r in health.runs)})" if health.runs else ""))  # fmt: skip
    if health.unreadable:
        typer.echo(f"runs that cannot be read: {', '.join(health.unreadable)}")
    _say(
        "hint: start new runs in another file with --ledger PATH; `sqlite3 LEDGER .recover` "
        "may save more of this one (keep a copy first)"
    )
    raise typer.Exit(EXIT_ERROR)


def _ledger_check_command(ledger: Path | None) -> str:
    return "`rimport ledger check" + (f" --ledger {ledger}`" if ledger else "`")


def _key_specs(key: str | None, sort_key: str | None) -> tuple[KeySpec, ...] | None:
    if sort_key and not key:
        raise UsageError("--sort-key needs --key")
    if not key:
        return None
    return (KeySpec.parse(key),) + ((KeySpec.parse(sort_key),) if sort_key else ())


def _is_folder(path: str) -> bool:
    """A local directory, or an S3 prefix (`s3://BUCKET/PREFIX/`, ending in a slash)."""
    if path.startswith("s3://"):
        return path.endswith("/") or "/" not in path[len("s3://") :]
    return path != "-" and Path(path).is_dir()


def _table_for(path: str) -> str:
    """The table named after the dump, when no --table is given."""
    if path == "-" or not Path(path.rstrip("/")).name:
        raise UsageError("standard input has no file name to name the table after",
                         "name the table with --table")  # fmt: skip
    return table_for(Path(path.rstrip("/")))


def _validate(
    path: str, table: str | None, pattern: str | None, key: str | None, sort_key: str | None,
    endpoint: str | None, region: str | None, fmt: str, items_path: str | None,
) -> NoReturn:  # fmt: skip
    def work() -> list[Report]:
        given = _key_specs(key, sort_key)
        if not _is_folder(path):
            with _Bar() as bar:
                keys = given or table_keys(table or _table_for(path), endpoint, region)
                return [validate_file(path, keys, fmt=fmt, items_path=items_path, progress=bar)]
        todo = plan(folder_of(path), table, pattern, fmt)
        reports = []
        for entry in todo.entries:  # a file that cannot be read does not stop the others
            keys = given or table_keys(entry.table, endpoint, region)
            try:
                if entry.problem:
                    raise entry.problem
                with _Bar() as bar:
                    reports.append(validate_file(entry.path, keys, fmt=todo.fmt,
                                                 items_path=items_path, progress=bar))  # fmt: skip
            except InputError as e:
                reports.append(Report(entry.path, "unreadable", stopped=e))
        return reports

    reports = _guard(work)
    for report in reports:
        _print_report(report)
    if any(r.stopped for r in reports):
        raise typer.Exit(2)
    raise typer.Exit(0 if all(r.clean for r in reports) else EXIT_DEAD_LETTERS)


# -- output ------------------------------------------------------------------------------


def _starting(bar: _Bar) -> Callable[[Run], None]:
    def start(run: Run) -> None:
        _give_way(run.endpoint)
        bar.start(run)

    return start


_NICENESS = 10


def _give_way(endpoint: str) -> None:
    """Lower this process's priority when the endpoint is on this machine.

    DynamoDB Local's JVM spends several times rimport's CPU per item and is what limits the
    import, so the cores are better spent on it first: measured on 2 cores, 5,200 against
    4,600 items/s (three runs of 100,000 items each way). Only the command does this: a
    library call must not change the priority of its caller's process. RIMPORT_NICE=0
    turns it off.
    """
    if endpoints.parse(endpoint).loopback and os.environ.get("RIMPORT_NICE") != "0":
        now = os.nice(0)
        if now < _NICENESS:  # idempotent, and never raises a priority the user lowered
            os.nice(_NICENESS - now)


class _Bar:
    """A tqdm bar on a terminal: bytes of the file for percent and ETA, items and items/s."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._t0 = time.monotonic()
        self._items0 = 0

    def start(self, run: Run) -> None:
        typer.echo(run.id)
        verb = "resuming" if run.items_committed else "importing"
        _say(f"run {run.id}: {verb} {run.file} into table {run.table} at {run.endpoint}")
        self.begin(run.file_size, run.byte_offset, run.items_committed)

    def begin(self, total: int, done: int = 0, items: int = 0) -> None:
        self._items0 = items
        self._t0 = time.monotonic()
        self._bar = tqdm(
            total=total or None, initial=done, unit="B", unit_scale=True,
            unit_divisor=1024, dynamic_ncols=True, disable=not sys.stderr.isatty(),
            bar_format="{percentage:3.0f}%|{bar}| {n_fmt}B/{total_fmt}B [{elapsed}<{remaining}]"
            "{postfix}" if total else "{n_fmt}B read [{elapsed}]{postfix}",
        )  # fmt: skip

    def __call__(self, items: int, done: int, total: int) -> None:
        if self._bar is None:
            self.begin(total)
        if self._bar is None or self._bar.disable:
            return
        self._bar.update(done - self._bar.n)
        rate = (items - self._items0) / max(time.monotonic() - self._t0, 1e-9)
        self._bar.set_postfix_str(f"{items:,} items, {rate:,.0f} items/s", refresh=False)

    def note(self, line: str) -> None:
        """A line above the bar (or alone, without a terminal)."""
        if self._bar is not None and not self._bar.disable:
            self._bar.write(line, file=sys.stderr)
        else:
            _say(line)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _finish(result: ImportResult, ledger: Path | None) -> None:
    rate = f", {result.items_written / result.elapsed:,.0f} items/s" if result.elapsed else ""
    _say(
        f"run {result.run_id}: {result.state}: {result.items_committed:,} items read, "
        f"{result.items_written:,} written, {result.dead_letters:,} dead-lettered"
        f" in {result.elapsed:.1f}s{rate}"
    )
    if result.dead_letters:
        where = f" --ledger {ledger}" if ledger else ""
        _say(f"see them with `rimport status {result.run_id}{where}`; retry with "
             f"`rimport retry-failed {result.run_id}{where}`")  # fmt: skip
        raise typer.Exit(EXIT_DEAD_LETTERS)


def _announce(entry: Entry) -> None:
    _say(f"{entry.path} -> table {entry.table}")


def _finish_folder(result: FolderResult) -> None:
    """One line per file, then the exit code of the worst: 2 for a file that failed,
    3 for dead letters."""
    codes = [0]
    for f in result.files:
        r = f.result
        if f.action == "skipped" and r is not None:
            line = f"skipped: imported by run {r.run_id} ({r.items_committed:,} items)"
        elif r is not None:
            line = (f"{f.action}: run {r.run_id} {r.state}, {r.items_written:,} written, "
                    f"{r.dead_letters:,} dead-lettered")  # fmt: skip
        else:
            line = "failed"
        if f.error is not None:
            line = f"{line}: {f.error.message}" + (
                f" (hint: {f.error.hint})" if f.error.hint else ""
            )
            codes.append(f.error.exit_code)
        elif r is not None and r.dead_letters:
            codes.append(EXIT_DEAD_LETTERS)
        _say(f"{f.entry.path.name} -> {f.entry.table}: {line}")
    ok = sum(1 for f in result.files if f.error is None)
    _say(f"{result.plan.folder}: {ok} of {len(result.files)} files done, "
         f"{result.items:,} items read")  # fmt: skip
    if result.count_error:
        _say(f"error: {result.count_error}")
        codes.append(2)
    if any(c == 2 for c in codes):
        _say(f"hint: fix what is named above, then run the same `rimport start "
             f"{result.plan.folder}` again: finished files are skipped")  # fmt: skip
    worst = 2 if 2 in codes else max(codes)
    if worst:
        raise typer.Exit(worst)


def _print_report(r: Report) -> None:
    mb, text_mb = r.bytes / 1e6, r.text_bytes / 1e6
    size = f"{text_mb:,.1f} MB ({mb:,.1f} MB stored)" if "+" in r.shape else f"{mb:,.1f} MB"
    rate = max(r.elapsed, 1e-9)
    typer.echo(
        f"{r.file}: {r.shape}, {r.items:,} items, {size} read in {r.elapsed:.1f}s "
        f"({text_mb / rate:,.1f} MB/s, {r.items / rate:,.0f} items/s)"
    )
    if r.duplicates:
        typer.echo(f"duplicate keys: {r.duplicates:,} (items with the key of an earlier item, "
                   "which they replace: the last one wins)")  # fmt: skip
    total = sum(r.counts.values())
    if total:
        typer.echo(f"{_count(total, 'item')} DynamoDB would refuse:")
        for p in r.problems:
            typer.echo(f"  {p}")
        if total > len(r.problems):
            typer.echo(f"  ... and {total - len(r.problems):,} more")
        typer.echo("by kind:")
        for code, n in r.counts.most_common():
            typer.echo(f"  {code:<16}{n:>10,}")
    if r.stopped is not None:
        typer.echo(f"error: {r.stopped.message}")
        typer.echo(f"hint: {r.stopped.hint or 'fix the file, then check it again'}")
    elif not total:
        typer.echo("no problems: every item can be written")


def _print_table(runs: list[Run]) -> None:
    """Runs of single files first, then each folder's runs under a line that sums them up."""
    header = ("RUN", "STATE", "TABLE", "ITEMS", "WRITTEN", "DEAD", "DONE", "UPDATED", "FILE")
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
                         f"{r.items_written:,}", dead, done, r.updated_at,
                         Path(r.file).name))  # fmt: skip
    widths = [
        max(len(row[i]) for row in rows if isinstance(row, tuple)) for i in range(len(header))
    ]
    for row in rows:
        if isinstance(row, str):
            typer.echo(row)
        else:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _print_run(run: Run, ledger: Path | None) -> None:
    fields = [
        ("run", run.id), ("state", run.state),
        ("file", run.file + (" (a stream)" if run.source == "stream" else "")),
        ("file size", f"{run.file_size:,} bytes" if run.file_hash else "known at its end"),
        ("file hash", run.file_hash or "known at its end"),
        ("shape", run.shape), ("table", run.table),
        ("endpoint", f"{endpoints.redacted(run.endpoint)} ({run.region})"),
        ("items committed", f"{run.items_committed:,} (byte {run.byte_offset:,})"),
        ("items written", f"{run.items_written:,}"), ("dead letters", f"{run.dead_letters:,}"),
        ("started", run.started_at), ("updated", run.updated_at),
        ("finished", run.finished_at or "-"),
    ]  # fmt: skip
    if run.folder:
        fields.insert(3, ("folder", run.folder))
    if run.error:
        fields.append(("stopped by" if run.state != "completed" else "note", run.error))
    for name, value in fields:
        typer.echo(f"{name + ':':<17}{value}")
    if run.dead_letters:
        shown = 20
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
            typer.echo(f"  ... and {run.dead_letters - shown:,} more")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _guard(work: Any) -> Any:
    """Run `work`, turning the errors a user can cause into one line, a hint and an exit code."""
    try:
        return work()
    except RimportError as e:
        if _debug:
            raise
        _say(f"error: {e.message}")
        if e.hint:
            _say(f"hint: {e.hint}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt as e:
        if _debug:
            raise
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        _say("interrupted" if signum == signal.SIGINT else f"stopped by signal {signum}")
        raise typer.Exit(128 + signum) from None


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM (docker stop, systemd, CI runners) and SIGHUP (a closed terminal) stop a run
    as Ctrl-C does: checkpoint and state written, one line on how to resume."""
    raise Stopped(signum)


def main() -> None:
    # Everything imported so far lives as long as the process: keep the garbage collector
    # from walking it again and again while millions of items pass through.
    gc.freeze()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_like_ctrl_c)
    try:
        app(prog_name="rimport")
    except Exception:
        if _debug:
            raise
        import traceback

        _say(f"error: unexpected failure: {traceback.format_exc(limit=0).strip().splitlines()[-1]}")
        _say("hint: run again with --debug for the full traceback, and report it")
        sys.exit(EXIT_ERROR)
