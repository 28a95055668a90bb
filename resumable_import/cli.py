"""`rimport`: flags in, one call into the library, results out.

Every error the user can cause arrives here as a RimportError and leaves as one line, a
hint and an exit code; a traceback only with --debug.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand

from . import endpoint as endpoints
from .dynamo import table_keys
from .errors import (
    InputError,
    KeyMismatchError,
    RimportError,
    Stopped,
    TableMissingError,
    UsageError,
)
from .export import ExportResult, export_run, fix_commands, sidecar_path
from .folder import (
    Entry,
    FolderResult,
    empty_partition,
    folder_of,
    import_folder,
    plan,
    table_for,
)
from .forget import Forgotten, finished_runs, forget_runs, parse_age
from .hints import command
from .hooks import Hooks
from .keys import KeySpec
from .ledger import Ledger, Run
from .loop import ImportResult
from .meter import MODES, Meter, open_meter
from .options import (
    DEFAULT_CONCURRENCY,
    ImportOptions,
    ResumeOptions,
    SettingsChange,
    WriteSettings,
)
from .run import (
    check_ledger,
    dead_letter_counts,
    import_file,
    resume_run,
    retry_failed,
    run_status,
    settings_of,
)
from .transform import load as load_transform
from .validate import Report, validate_file

# Exit codes besides 0 and those the errors carry (2 for usage and input, 1 otherwise).
EXIT_ERROR, EXIT_DEAD_LETTERS = 1, 3


class _Command(TyperCommand):
    """A command whose usage line reads `rimport start [OPTIONS] PATH`: typer writes a
    required argument as `{PATH}`, which reads as a set or a shell brace expansion."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p[:1] == "{" and p[-1:] == "}" else p for p in pieces]


