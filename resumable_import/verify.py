"""Prove a run's dump arrived: read it again as the run read it, and the table back.

The ledger says what rimport wrote; only reading the table back says what is there. The
items the dump says the table must hold are worked out as the run made them
(`expected`); the table is then read by key (`BatchGetItem`, strongly consistent) or by
a parallel Scan, and each item compared as DynamoDB compares values (`compare`).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import endpoint as endpoints
from . import s3
from .dynamo import connect
from .errors import Arg, Command, Text, UsageError
from .expected import (
    Meter,
    compare_again,
    dump_again,
    expected_db,
    load_expected,
    mark_dead_letters,
    read_table,
    table_of,
)
from .folder import S3Key, folder_of
from .hints import command
from .hooks import Hooks
from .ledger import Ledger, Run
from .loop import finished
from .repair import repair
from .run import for_reading, using_ledger
from .transform import Transform, TransformSpec
from .unchanged import same_transform
from .verdict import VerifyResult
from .verifyplan import plan_for


@dataclass(frozen=True)
class VerifyOptions:
    """`source`: where to read a run started on a stream again (a path, or `-`);
    `transform`: the run's transform, for one given to `import_file` as a function;
    `profile`: the AWS profile for credentials; `method`: "get" (by key, in proportion
    to the dump) or "scan" (a parallel Scan, in proportion to the table) [default: the one
    that costs fewer read units; scan with `extra`]; `extra`: also count the table's items
    the dump does not hold (needs the scan); `sample`: check only this share of the keys
    (0 < sample <= 1), drawn at random; `dry_run`: read the dump and say how the table
    would be read and what it would cost, reading nothing of the table; `repair`: write the
    missing and different items again through the run's writer, then check them again."""

    source: str | Path | None = None
    transform: TransformSpec | None = None
    profile: str | None = None
    method: str | None = None
    extra: bool = False
    sample: float | None = None
    dry_run: bool = False
    repair: bool = False


def verify_run(
    run_id: str,
    options: VerifyOptions = VerifyOptions(),
    hooks: Hooks = Hooks(),
    *,
    ledger: str | Path | Ledger | None = None,
    client: Any = None,
) -> VerifyResult:
    """Compare a completed run's table with its dump, item by item; with `repair`, write
    again what differs. Without it nothing is written to the table.

    Refused: a run not read to its end (resume it first), a file changed since (as
    `resume` refuses it), a run read from a stream without `options.source`, a table gone.
    `client` stands in for the endpoint's botocore client. `hooks.notice` is told how the
    table will be read, and at what cost, before it is; `hooks.on_progress` how far the
    dump, then the table, has been read.
    """
    started = time.monotonic()
    s3.use_profile(options.profile)
    opened = using_ledger(ledger) if options.repair else for_reading(ledger)
    with opened as book:
        if options.repair:
            book.ready_for_runs()
        run = book.run(run_id)
        _refuse_unfit(run, options)
        loaded = _transform_of(run, options.transform)
        dump = dump_again(run, options.source)
        given = client  # a stand-in for the endpoint: the repair writes through it too
        if client is None:
            where = endpoints.parse(run.endpoint)
            endpoints.check(where, run.recorded.allow_remote)
            client = connect(where, run.region, profile=options.profile).client
        with book.lock(run.id) if options.repair else contextlib.nullcontext():
            info = table_of(run, client)
            result = VerifyResult(run.id, run.table, sample=options.sample)
            with (
                tempfile.TemporaryDirectory(prefix="rimport-verify-") as tmp,
                closing(expected_db(Path(tmp) / "expected.sqlite")) as db,
            ):
                meter = Meter(hooks, started)
                with closing(dump.location):
                    load_expected(db, dump, info.keys, loaded, run, options.sample, meter)
                result.expected_missing = mark_dead_letters(db, book, run, info.key_names)
                plan = plan_for(db, info, options.method, options.extra, options.sample)
                result.plan = plan.as_dict()
                meter.total = plan.size
                if hooks.notice:
                    hooks.notice(plan.line())
                result.method = plan.method
                if options.dry_run:
                    result.dry_run = True
                    result.elapsed = time.monotonic() - started
                    return result
                read_table(db, client, info, result, plan, options.extra, meter)
                if options.repair and not result.ok:
                    result.repaired = repair(db, book, run, given, info.key_names, hooks,
                                             options.profile)  # fmt: skip
                    again = compare_again(db, client, info, VerifyResult(run.id, run.table),
                                          meter)  # fmt: skip
                    result.unrepaired = again.missing + again.different
                    result.read_units += again.read_units
        result.elapsed = time.monotonic() - started
        if not book.readonly:  # a ledger that cannot be written to still verifies
            book.record_verification(run.id, result.verification())
            result.recorded = True
        return result


