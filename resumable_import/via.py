"""A run `--via s3://BUCKET/PREFIX/`: read and check the dump as any run does, stage its
items in S3 (`staging`), hand them to ImportTable (`handoff`) and follow it to its end.

The run is an ordinary run of the ledger (its file, table, hashes, dead letters), plus a
`staging` record: where it stages, into how many objects, and the operation's ARN, state
and counts. `resume` finishes staging (the objects not yet uploaded) and re-attaches to
the operation; an interrupted run leaves an operation already started running in AWS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import endpoint as endpoints
from . import handoff, s3, staging
from . import ledger as states
from .dynamo import connect, describe_table, resolve_endpoint
from .errors import Arg, LedgerError, RimportError, RunInterrupted, Text, UsageError
from .expected import reconcile
from .firstitems import refuse_a_wrong_key, settle_reading
from .hints import command, resume_command, spelled
from .hooks import Hooks
from .ledger import DeadLetter, Ledger, Run
from .loop import ImportResult, finished, result_of, stopped_before_writing
from .options import ImportOptions, Recorded
from .pipeline import Ready, ready_batches
from .progress import Figures, known
from .reader import Dump, Shape, items_as
from .requestitems import FORMAT as REQUESTS
from .runlog import event, log_to
from .stagingdb import Operation, StagedObject
from .transform import Transform, load
from .unchanged import check_unchanged, identity_of


@dataclass(frozen=True)
class StagingPlan:
    """What `--dry-run` with `--via` says would be staged, and what would take it."""

    items: int  # distinct keys: each staged once, with its last value
    refused: int  # elements that would be dead letters
    bytes: int  # of the JSON lines, before compression
    objects: int
    operation: str


def import_via(
    path: str,
    table: str,
    via: str,
    options: ImportOptions = ImportOptions(),
    hooks: Hooks = Hooks(),
    *,
    objects: int | None = None,
    tier: str | None = None,
    compression: str = "gzip",
    ledger: str | Ledger | None = None,
) -> ImportResult:
    """Import `path` through S3 as a run: into a new table by ImportTable when
    `options.create_table` (with `options.create_keys`), else into the existing table by
    StartBulkPutItems (at most `options.settings.max_wcu` write units a second, at least
    1,024; `tier` STANDARD or ACCELERATED)."""
    kind = "import" if options.create_table else "bulk"
    keys = _keys_for_import(options) if kind == "import" else ()
    max_wcu = _bulk_wcu(options.settings.max_wcu) if kind == "bulk" else None
    if tier is not None and (kind != "bulk" or tier not in ("STANDARD", "ACCELERATED")):
        raise UsageError(
            f"performance tier {tier!r}: StartBulkPutItems (an existing table) takes "
            "STANDARD or ACCELERATED",
            Text("leave out ", Arg("tier"), " or give one of those"),
        )
    if compression not in staging.COMPRESSIONS:
        raise UsageError(
            f"{compression!r}: staged objects are gzip or zstd",
            Text("give ", Arg("compression", "zstd"), " or leave it out"),
        )
    bucket, prefix = staging.split_via(via)
    where = resolve_endpoint(options.endpoint)
    endpoints.check(where, options.allow_remote)
    loaded = load(options.transform) if options.transform is not None else None
    s3.use_profile(options.profile)
    dump = Dump.open(path, options.format, options.items_path, checkpoints=True)
    if dump.location.kind == "stream":
        raise UsageError(
            "staging reads the dump again to resume, and a stream cannot be read again",
            Text("save it to a file first, then ", Arg("via"), " from that file"),
        )
    count = staging.object_count(dump.size, objects)
    with _using(ledger) as book:
        book.ready_for_runs()
        conn = connect(where, options.region, profile=options.profile)
        client, region = conn.client, conn.region
        info = describe_table(client, table)
        if kind == "bulk":
            if info is None:
                raise UsageError(
                    f"no table {table!r}: StartBulkPutItems puts into an existing table",
                    Text("let ImportTable create it: add ", Arg("create_table", True), " ",
                         Arg("key"), " NAME:S|N|B"),
                )  # fmt: skip
            keys = info.keys
            _refuse_a_global_table(client, table)
        elif info is not None:
            raise UsageError(
                f"table {table!r} exists: ImportTable creates a new table",
                Text("import into a new table name with ", Arg("table"), ", or leave out ",
                     Arg("via")),
            )  # fmt: skip
        last = None if options.new else book.latest_run(dump.location.name, table)
        if last and not finished(last) and not stopped_before_writing(last):
            raise UsageError(
                f"{last.file} already has an unfinished run {last.id} into table {table!r}",
                Text("continue it with ", command(last, "resume", last.id), ", or pass ",
                     Arg("new", True), " to start over"),
            )  # fmt: skip
        refuse_a_wrong_key(dump, keys, loaded)
        settle_reading(dump, keys, loaded)
        staging.refuse_foreign(s3.client(), bucket, prefix, [])
        digest, blocks = identity_of(dump)
        run = book.create_run(
            file=dump.location.name, file_size=dump.size or 0, file_hash=digest,
            block_hashes=blocks, table=table, endpoint=where.url, region=region,
            format=options.format, shape=dump.describe(),
            options=Recorded(options.settings, options.allow_remote,
                             tuple(spelled(k) for k in keys),
                             loaded.record() if loaded else None),
            source=None if dump.location.kind == "file" else dump.location.kind,
            table_identity=info.identity if info else None,
        )  # fmt: skip
        book.staging.plan(
            run.id, f"s3://{bucket}/{prefix}", count, kind, max_wcu, tier, compression
        )
        with book.lock(run.id):
            if hooks.on_start:
                hooks.on_start(run)
            return _go(book, run, dump, client, keys, loaded, hooks)


def resume_via(book: Ledger, run: Run, client: Any, hooks: Hooks,
               loaded: Transform | None) -> ImportResult:  # fmt: skip
    """Go on with a `--via` run (under its lock): stage what is missing, then follow."""
    dump = Dump(run.file, Shape.parse(run.shape), items_as=items_as(run.format))
    op = book.staging.of(run.id)
    assert op is not None
    if len(book.staging.objects(run.id)) < op.objects:  # the dump is read again
        if run.source == "s3":
            from .unchanged import check_same_object

            check_same_object(run, dump)
        else:
            check_unchanged(book, run, dump)
    if hooks.on_start:
        hooks.on_start(run)
    keys = tuple(_spec(k) for k in run.recorded.keys)
    return _go(book, run, dump, client, keys, loaded, hooks)


def staging_of(
    run_id: str, *, ledger: str | Ledger | None = None
) -> tuple[Operation, list[StagedObject]] | None:
    """A `--via` run's plan, operation and staged objects, for `status`; None for a run
    that writes itself."""
    with _using(ledger) as book:
        run = book.run(run_id)
        op = book.staging.of(run.id)
        return None if op is None else (op, book.staging.objects(run.id))


def cancel_via(run_id: str, *, ledger: str | Ledger | None = None) -> Operation:
    """Cancel a `--via` run's StartBulkPutItems; the operation as it then says it is. What
    it wrote stays written. A run no process follows is marked failed here; one that is
    followed ends so itself, when its follower sees the operation cancelled."""
    with _using(ledger) as book:
        run = book.run(run_id)
        op = book.staging.of(run.id)
        if op is None or op.operation != "bulk" or op.arn is None:
            bulk = op is not None and op.operation == "bulk"
            what = "has not started its" if bulk else "hands nothing to"
            raise UsageError(
                f"run {run.id} {what} StartBulkPutItems: there is no operation to cancel",
                Text(command(run, "status", run.id), " shows where it stands"),
            )
        where = endpoints.parse(run.endpoint)
        endpoints.check(where, run.recorded.allow_remote)
        client = connect(where, run.region).client
        handoff.cancel(client, op.arn)
        said = handoff.describe(client, "bulk", op.arn)
        book.staging.followed(run.id, **said)
        if not book.is_locked(run.id) and not finished(run):
            before = f"{said['imported_items'] or 0:,} items written before"
            book.set_state(run.id, states.FAILED, error=f"cancelled by the user ({before})")
        event(logging.INFO, run.id, "cancelled", f"cancelled {op.arn}: {said['status']}")
        op = book.staging.of(run.id)
        assert op is not None
        return op


def plan_via(path: str, keys: tuple[Any, ...], via: str, options: ImportOptions,
             objects: int | None = None, *, bulk: bool = False) -> StagingPlan:  # fmt: skip
    """Read the dump as staging would, keeping nothing: what would be staged."""
    staging.split_via(via)
    loaded = load(options.transform) if options.transform is not None else None
    s3.use_profile(options.profile)
    dump = Dump.open(path, options.format, options.items_path, checkpoints=False)
    settle_reading(dump, keys, loaded)
    count = staging.object_count(dump.size, objects)
    source = ready_batches(dump, None, keys, 25, transform=loaded)
    with staging.scratch() as folder:
        read = staging.spill(source, count, folder, set(range(count)),
                             requests=dump.items_as == REQUESTS)  # fmt: skip
        made = [staging.build(folder, n, compress=False)[1:] for n in range(count)]
    return StagingPlan(sum(m[0] for m in made), len(read.rejected), sum(m[1] for m in made),
                       count, "StartBulkPutItems (the existing table)" if bulk
                       else "ImportTable (a new table, on-demand)")  # fmt: skip


@contextlib.contextmanager
def _using(ledger: str | Ledger | None) -> Iterator[Ledger]:
    if isinstance(ledger, Ledger):
        yield ledger
    else:
        with Ledger(ledger) as book:
            yield book


def _refuse_a_global_table(client: Any, table: str) -> None:
    """StartBulkPutItems does not write to a table with replicas (a global table)."""
    replicas = client.describe_table(TableName=table)["Table"].get("Replicas")
    if replicas:
        raise UsageError(
            f"table {table!r} is a global table (replicated to {len(replicas)} more "
            "Regions): StartBulkPutItems does not support global tables",
            Text("leave out ", Arg("via"), " to write it with BatchWriteItem"),
        )


def _bulk_wcu(given: float | None) -> int | None:
    if given is not None and given < 1024:
        raise UsageError(
            f"StartBulkPutItems takes MaxWriteRequestUnits of at least 1,024, not {given:g}",
            Text("give ", Arg("max_wcu", 1024), " or more, or leave it out"),
        )
    return None if given is None else int(given)


def _keys_for_import(options: ImportOptions) -> tuple[Any, ...]:
    if not options.create_keys:
        raise UsageError(
            "staging hands the items to ImportTable, which creates the table: it needs its key",
            Text("add ", Arg("create_table", True), " and ", Arg("key"), " NAME:S|N|B"),
        )
    return options.create_keys


def _spec(text: str) -> Any:
    from .keys import KeySpec

    return KeySpec.parse(text)


def _go(book: Ledger, run: Run, dump: Dump, client: Any, keys: tuple[Any, ...],
        loaded: Transform | None, hooks: Hooks) -> ImportResult:  # fmt: skip
    started = time.monotonic()
    op = book.staging.of(run.id)
    assert op is not None
    book.set_state(run.id, states.RUNNING)
    following = False
    name = handoff.NAMES[op.operation]
    with log_to(book):
        try:
            if op.arn is None:
                _stage(book, run, dump, keys, loaded, op, hooks)
                bucket, prefix = staging.split_via(op.via)
                data = staging.data_prefix(prefix)
                if op.operation == "bulk":
                    said = handoff.start_bulk(client, run.id, run.table, bucket, data,
                                              f"{prefix}report/", op.max_wcu, op.tier,
                                              op.compression)  # fmt: skip
                else:
                    said = handoff.start_import(client, run.id, run.table, keys, bucket, data,
                                                op.compression)  # fmt: skip
                book.staging.followed(run.id, **said)
            else:
                said = handoff.describe(client, op.operation, op.arn)
            following = True
            event(logging.INFO, run.id, "handed_off",
                  f"{name} {said['arn']} into {run.table}: {said['status']}",
                  arn=said["arn"])  # fmt: skip
            said = handoff.follow(client, op.operation, said, _told(book, run, hooks, started))
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", 2)
            what = "interrupted" if signum == 2 else f"stopped by signal {signum}"
            left = f" (its {name} goes on in DynamoDB)" if following else ""
            book.set_state(run.id, states.INTERRUPTED, error=f"{what} by the user{left}")
            raise RunInterrupted(
                f"{what}; run {run.id} stopped{left}",
                Text("follow it (or finish staging) with ", resume_command(run)),
                signum=signum,
            ) from None
        except RimportError as e:
            with contextlib.suppress(LedgerError):
                book.set_state(run.id, states.FAILED, error=e.message)
            if e.hint is None:
                e.hint = Text("once fixed, continue with ", resume_command(run))
            raise
        except BaseException as e:
            with contextlib.suppress(Exception):
                book.set_state(run.id, states.FAILED, error=f"unexpected {type(e).__name__}: {e}")
            raise
        return _ended(book, run, client, loaded, hooks, op, said, started)


def _stage(book: Ledger, run: Run, dump: Dump, keys: tuple[Any, ...],
           loaded: Transform | None, op: Operation, hooks: Hooks) -> None:  # fmt: skip
    """Stage the objects not yet uploaded; the first time through, record what was read
    (the checkpoint at the end of the dump, and the refused elements as dead letters)."""
    done = {o.number for o in book.staging.objects(run.id)}
    wanted = set(range(op.objects)) - done
    if not wanted:
        return
    bucket, prefix = staging.split_via(op.via)
    client = s3.client()
    staging.refuse_foreign(client, bucket, prefix, book.staging.objects(run.id))
    started = time.monotonic()
    event(logging.INFO, run.id, "staging",
          f"staging {len(wanted)} of {op.objects} objects to {op.via}",
          objects=op.objects, wanted=len(wanted))  # fmt: skip

    def progress(batch: Ready, read: staging.Read) -> None:
        if hooks.on_progress:
            hooks.on_progress(Figures(read.items, batch.position, known(dump.size),
                                      time.monotonic() - started))  # fmt: skip

    source = ready_batches(dump, None, keys, 25, transform=loaded)
    with staging.scratch(run.id) as folder:
        read = staging.spill(source, op.objects, folder, wanted,
                             requests=dump.items_as == REQUESTS, progress=progress)  # fmt: skip
        if book.run(run.id).items_committed == 0:
            dead = [DeadLetter(i, json.loads(item), code, message, 0, False)
                    for i, item, code, message in read.rejected]  # fmt: skip
            book.commit(run.id, items_committed=read.items, byte_offset=read.end, written=0,
                        dead=dead)  # fmt: skip
        for number in sorted(wanted):
            path, items, size = staging.build(folder, number, compression=op.compression)
            key = staging.object_key(prefix, number, op.objects, op.compression)
            etag = staging.upload(client, path, bucket, key)
            path.unlink()
            book.staging.uploaded(run.id, StagedObject(number, key, etag, items, size))
            event(logging.INFO, run.id, "staged",
                  f"staged s3://{bucket}/{key}: {items} items, {size} bytes",
                  key=key, items=items, bytes=size)  # fmt: skip
            if hooks.notice:
                hooks.notice(f"staged object {number + 1} of {op.objects}: {items:,} items")
    event(logging.INFO, run.id, "staged_all", f"staged {op.objects} objects to {op.via}",
          objects=op.objects, seconds=round(time.monotonic() - started, 3))  # fmt: skip


def _told(book: Ledger, run: Run, hooks: Hooks, started: float) -> Any:
    def told(said: dict[str, Any]) -> None:
        book.staging.followed(run.id, **said)
        if hooks.on_progress:
            hooks.on_progress(Figures(int(said["processed_items"] or 0),
                                      int(said["processed_bytes"] or 0), said["total_bytes"],
                                      time.monotonic() - started))  # fmt: skip

    return told


def _ended(book: Ledger, run: Run, client: Any, loaded: Transform | None, hooks: Hooks,
           op: Operation, said: dict[str, Any], started: float) -> ImportResult:  # fmt: skip
    """The run's end, as the operation's own: completed (with failures when it or the
    read refused items), or failed with its failure code."""
    name = handoff.NAMES[op.operation]
    status = said["status"]
    errors = int(said["error_count"] or 0)
    imported = int(said["imported_items"] or 0)
    now = book.run(run.id)
    if not now.items_written:  # a resume that describes the ended import again adds none
        book.commit(run.id, items_committed=now.items_committed, byte_offset=now.byte_offset,
                    written=imported, dead=[])  # fmt: skip
    if (info := describe_table(client, run.table)) is not None:
        book.set_table_identity(run.id, info.identity)
    staged = sum(o.items for o in book.staging.objects(run.id))
    if status in handoff.DONE_STATES and imported + errors < staged:
        state = states.FAILED  # an operation that says it is done but lost items is not
        error = (f"{name} {status} but wrote {imported:,} of the {staged:,} items staged "
                 f"and refused {errors:,}")  # fmt: skip
    elif status in handoff.DONE_STATES:
        error = _reconciled(book, run, client, loaded, hooks, op, said) if errors else None
        failures = errors or book.run(run.id).dead_letters
        state = states.COMPLETED_WITH_FAILURES if failures else states.COMPLETED
    else:
        state = states.FAILED
        code = said["failure_code"] or status
        error = f"{name} {status}: {code}: {said['failure_message'] or ''}".rstrip(": ")
    book.set_state(run.id, state, error=error)
    event(logging.INFO, run.id, "finished", f"{state}: {name} {status}, {imported} items "
          f"imported, {errors} refused", state=state, imported=imported, errors=errors)  # fmt: skip
    result = result_of(book.run(run.id), time.monotonic() - started, book)
    if state == states.FAILED:
        raise RimportError(
            f"run {run.id}: {error}",
            Text("see the run with ", command(run, "status", run.id)),
        )
    return result


def _reconciled(book: Ledger, run: Run, client: Any, loaded: Transform | None, hooks: Hooks,
                op: Operation, said: dict[str, Any]) -> str:  # fmt: skip
    """Find the items the operation refused by reading the table back, and keep them as
    the run's dead letters (`expected.reconcile`); what the run's end then says."""
    name, errors = handoff.NAMES[op.operation], int(said["error_count"])
    if op.operation == "bulk":
        why = f"its report is under {op.via}report/"
    else:
        why = said["failure_message"] or "its CloudWatch log group names each"
    if hooks.notice:
        hooks.notice(f"{name} refused {errors:,} items: reading the table back to find them")
    found = reconcile(book, run, client, loaded, f"{name}Refused", f"{name} refused it; {why}")
    event(logging.INFO, run.id, "reconciled",
          f"{name} refused {errors} items; {found} not in the table as the dump has them "
          "are dead letters", refused=errors, found=found)  # fmt: skip
    return f"{name} refused {errors:,} items ({why})"