class _App(typer.Typer):
    """A typer app whose commands are `_Command`s, whoever adds them."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _App(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Import large JSON dumps into DynamoDB, resumably: a killed import continues "
    "from its last checkpoint, and items DynamoDB refused wait in a ledger for a retry.",
)
_debug = False
# The app's own flags, which `main` also takes after the sub-command; none takes a value.
GLOBAL_FLAGS = ("--debug", "-q", "--quiet", "-v", "--verbose")
_quiet = False
_verbose = False

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


def _print_version(show: bool) -> None:
    if show:
        typer.echo(f"rimport {version('rimport')}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Only errors and results: the run id (stdout) and the one-line outcome; no "
            "progress (unless --progress names a kind), no notices, no informational lines.",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also each event of the run log on stderr: every retry and checkpoint.",
        ),
    ] = False,
) -> None:
    global _debug, _quiet, _verbose
    if quiet and verbose:
        _say("error: --quiet and --verbose go against each other")
        _say("hint: pass one of them")
        raise typer.Exit(2)
    _debug, _quiet, _verbose = debug, quiet, verbose


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
        "in any of those layouts), ddb-export (the lines of a DynamoDB export to S3) or ion "
        "(the lines of an export in Ion format).",
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
ProgressOpt = Annotated[
    str,
    typer.Option(
        "--progress",
        metavar="KIND",
        help="How progress shows on stderr: bar, log (a line every few seconds), json (the "
        "same as JSON lines), none; auto: the bar on a terminal, else log (none with -q).",
    ),
]

# The settings `resume` may change, declared once for `start` and `resume`.
_BATCH_SIZE = typer.Option(min=1, max=25, metavar="N", help="Items per BatchWriteItem.")
_CONCURRENCY = typer.Option(min=1, max=64, metavar="N", help="Requests in flight at once.")
_MAX_WCU = typer.Option(metavar="N", help="Cap on write capacity units per second.", min=1)
_MAX_OUTAGE = typer.Option(
    metavar="SECONDS",
    min=0,
    help="How long to keep trying while the endpoint answers nothing before the run "
    "stops (resumably).",
)

TransformOpt = Annotated[
    str | None,
    typer.Option(
        metavar="FILE.py:FUNCTION",
        help="Change items on the way in: a Python function (FILE.py:FUNCTION or "
        "MODULE:FUNCTION) given each item, returning the item to write, a list of items, "
        "or None to skip it.",
        show_default=False,
    ),
]


@app.command()
def start(
    file: FileArg,
    table: TableOpt = None,
    pattern: PatternOpt = None,
    endpoint: EndpointOpt = None,
    region: RegionOpt = None,
    ledger: LedgerOpt = None,
    batch_size: Annotated[int, _BATCH_SIZE] = WriteSettings.batch_size,
    format: FormatOpt = "auto",
    items_path: ItemsPathOpt = None,
    concurrency: Annotated[int, _CONCURRENCY] = DEFAULT_CONCURRENCY,
    max_wcu: Annotated[float | None, _MAX_WCU] = None,
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
    max_outage: Annotated[float, _MAX_OUTAGE] = 300,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="Start afresh even if the file has an unfinished run (or, in a folder, "
            "was imported already).",
        ),
    ] = False,
    progress: ProgressOpt = "auto",
    transform: TransformOpt = None,
) -> None:
    """Import a dump, or every dump of a folder, each file as a run; prints run ids first.

    Started again on a folder, it skips the files already imported and continues the
    unfinished ones.
    """
    _check_progress(progress)
    if dry_run:
        _validate(file, table, pattern, key, sort_key, endpoint, region, format, items_path,
                  progress, transform)  # fmt: skip

    def work() -> ImportResult | FolderResult:
        keys = _key_specs(key, sort_key)
        if create_table and not keys:
            raise UsageError("--create-table needs --key NAME:S|N|B")
        if keys and not create_table:
            raise UsageError("--key and --sort-key go with --create-table or --dry-run")
        with _meter(progress) as bar:
            settings = WriteSettings(batch_size, concurrency, max_wcu, max_outage)
            options = ImportOptions(
                format=format, items_path=items_path, create_keys=keys, endpoint=endpoint,
                region=region, allow_remote=allow_remote, transform=transform,
                settings=settings, new=new,
            )  # fmt: skip
            hooks = Hooks(on_progress=bar, on_start=_starting(bar), notice=bar.note,
                          on_file=_announce)  # fmt: skip
            if _is_folder(file):
                return import_folder(file, table, options, hooks, pattern=pattern, ledger=ledger)
            if pattern:
                raise UsageError("--pattern goes with a folder")
            return import_file(file, table or _table_for(file), options, hooks, ledger=ledger)

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
    progress: ProgressOpt = "auto",
    transform: TransformOpt = None,
) -> None:
    """Read all of a dump (or each of a folder) and report what DynamoDB would refuse.

    Writes nothing. Exits 0 when every item can be written, 3 when some cannot, 2 when a
    file cannot be read to the end.
    """
    _check_progress(progress)
    _validate(file, table, pattern, key, sort_key, endpoint, region, format, items_path,
              progress, transform)  # fmt: skip


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
    batch_size: Annotated[int | None, _BATCH_SIZE] = None,
    concurrency: Annotated[int | None, _CONCURRENCY] = None,
    max_wcu: Annotated[float | None, _MAX_WCU] = None,
    max_outage: Annotated[float | None, _MAX_OUTAGE] = None,
    progress: ProgressOpt = "auto",
) -> None:
    """Continue a run from its last checkpoint, after checking the file is unchanged.

    --batch-size, --concurrency, --max-wcu and --max-outage replace the run's own for the
    rest of it (after throttling, or a proxy's 413); `rimport status RUN_ID` shows the change.
    """
    _check_progress(progress)

    def work() -> ImportResult:
        with _meter(progress) as bar:
            change = SettingsChange(batch_size, concurrency, max_wcu, max_outage)
            hooks = Hooks(on_progress=bar, on_start=_starting(bar), notice=bar.note)
            return resume_run(run_id, ResumeOptions(source, settings=change), hooks,
                              ledger=ledger)  # fmt: skip

    _finish(_guard(work), ledger)


@app.command("retry-failed")
def retry_failed_cmd(
    run_id: Annotated[
        str | None,
        typer.Argument(metavar="RUN_ID", help="The run [default: every run with retryable items]."),
    ] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Write a run's retryable dead letters again, with backoff; say what remains and why."""

    def work() -> list[ImportResult]:
        if run_id:
            ids = [run_id]
        else:
            with Ledger(ledger) as book:
                ids = [r.id for r in book.runs()
                       if book.dead_letters(r.id, retryable_only=True, limit=1)]  # fmt: skip
        results = []
        for rid in ids:
            before = dead_letter_counts(rid, ledger=ledger)
            result = retry_failed(rid, ledger=ledger)
            after = dead_letter_counts(rid, ledger=ledger)
            _said_retried(run_status(rid, ledger=ledger)[0], result, before, after)
            results.append(result)
        if not ids:
            _say("no run has dead letters worth retrying")
        return results

    results = _guard(work)
    if any(r.dead_letters for r in results):
        raise typer.Exit(EXIT_DEAD_LETTERS)


def _said_retried(
    run: Run,
    result: ImportResult,
    before: dict[str, Counter[str]],
    after: dict[str, Counter[str]],
) -> None:
    """What a retry did, what remains by reason, and what to do about it."""
    total = sum(sum(c.values()) for c in before.values())
    remain = [(code, n, kind) for kind, c in after.items() for code, n in c.most_common()]
    listing = ", ".join(f"{n:,} {code} ({kind})" for code, n, kind in remain)
    if total and not sum(before["retryable"].values()):
        _say(f"none of run {run.id}'s {_count(total, 'dead letter')} can succeed by retrying: "
             f"{listing}")  # fmt: skip
    else:
        rest = f": {listing}" if listing else ""
        _say(f"run {run.id}: {total - result.dead_letters:,} of {total:,} dead letters "
             f"written, {result.dead_letters:,} remain{rest}")  # fmt: skip
    if after["retryable"]:
        _say(f"{command(run, 'retry-failed', run.id)} tries the retryable ones again later")
    if after["not retryable"]:
        export, load = fix_commands(run)
        which = "the others" if after["retryable"] else "them"
        _say(f"fix {which} with {export}, then {load}")


@app.command("dead-letters")
def dead_letters_cmd(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run (any unique prefix of its id).")
    ],
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
            help="jsonl, json (an array) or ddb-json (DynamoDB's typed JSON, one item a "
            "line) [default: jsonl, or ddb-json for a run that read DynamoDB JSON].",
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

    result = _guard(work)
    where = str(out) if out is not None else "stdout"
    run = result.run
    _say(f"run {run.id}: {_count(result.written, 'dead letter')} written to {where} "
         f"({result.format})")  # fmt: skip
    if with_reasons and out is not None:
        _say(f"why each was refused: {sidecar_path(out)}")
    for why, n in result.left_out.most_common():
        _say(f"left out {_count(n, 'item')}: {why}")
    if out is not None and result.written:
        _, load = fix_commands(run, str(out), result.format)
        _say(f"once fixed, import them with {load}; then {command(run, 'forget', run.id)} "
             "drops the old run and its dead letters")  # fmt: skip
    if result.left_out:
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
        payload: Any = _run_json(runs[0], ledger) if run_id else [r.as_dict() for r in runs]
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

    done = _guard(work)
    verb = "would forget" if dry_run else "forgot"
    dead = 0
    for f in done:
        r = f.run
        if f.error is not None:
            _say(f"error: {f.error.message}; it is not forgotten")
            continue
        dead += f.dead_letters
        letters = f", with its {_count(f.dead_letters, 'dead letter')}" if f.dead_letters else ""
        _say(f"{verb} run {r.id}: {r.state}, {Path(r.file).name} -> {r.table}, started "
             f"{r.started_at}{letters}")  # fmt: skip
    if not done:
        _say("no run to forget" + (" (none finished that long ago)" if older_than else ""))
    else:
        n = sum(1 for f in done if f.error is None)
        _say(f"{verb} {_count(n, 'run')} and {_count(dead, 'pending dead letter')}")
    if any(f.error for f in done):
        raise typer.Exit(EXIT_ERROR)


ledger_app = _App(no_args_is_help=True, help="Look after the ledger itself.", rich_markup_mode=None)
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
    endpoint: str | None, region: str | None, fmt: str, items_path: str | None, progress: str,
    transform_spec: str | None = None,
) -> NoReturn:  # fmt: skip
    def work() -> list[Report]:
        given = _key_specs(key, sort_key)
        transform = load_transform(transform_spec) if transform_spec else None
        if not _is_folder(path):
            with _meter(progress) as bar:
                keys = given or table_keys(table or _table_for(path), endpoint, region)
                return [validate_file(path, keys, fmt=fmt, items_path=items_path,
                                      on_progress=bar, transform=transform)]  # fmt: skip
        todo = plan(folder_of(path), table, pattern, fmt)
        reports = []
        for entry in todo.entries:  # a file that cannot be read does not stop the others
            keys = given or table_keys(entry.table, endpoint, region)
            try:
                if entry.problem:
                    raise entry.problem
                if empty_partition(entry):
                    reports.append(Report(entry.path, "empty partition of the export"))
                    continue
                with _meter(progress) as bar:
                    report = validate_file(
                        entry.path,
                        keys,
                        fmt=todo.fmt,
                        items_path=items_path,
                        on_progress=bar,
                        transform=transform,
                    )
                reports.append(report)
            except (InputError, KeyMismatchError) as e:
                what = "unreadable" if isinstance(e, InputError) else "not for this key"
                reports.append(Report(entry.path, what, stopped=_in_flags(e)))
        return reports

    reports = _guard(work)
    for report in reports:
        _print_report(report)
    if any(r.stopped for r in reports):
        raise typer.Exit(2)
    raise typer.Exit(0 if all(r.clean for r in reports) else EXIT_DEAD_LETTERS)


