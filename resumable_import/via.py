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
    ledger: str | Ledger | None = None,
) -> ImportResult:
    """Import `path` into a new table `table` through S3 and ImportTable, as a run."""
    keys = _keys_for_import(options)
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
        if describe_table(client, table) is not None:
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
        )  # fmt: skip
        book.staging.plan(run.id, f"s3://{bucket}/{prefix}", count, "import")
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


def plan_via(path: str, keys: tuple[Any, ...], via: str, options: ImportOptions,
             objects: int | None = None) -> StagingPlan:  # fmt: skip
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
                       count, "ImportTable (a new table, on-demand)")  # fmt: skip


@contextlib.contextmanager
def _using(ledger: str | Ledger | None) -> Iterator[Ledger]:
    if isinstance(ledger, Ledger):
        yield ledger
    else:
        with Ledger(ledger) as book:
            yield book


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
    with log_to(book):
        try:
            if op.arn is None:
                _stage(book, run, dump, keys, loaded, op, hooks)
                bucket, prefix = staging.split_via(op.via)
                said = handoff.start_import(client, run.id, run.table, keys, bucket,
                                            staging.data_prefix(prefix))  # fmt: skip
                book.staging.followed(run.id, **handoff.figures(said))
            else:
                said = handoff.describe(client, op.arn)
            following = True
            event(logging.INFO, run.id, "handed_off",
                  f"ImportTable {said['ImportArn']} into {run.table}: {said['ImportStatus']}",
                  arn=said["ImportArn"])  # fmt: skip
            said = handoff.follow(client, said, _told(book, run, hooks, started))
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", 2)
            what = "interrupted" if signum == 2 else f"stopped by signal {signum}"
            left = " (its ImportTable goes on in DynamoDB)" if following else ""
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
        return _ended(book, run, client, said, started)


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
            path, items, size = staging.build(folder, number)
            key = staging.object_key(prefix, number, op.objects)
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
        book.staging.followed(run.id, **handoff.figures(said))
        if hooks.on_progress:
            hooks.on_progress(Figures(int(said.get("ProcessedItemCount") or 0),
                                      int(said.get("ProcessedSizeBytes") or 0), None,
                                      time.monotonic() - started))  # fmt: skip

    return told


def _ended(book: Ledger, run: Run, client: Any, said: dict[str, Any],
           started: float) -> ImportResult:  # fmt: skip
    """The run's end, as the operation's own: completed (with failures when it or the
    read refused items), or failed with its failure code."""
    status = said.get("ImportStatus")
    errors = int(said.get("ErrorCount") or 0)
    imported = int(said.get("ImportedItemCount") or 0)
    now = book.run(run.id)
    if not now.items_written:  # a resume that describes the ended import again adds none
        book.commit(run.id, items_committed=now.items_committed, byte_offset=now.byte_offset,
                    written=imported, dead=[])  # fmt: skip
    if (info := describe_table(client, run.table)) is not None:
        book.set_table_identity(run.id, info.identity)
    if status == "COMPLETED":
        failures = errors or book.run(run.id).dead_letters
        state = states.COMPLETED_WITH_FAILURES if failures else states.COMPLETED
        error = f"ImportTable refused {errors} items" if errors else None
    else:
        state = states.FAILED
        code = said.get("FailureCode") or status
        error = f"ImportTable {status}: {code}: {said.get('FailureMessage') or ''}".rstrip(": ")
    book.set_state(run.id, state, error=error)
    event(logging.INFO, run.id, "finished", f"{state}: ImportTable {status}, {imported} items "
          f"imported, {errors} refused", state=state, imported=imported, errors=errors)  # fmt: skip
    result = result_of(book.run(run.id), time.monotonic() - started, book)
    if state == states.FAILED:
        raise RimportError(
            f"run {run.id}: {error}",
            Text("see the run with ", command(run, "status", run.id)),
        )
    return result