def _refuse_unfit(run: Run, options: VerifyOptions) -> None:
    if options.sample is not None and not 0 < options.sample <= 1:
        raise UsageError(
            Text(Arg("sample", options.sample), ": a share of the keys, more than 0 and at most 1"),
            Text("pass e.g. ", Arg("sample", "0.01"), " to check 1% of the keys"),
        )
    if options.sample is not None and options.extra:
        raise UsageError(
            Text(Arg("extra"), " counts what the dump does not hold, which a sample cannot"),
            Text("leave out ", Arg("sample"), " to count the extra items"),
        )
    if options.repair and options.dry_run:
        raise UsageError(
            Text(Arg("dry_run"), " reads nothing of the table, so there is nothing to repair"),
            Text("leave out one of ", Arg("dry_run"), " and ", Arg("repair")),
        )
    if options.method not in (None, "get", "scan"):
        raise UsageError(
            f"method={options.method!r}: get (by key) or scan",
            Text("pass ", Arg("method", "get"), " or ", Arg("method", "scan")),
        )
    if options.extra and options.method == "get":
        raise UsageError(
            Text(
                Arg("extra"), " needs the table scanned: reading by key finds only the dump's keys"
            ),
            Text("pass ", Arg("method", "scan"), " with it, or leave out ", Arg("method")),
        )
    if not finished(run):
        raise UsageError(
            f"run {run.id} is {run.state} at item {run.items_committed:,}: only part of "
            f"{run.file} is in the table",
            Text("finish it with ", command(run, "resume", run.id), ", then verify it"),
        )
    if options.source is not None and run.source != "stream":
        raise UsageError(
            Text(
                f"run {run.id} read {run.file}, not a stream: ",
                Arg("source"),
                " is for a run started on a stream",
            ),
            Text("verify it with ", command(run, "verify", run.id)),
        )


def _transform_of(run: Run, given: TransformSpec | None) -> Transform | None:
    """The run's transform, as `resume` takes it again: its code unchanged, or the items it
    made cannot be worked out again."""
    try:
        return same_transform(run, given)
    except UsageError as e:
        said, _, _ = str(e.message).partition("; resuming would")
        if said != str(e.message):
            e.message = said + "; the items it made then cannot be worked out again"
            e.hint = "put the transform back as it was to verify the run"
        raise


def runs_of(targets: list[str], ledger: str | Path | Ledger | None = None) -> list[str]:
    """The run ids that `targets` name, in order: each a run id (or a unique prefix of
    one) or a folder (a local one, or an S3 prefix), which names the last run of each of
    its files started from it."""
    ids: list[str] = []
    with for_reading(ledger) as book:
        runs = None
        for target in targets:
            folder = folder_of(target)
            if isinstance(folder, S3Key) or folder.is_dir():
                runs = runs if runs is not None else book.runs()
                name = str(folder.resolve())
                latest = {r.file: r.id for r in sorted(runs, key=lambda r: r.started_at)
                          if r.folder == name}  # fmt: skip
                if not latest:
                    raise UsageError(
                        f"{target}: no run was started from this folder",
                        Text("import it with ", Command("start", (target,), (Arg("table", "T"),))),
                    )
                ids += latest.values()
            else:
                ids.append(book.run(target).id)
    return list(dict.fromkeys(ids))