# -- output ------------------------------------------------------------------------------


def _check_progress(kind: str) -> None:
    if kind not in MODES:
        _say(f"error: --progress {kind!r} is not one of {', '.join(MODES)}")
        _say("hint: --progress log writes a line every few seconds, for logs and CI")
        raise typer.Exit(2)


def _meter(kind: str) -> Meter:
    return open_meter(kind, quiet=_quiet, verbose=_verbose)


def _starting(bar: Meter) -> Callable[[Run], None]:
    def start(run: Run) -> None:
        _give_way(run.endpoint)
        typer.echo(run.id)
        if not _quiet:
            verb = "resuming" if run.items_committed else "importing"
            _say(f"run {run.id}: {verb} {run.file} into table {run.table} at "
                 f"{endpoints.redacted(run.endpoint)}")  # fmt: skip
        bar.run_id = run.id
        # A compressed file's checkpoint counts decompressed bytes: no share of its size.
        done = 0 if "+" in run.shape else run.byte_offset
        bar.begin(run.file_size, done, run.items_committed)

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


def _finish(result: ImportResult, ledger: Path | None) -> None:
    rate = f", {result.items_written / result.elapsed:,.0f} items/s" if result.elapsed else ""
    _say(
        f"run {result.run_id}: {result.state}: {result.items_committed:,} items read, "
        f"{result.items_written:,} written, {result.dead_letters:,} dead-lettered"
        f" in {result.elapsed:.1f}s{rate}"
    )
    if result.dead_letters:
        rid, where = result.run_id, f" --ledger {ledger}" if ledger else ""
        export = f"`rimport dead-letters {rid} --out dead-letters-{rid}.jsonl{where}`"
        if result.retryable == result.dead_letters:
            _say(f"see them with `rimport status {rid}{where}`; retry with "
                 f"`rimport retry-failed {rid}{where}`")  # fmt: skip
        elif result.retryable:
            _say(f"see them with `rimport status {rid}{where}`; retry the "
                 f"{result.retryable:,} retryable ones with `rimport retry-failed {rid}{where}`; "
                 f"{export} writes them all to a file to fix and import again")  # fmt: skip
        else:
            _say(f"none of them can succeed by retrying: see why with `rimport status {rid}"
                 f"{where}`; {export} writes them to a file to fix and import again")  # fmt: skip
        raise typer.Exit(EXIT_DEAD_LETTERS)


