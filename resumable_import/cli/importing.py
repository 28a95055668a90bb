"""The commands that read a dump: `start` and `resume` write it, `validate` only checks it.

Also what they show while they do: the progress meter, the run id first, and a lower
priority for this process when DynamoDB Local shares the machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from resumable_import import (
    DEFAULT_CONCURRENCY,
    Entry,
    FolderResult,
    Hooks,
    ImportOptions,
    ImportResult,
    InputError,
    KeyMismatchError,
    KeySpec,
    Report,
    ResumeOptions,
    Run,
    SettingsChange,
    StagingPlan,
    UsageError,
    VerifyOptions,
    WriteSettings,
    empty_partition,
    folder_of,
    import_file,
    import_folder,
    import_requests,
    import_via,
    is_loopback,
    load_transform,
    plan,
    plan_via,
    redacted,
    request_tables,
    resume_run,
    table_for,
    table_keys,
    validate_file,
)

from .app import app, flags, guard
from .hints import in_flags
from .meter import MODES, Meter, open_meter
from .options import (
    BATCH_SIZE,
    CONCURRENCY,
    MAX_OUTAGE,
    MAX_WCU,
    WORKERS,
    EndpointOpt,
    FileArg,
    FormatOpt,
    ItemsPathOpt,
    KeyOpt,
    LedgerOpt,
    PatternOpt,
    ProfileOpt,
    ProgressOpt,
    RegionOpt,
    RunEndpointOpt,
    RunIdArg,
    RunRegionOpt,
    SortKeyOpt,
    TableOpt,
    TransformOpt,
)
from .render import (
    EXIT_DEAD_LETTERS,
    finish,
    finish_folder,
    imported_before,
    print_report,
    say,
)
from .verify import verify_each


@app.command()
def start(
    file: FileArg,
    table: TableOpt = None,
    pattern: PatternOpt = None,
    endpoint: EndpointOpt = None,
    region: RegionOpt = None,
    ledger: LedgerOpt = None,
    batch_size: Annotated[int, BATCH_SIZE] = WriteSettings.batch_size,
    format: FormatOpt = "auto",
    items_path: ItemsPathOpt = None,
    concurrency: Annotated[int, CONCURRENCY] = DEFAULT_CONCURRENCY,
    max_wcu: Annotated[float | None, MAX_WCU] = None,
    workers: Annotated[int | None, WORKERS] = None,
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
    max_outage: Annotated[float, MAX_OUTAGE] = 300,
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
    profile: ProfileOpt = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Once the import completes, read the table back and compare it with the "
            "dump, as `rimport verify` does (exit 3 when they differ).",
        ),
    ] = False,
    via: Annotated[
        str | None,
        typer.Option(
            "--via",
            metavar="s3://BUCKET/PREFIX/",
            help="Stage the checked items in S3 (gzip DynamoDB JSON, each key once, its "
            "last value) and hand them to StartBulkPutItems (an existing table), or with "
            "--create-table --key to ImportTable, which creates it; the prefix must be empty.",
            show_default=False,
        ),
    ] = None,
    via_objects: Annotated[
        int | None,
        typer.Option(
            "--via-objects",
            metavar="N",
            min=1,
            help="With --via: spread the keys over N objects [default: one per 256 MiB of "
            "the dump].",
            show_default=False,
        ),
    ] = None,
    via_compression: Annotated[
        str, typer.Option("--via-compression", metavar="KIND", help="With --via: gzip or zstd.")
    ] = "gzip",
    performance_tier: Annotated[
        str | None,
        typer.Option(
            "--performance-tier",
            metavar="TIER",
            help="With --via into an existing table: standard or accelerated.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Import a dump, or every dump of a folder, each file as a run; prints run ids first.

    Started again on a folder, it skips the files already imported and continues the
    unfinished ones.
    """
    _check_progress(progress)
    if verify and str(file) == "-":
        guard(_no_verify_of_a_stream)
    if via is not None:
        tier = performance_tier.upper() if performance_tier else None
        _start_via(file, table, via, via_objects, tier, via_compression, dry_run, ledger,
                   progress,
                   ImportOptions(format=format, items_path=items_path, endpoint=endpoint,
                                 create_keys=guard(lambda: _key_specs(key, sort_key)),
                                 create_table=create_table, region=region,
                                 allow_remote=allow_remote, transform=transform,
                                 settings=WriteSettings(max_wcu=max_wcu),
                                 new=new, profile=profile))  # fmt: skip
        return
    zstd = via_compression if via_compression != "gzip" else None
    for flag, value in (("--via-objects", via_objects), ("--performance-tier", performance_tier),
                        ("--via-compression", zstd)):  # fmt: skip
        if value is not None:
            guard(lambda f=flag: _needs_via(f))
    if dry_run:
        _validate(file, table, pattern, key, sort_key, (endpoint, region, profile), format,
                  items_path, progress, transform)  # fmt: skip

    def work() -> ImportResult | FolderResult:
        keys = _key_specs(key, sort_key)
        if create_table and not keys and not _is_folder(file):  # a backup says its keys
            raise UsageError("--create-table needs --key NAME:S|N|B")
        if keys and not create_table:
            raise UsageError("--key and --sort-key go with --create-table or --dry-run")
        with _meter(progress) as bar:
            settings = WriteSettings(batch_size, concurrency, max_wcu, max_outage, workers)
            options = ImportOptions(
                format=format, items_path=items_path, create_keys=keys, endpoint=endpoint,
                create_table=create_table,
                region=region, allow_remote=allow_remote, transform=transform,
                settings=settings, new=new, profile=profile,
            )  # fmt: skip
            hooks = Hooks(on_progress=bar, on_start=_starting(bar), notice=bar.note,
                          on_file=_announce)  # fmt: skip
            if _is_folder(file):
                return import_folder(file, table, options, hooks, pattern=pattern, ledger=ledger)
            if pattern:
                raise UsageError("--pattern goes with a folder")
            if request_tables(file, format) is not None:  # each table a run, as in a folder
                return import_requests(file, table, options, hooks, ledger=ledger)
            return import_file(file, table or _table_for(file), options, hooks, ledger=ledger)

    result = guard(work)
    after: Callable[[], None] = lambda: None  # noqa: E731
    if verify:
        ran = [f.result for f in result.files if f.result] if isinstance(
            result, FolderResult) else [result]  # fmt: skip
        done = [r.run_id for r in ran if r.state in ("completed", "completed_with_failures")]
        after = partial(verify_each, done, VerifyOptions(profile=profile), ledger, progress)
    if isinstance(result, FolderResult):
        _then(lambda: finish_folder(result), after)
    elif result.imported_before:
        typer.echo(result.run_id)
        if not flags.quiet:
            say(imported_before(file, table or _table_for(file), result))
        after()
    else:
        _then(lambda: finish(result, ledger), after)