def _announce(entry: Entry) -> None:
    if not _quiet:
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
        elif f.action == "empty":
            line = "empty: an empty partition of the export (its manifest lists no items)"
        else:
            line = "failed"
        if f.error is not None:
            _in_flags(f.error)
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
    if r.transformed is not None:
        typer.echo(f"the transform made {_count(r.transformed, 'item')} of them")
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
    return re.sub(r"^https?://", "", endpoints.redacted(url))


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _rate(run: Run) -> str:
    return "-" if run.rate is None else f"{run.rate:,.0f}/s"


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
        ("elapsed", f"{_duration(run.elapsed)} (running, pauses not counted)"),
        ("rate", "-" if run.rate is None else f"{run.rate:,.0f} items/s"),
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


SHOWN = 20  # dead letters `status RUN_ID` shows; `dead-letters` writes them all


def _run_json(run: Run, ledger: Path | None) -> dict[str, Any]:
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
                  "max_wcu": "max WCU", "max_outage": "max outage"}  # fmt: skip


def _settings(run: Run) -> str:
    """What the run writes with, and what a `resume` changed: "batch size 10 (25 until
    resumed at 2026-11-29 22:10 UTC), concurrency 16, ..."."""
    parts = []
    for name, value, before in settings_of(run):
        shown = "-" if value is None else f"{value:g}" if isinstance(value, float) else value
        unit = " s" if name == "max_outage" and value is not None else ""
        earlier = "; ".join(
            f"{'-' if old is None else old} until resumed at {at[:16].replace('T', ' ')} UTC"
            for old, at in before
        )
        parts.append(f"{_SETTING_NAMES[name]} {shown}{unit}" + (f" ({earlier})" if earlier else ""))
    return ", ".join(parts)


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
        _in_flags(e)
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