def _start_via(file: str, table: str | None, via: str, objects: int | None, tier: str | None,
               compression: str, dry_run: bool, ledger: Path | None, progress: str,
               options: ImportOptions) -> None:  # fmt: skip
    """`start --via`: one file, staged in S3 and handed to StartBulkPutItems or
    ImportTable (or, with --dry-run, only what would be staged)."""

    def work() -> ImportResult | StagingPlan:
        if _is_folder(file) or file == "-":
            raise UsageError("--via stages one file", "give the path of one dump file")
        if options.create_table and not options.create_keys:
            raise UsageError(
                "--via --create-table hands the items to ImportTable, which creates the "
                "table: it needs its key",
                "add --key NAME:S|N|B (and --sort-key if it has one)",
            )
        if options.create_keys and not options.create_table:
            raise UsageError("--key and --sort-key go with --create-table")
        name = table or _table_for(file)
        if dry_run:
            keys = options.create_keys or table_keys(name, options.endpoint, options.region,
                                                     options.profile)  # fmt: skip
            return plan_via(file, keys, via, options, objects, bulk=not options.create_table)
        with _meter(progress) as bar:
            hooks = Hooks(on_progress=bar, on_start=_starting(bar), notice=bar.note)
            return import_via(file, name, via, options, hooks, objects=objects, tier=tier,
                              compression=compression, ledger=ledger)  # fmt: skip

    result = guard(work)
    if isinstance(result, StagingPlan):
        typer.echo(
            f"would stage {result.items:,} items ({result.bytes:,} bytes of JSON "
            f"lines before gzip) in {result.objects:,} objects under {via}"
        )
        if result.refused:
            typer.echo(f"{result.refused:,} elements would be refused (dead letters)")
        typer.echo(f"then: {result.operation} into table {table or _table_for(file)}")
        return
    finish(result, ledger)


def _needs_via(flag: str) -> None:
    raise UsageError(
        f"{flag} goes with --via", f"add --via s3://BUCKET/PREFIX/ or leave out {flag}"
    )


def _then(report: Callable[[], None], after: Callable[[], None]) -> None:
    """The import's report, then what comes after it (a verification), whatever the
    report's exit code; the worse of the two exit codes is the command's."""
    code = 0
    try:
        report()
    except typer.Exit as e:
        code = e.exit_code
    try:
        after()
    except typer.Exit as e:
        code = max(code, e.exit_code)
    if code:
        raise typer.Exit(code)


def _no_verify_of_a_stream() -> None:
    raise UsageError(
        "--verify reads the dump again once it is imported, and a stream cannot be read again",
        "leave out --verify, then give the same bytes to `rimport verify RUN_ID --from -`",
    )


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
    profile: ProfileOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Read all of a dump (or each of a folder) and report what DynamoDB would refuse.

    Writes nothing. Exits 0 when every item can be written, 3 when some cannot, 2 when a
    file cannot be read to the end. --ledger is taken, as by every command, and unused:
    validate records nothing.
    """
    _check_progress(progress)
    _validate(file, table, pattern, key, sort_key, (endpoint, region, profile), format,
              items_path, progress, transform)  # fmt: skip


@app.command()
def resume(
    run_id: RunIdArg,
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
    batch_size: Annotated[int | None, BATCH_SIZE] = None,
    concurrency: Annotated[int | None, CONCURRENCY] = None,
    max_wcu: Annotated[float | None, MAX_WCU] = None,
    max_outage: Annotated[float | None, MAX_OUTAGE] = None,
    workers: Annotated[int | None, WORKERS] = None,
    progress: ProgressOpt = "auto",
    endpoint: RunEndpointOpt = None,
    region: RunRegionOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Continue a run from its last checkpoint, after checking the file is unchanged.

    --batch-size, --concurrency, --max-wcu, --max-outage and --workers replace the run's
    own for the rest of it (after throttling, or a proxy's 413); `rimport status RUN_ID`
    shows the change.
    """
    _check_progress(progress)

    def work() -> ImportResult:
        with _meter(progress) as bar:
            change = SettingsChange(batch_size, concurrency, max_wcu, max_outage, workers)
            hooks = Hooks(on_progress=bar, on_start=_starting(bar), notice=bar.note)
            options = ResumeOptions(source, settings=change, profile=profile, endpoint=endpoint,
                                    region=region)  # fmt: skip
            return resume_run(run_id, options, hooks, ledger=ledger)

    finish(guard(work), ledger)


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
    aws: tuple[str | None, str | None, str | None], fmt: str, items_path: str | None,
    progress: str, transform_spec: str | None = None,
) -> NoReturn:  # fmt: skip
    """`aws`: the endpoint, region and profile to read the table's key from."""

    def work() -> list[Report]:
        given = _key_specs(key, sort_key)
        transform = load_transform(transform_spec) if transform_spec else None
        if not _is_folder(path):
            with _meter(progress) as bar:
                keys = given or table_keys(table or _table_for(path), *aws)
                return [validate_file(path, keys, fmt=fmt, items_path=items_path,
                                      on_progress=bar, transform=transform)]  # fmt: skip
        todo = plan(folder_of(path), table, pattern, fmt)
        reports = []
        for entry in todo.entries:  # a file that cannot be read does not stop the others
            schema = todo.schemas.get(entry.table)  # a backup's: its schema.json says the key
            keys = given or (schema.keys if schema else table_keys(entry.table, *aws))
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
                        items_path=todo.items_path or items_path,
                        on_progress=bar,
                        transform=transform,
                    )
                reports.append(report)
            except (InputError, KeyMismatchError) as e:
                what = "unreadable" if isinstance(e, InputError) else "not for this key"
                reports.append(Report(entry.path, what, stopped=in_flags(e)))
        return reports

    reports = guard(work)
    for report in reports:
        print_report(report)
    if any(r.stopped for r in reports):
        raise typer.Exit(2)
    raise typer.Exit(0 if all(r.clean for r in reports) else EXIT_DEAD_LETTERS)


def _check_progress(kind: str) -> None:
    if kind not in MODES:
        say(f"error: --progress {kind!r} is not one of {', '.join(MODES)}")
        say("hint: --progress log writes a line every few seconds, for logs and CI")
        raise typer.Exit(2)


def _meter(kind: str) -> Meter:
    return open_meter(kind, quiet=flags.quiet, verbose=flags.verbose)


def _starting(bar: Meter) -> Callable[[Run], None]:
    def start(run: Run) -> None:
        _give_way(run.endpoint)
        typer.echo(run.id)
        if not flags.quiet:
            verb = "resuming" if run.items_committed else "importing"
            say(f"run {run.id}: {verb} {run.file} into table {run.table} at "
                 f"{redacted(run.endpoint)}")  # fmt: skip
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
    if is_loopback(endpoint) and os.environ.get("RIMPORT_NICE") != "0":
        now = os.nice(0)
        if now < _NICENESS:  # idempotent, and never raises a priority the user lowered
            os.nice(_NICENESS - now)


def _announce(entry: Entry) -> None:
    if not flags.quiet:
        say(f"{entry.path} -> table {entry.table}")