# Arguments of the library as its errors spell them, and the flags that say them here.
_FLAGS = {
    "batch_size": "--batch-size", "concurrency": "--concurrency", "max_wcu": "--max-wcu",
    "max_outage": "--max-outage", "create_keys": "--create-table --key", "new=True": "--new",
    "allow_remote=True": "--allow-remote", "region=NAME": "--region REGION",
}  # fmt: skip


def _in_flags(e: RimportError) -> RimportError:
    """Say a library error in this command's words: its flags where the library names its
    arguments (`batch_size` -> `--batch-size`), and keys as `--key NAME:TYPE`."""
    if isinstance(e, TableMissingError):
        e.hint = (
            "create it, or pass --create-table --key NAME:S [--sort-key NAME:S]"
            if e.param == "create_keys"
            else "pass the key it will have: --key NAME:S|N|B [--sort-key NAME:S|N|B]"
        )
    elif isinstance(e, KeyMismatchError) and e.stage != "run":  # a run's hint is a command
        fitting = e.mistake.fitting
        flags = " ".join(
            f"{flag} {k.name}:{k.type}"
            for flag, k in zip(("--key", "--sort-key"), fitting or (), strict=False)
        )
        if e.stage == "create":
            e.hint = "the table was not created; " + (
                f"pass {flags}" if fitting else "name in --key an attribute the items have"
            )
        else:
            e.hint = (
                f"the items fit {flags}"
                if fitting
                else ("check --key against an attribute the items have, or that this is the dump")
            )
    elif e.param in _FLAGS:
        flag = _FLAGS[e.param]
        e.message = e.message.replace(e.param, flag)
        e.hint = e.hint and e.hint.replace(e.param, flag)
    return e


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
        app(prog_name="rimport", args=_global_flags_first(sys.argv[1:]))
    except Exception:
        if _debug:
            raise
        import traceback

        _say(f"error: unexpected failure: {traceback.format_exc(limit=0).strip().splitlines()[-1]}")
        _say("hint: run again with --debug for the full traceback, and report it")
        sys.exit(EXIT_ERROR)


def _global_flags_first(args: list[str]) -> list[str]:
    """`rimport start f.json --debug` as `rimport --debug start f.json`: click takes the
    app's own flags only before the sub-command, and people add them at the end.

    Stops at `--`, and leaves alone what is the value of an option (`--table -q`)."""
    at = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
    tail = args[at:]
    end = tail.index("--") if "--" in tail else len(tail)
    if not any(a in GLOBAL_FLAGS for a in tail[:end]):
        return args
    valued = _options_taking_values()
    moved, kept, value_next = [], [], False
    for arg in tail[:end]:
        if arg in GLOBAL_FLAGS and not value_next:
            moved.append(arg)
            continue
        value_next = not value_next and arg in valued
        kept.append(arg)
    return args[:at] + moved + kept + tail[end:]


def _options_taking_values() -> set[str]:
    """The names of every option of every command that takes a value (`--table`, `-t`)."""
    names: set[str] = set()
    todo: list[Any] = [typer.main.get_command(app)]
    while todo:
        command = todo.pop()
        todo.extend(getattr(command, "commands", {}).values())
        for p in command.params:
            if p.param_type_name == "option" and not p.is_flag and not p.count:
                names.update(p.opts + p.secondary_opts)
    return names
