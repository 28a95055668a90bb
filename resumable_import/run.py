"""The public calls: start a run, resume it, retry its dead letters, and read the ledger.

Each opens the ledger and the dump, connects, checks that what it goes on with is what the
run started with (`unchanged`), and hands over to the run loop (`loop`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from . import endpoint as endpoints
from . import ledger as states
from . import s3
from .batching import groups
from .dynamo import connect, ensure_table, resolve_endpoint
from .endpoint import Endpoint
from .errors import Arg, InputError, LedgerError, Text, UsageError
from .firstitems import refuse_a_wrong_key, settle_reading
from .hints import command, spelled
from .hooks import Hooks
from .keys import key_of, key_of_request
from .ledger import Ledger, Run
from .loop import (
    ImportResult,
    execute,
    finished,
    result_of,
    sent_key,
    stopped_before_writing,
    superseded_notice,
)
from .options import ImportOptions, Recorded, ResumeOptions, SettingsChange, WriteSettings
from .reader import Dump, Shape, items_as
from .runlog import event, log, log_retry, log_to
from .transform import Transform, load
from .transport import SyncTransport, Transport, open_transport
from .unchanged import (
    check_same_object,
    check_unchanged,
    file_exists,
    identity_of,
    same_table,
    same_transform,
    stream_again,
    unchanged,
)
from .via import resume_via
from .workers import settled
from .writer import BatchWriter, RetryPolicy, Writer, wait_for


def import_file(
    path: str | Path,
    table: str,
    options: ImportOptions = ImportOptions(),
    hooks: Hooks = Hooks(),
    *,
    ledger: str | Path | Ledger | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
    folder: str | None = None,
) -> ImportResult:
    """Import a dump into `table` as a new run, recorded in the ledger.

    An unfinished run of the same file into the same table is refused unless
    `options.new`: importing twice is rarely meant, and resuming costs a fraction. But a
    run that stopped before writing anything (a wrong key, a refused format at item 0)
    blocks nothing: the corrected command starts anew, and `hooks.notice` says what became
    of the old run (it stays in the ledger as it stopped). A file a run already imported
    completely, unchanged since, is not imported again: the result is that run's, with
    `imported_before` set.
    `folder` records the folder the file was started from. The write settings are
    recorded for `resume`, and so is the transform: `resume` refuses to go on with
    different code. `client` and `retry` stand in for the endpoint's client and the
    writer's patience (tests, a preconfigured botocore client).
    """
    where = resolve_endpoint(options.endpoint)
    endpoints.check(where, options.allow_remote)
    loaded = load(options.transform) if options.transform is not None else None
    s3.use_profile(options.profile)  # an s3:// dump is read with the profile's credentials
    dump = Dump.open(path, options.format, options.items_path, checkpoints=True)
    origin = dump.location
    file = origin.name
    with using_ledger(ledger) as book:
        book.ready_for_runs()
        last = None if options.new or origin.kind == "stream" else book.latest_run(file, table)
        done = last if last and finished(last) and _read_alike(last, options, loaded) else None
        superseded = last if last and stopped_before_writing(last) else None
        if last and not finished(last) and not superseded:
            raise UsageError(
                f"{file} already has an unfinished run {last.id} into table {table!r} "
                f"({last.state} at item {last.items_committed:,})",
                Text(
                    "continue it with ",
                    command(last, "resume", last.id),
                    ", or pass new=True to start over",
                ),
                param="new=True",
            )
        shared = client is not None
        client, transport, region = connect_to(where, options.region, client, options.profile)
        info = ensure_table(
            client,
            table,
            options.create_keys,
            where,
            before_create=lambda keys: refuse_a_wrong_key(dump, keys, loaded),
        )
        if done and done.table_identity == info.identity:  # not a table made since
            said = f"{file} was imported into {table} by run {done.id}: not imported again"
            event(logging.INFO, done.id, "imported_before", said)
            return replace(result_of(done, 0.0, book), imported_before=True)
        settle_reading(dump, info.keys, loaded)  # before the run records how it is read
        digest, blocks = identity_of(dump)
        run = book.create_run(
            file=file,
            file_size=dump.size or 0,
            file_hash=digest,
            block_hashes=blocks,
            table=table,
            table_identity=info.identity,
            endpoint=where.url,
            region=region,
            format=options.format,
            shape=dump.describe(),
            options=Recorded(
                settled(options.settings, where.loopback),
                options.allow_remote,
                tuple(spelled(k) for k in info.keys),
                loaded.record() if loaded else None,
            ),
            folder=folder,
            source=None if origin.kind == "file" else origin.kind,
        )
        with book.lock(run.id):
            if hooks.on_start:
                hooks.on_start(run)
            if hooks.notice and superseded:
                hooks.notice(superseded_notice(superseded))
            if hooks.notice and dump.note:
                hooks.notice(dump.note)
            with closing(dump.location):  # a FIFO opened for the run
                return execute(book, run, dump, client, transport, info.keys, hooks, retry,
                               loaded, profile=options.profile, shared_client=shared)  # fmt: skip


def resume_run(
    run_id: str,
    options: ResumeOptions = ResumeOptions(),
    hooks: Hooks = Hooks(),
    *,
    ledger: str | Path | Ledger | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
) -> ImportResult:
    """Continue a run from its last checkpoint, on the same file, table and endpoint, and
    through the same transform: the one it recorded, loaded again, unless
    `options.transform` names it (needed for a function defined in a script); its code
    must be unchanged.

    `options.source`: where to read a run started on a stream again (a path, or `-`).
    `options.settings`, where given, replace the run's own for the rest of it (after
    throttling, or a proxy's 413): the change is recorded with the run, with what it
    replaced and when.
    """
    source = options.source
    s3.use_profile(options.profile)
    with using_ledger(ledger) as book:
        book.ready_for_runs()
        run = book.run(run_id)
        with book.lock(run.id):
            run = book.run(run.id)  # re-read now that no one else can change it
            if source is not None and run.source != "stream":
                raise UsageError(
                    Text(
                        f"run {run.id} reads {run.file}, not a stream: ",
                        Arg("source"),
                        " is for a run started on a stream",
                    ),
                    Text("resume it with ", command(run, "resume", run.id)),
                )
            _same_place(run, options.endpoint, options.region)
            if finished(run):
                return result_of(run, 0.0, book)
            if book.staging.of(run.id) is not None:  # staged to S3 for ImportTable
                client, _ = reconnect(run, client, options.profile)
                loaded = same_transform(run, options.transform)
                return resume_via(book, run, client, hooks, loaded)
            run = _retune(book, run, options.settings)
            loaded = same_transform(run, options.transform)
            if run.source == "stream":
                dump = stream_again(run, source)
            elif run.source == "s3":
                dump = Dump(run.file, Shape.parse(run.shape), items_as=items_as(run.format))
                check_same_object(run, dump)
            else:
                if not file_exists(run):
                    raise InputError(
                        f"{run.file}: the dump of run {run.id} is gone",
                        "put the file back where it was to resume",
                    )
                dump = Dump(run.file, Shape.parse(run.shape), items_as=items_as(run.format))
                check_unchanged(book, run, dump)
                run = book.run(run.id)  # with the size and hashes of a file fixed since
                dump.size = run.file_size  # read what was hashed, not what was appended since
            shared = client is not None
            client, transport = reconnect(run, client, options.profile)
            info = same_table(book, run, client)
            if hooks.on_start:
                hooks.on_start(run)
            with closing(dump.location):  # a FIFO opened for the run
                return execute(book, run, dump, client, transport, info.keys, hooks, retry,
                               loaded, profile=options.profile, shared_client=shared)  # fmt: skip


def retry_failed(
    run_id: str,
    *,
    ledger: str | Path | Ledger | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
    profile: str | None = None,
    endpoint: str | None = None,
    region: str | None = None,
) -> ImportResult:
    """Replay a run's retryable dead letters; those that fail again keep their new error.

    Those a later item with the same key superseded (written by the run after them) are
    not written: that would undo the later one. Nor, of two with one key, the earlier.

    Dead letters that DynamoDB refused as invalid are left alone: sending them again
    cannot succeed, and they stay visible in `status` until the data is fixed. As for
    `resume_run`: `profile` gives the credentials; `endpoint` and `region`, if given, must
    be the run's own.
    """
    started = time.monotonic()
    with using_ledger(ledger) as book:
        book.ready_for_runs()
        run = book.run(run_id)
        _same_place(run, endpoint, region)
        with book.lock(run.id), log_to(book):
            pages = book.pages_of_dead_letters(run.id, retryable_only=True)
            first = next(pages, [])
            if first:
                client, transport = reconnect(run, client, profile)
                info = same_table(book, run, client)
                requests = Shape.parse(run.shape).kind == "table"  # its letters: whole requests
                # Of two with one key only the later is written, as the run would have.
                if book.supersede_repeats(run.id, sent_key(requests, info.key_names)):
                    first, pages = [], book.pages_of_dead_letters(run.id, retryable_only=True)
                writer: BatchWriter = Writer(
                    transport, run.table, info.key_names, retry, on_retry=log_retry(run.id),
                    entries=requests,
                )  # fmt: skip
                event(logging.INFO, run.id, "retry_failed", "retrying its retryable dead letters")
                pending = itertools.chain(first, *pages)
                key = key_of_request if requests else key_of
                keyed = ((d, key(d.item, info.key_names)) for d in pending)
                with closing(writer):  # its connections, once the dead letters are sent
                    for group in groups(keyed):
                        items = [orjson.dumps(d.item) for d, _ in group]
                        job = writer.submit(items, [k for _, k in group])
                        failures = {f.position: f for f in wait_for(writer, job)}
                        written, failed = [], []
                        for position, (letter, _) in enumerate(group):
                            if f := failures.get(position):
                                letter.code, letter.message = f.code, f.message
                                letter.attempts += f.attempts
                                letter.retryable = f.retryable
                                failed.append(letter)
                            else:
                                letter.attempts += 1
                                written.append(letter)
                        deleted = sum("DeleteRequest" in d.item for d in written) if requests else 0
                        book.settle(run.id, written, failed, deleted)
            run = book.run(run.id)
            if finished(run):
                state = states.COMPLETED if not run.dead_letters else states.COMPLETED_WITH_FAILURES
                book.set_state(run.id, state)
                run = book.run(run.id)
            remain = run.dead_letters
            event(logging.INFO, run.id, "retry_failed_done",
                   f"{remain} dead letters remain", dead_letters=remain)  # fmt: skip
            return result_of(run, time.monotonic() - started, book)


def _same_place(run: Run, endpoint: str | None, region: str | None) -> None:
    """Refuse an endpoint or region given to a resume that is not the run's own: a run
    continues where it started, and a given one that matches is only a shared flag."""
    if endpoint is not None and resolve_endpoint(endpoint).url != run.endpoint:
        there, given = endpoints.redacted(run.endpoint), endpoints.redacted(endpoint)
        raise UsageError(
            f"run {run.id} writes to {there}, not {given}: a run continues where it started",
            Text("leave out ", Arg("endpoint"), f": the run's own ({there}) is used"),
        )
    if region is not None and run.region and region != run.region:
        raise UsageError(
            f"run {run.id} writes to region {run.region}, not {region}: a run continues "
            "where it started",
            Text("leave out ", Arg("region"), f": the run's own ({run.region}) is used"),
        )


def _retune(book: Ledger, run: Run, change: SettingsChange) -> Run:
    """The run with the settings given to `resume`, recorded with those they replace."""
    changed = book.change_settings(run, run.settings.changed_by(change))
    if not changed:
        return run
    log.info(
        "run %s: settings changed on resume: %s", run.id,
        ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items()),
    )  # fmt: skip
    return book.run(run.id)


def settings_of(run: Run) -> list[tuple[str, Any, list[tuple[Any, str]]]]:
    """(setting, value now, [(an earlier value, until when)]) for each write setting, for
    `status`: what a run writes with, and what it wrote with before a resume changed it."""
    recorded = run.recorded
    out = []
    for name in WriteSettings.names():
        before = [(change[name][0], change["at"]) for change in recorded.changes if name in change]
        out.append((name, getattr(recorded.settings, name), before))
    return out


class RunList(list[Run]):
    """Runs, and the ids of those that a damaged ledger would not give up."""

    unreadable: list[str]
    hidden: int = 0  # runs left out for writing to another endpoint or region


def run_status(
    run_id: str | None = None,
    *,
    ledger: str | Path | Ledger | None = None,
    endpoint: str | None = None,
    region: str | None = None,
) -> RunList:
    """Every run in the ledger (or the one named), oldest first; in a damaged ledger, every
    run that can still be read. A ledger that cannot be written to is still read.

    `endpoint` and `region` keep only the runs that write there (`hidden` counts the
    others); the run named by `run_id` is given whatever they say."""
    at = resolve_endpoint(endpoint).url if endpoint is not None else None
    with for_reading(ledger) as book:
        every = [book.run(run_id)] if run_id else book.runs()
        runs = RunList(
            r for r in every
            if run_id or ((at is None or r.endpoint == at) and region in (None, r.region))
        )  # fmt: skip
        runs.unreadable = list(book.unreadable)
        runs.hidden = len(every) - len(runs)
        return runs


def dead_letter_counts(
    run_id: str, *, ledger: str | Path | Ledger | None = None
) -> dict[str, Counter[str]]:
    """A run's pending dead letters by error code, under `retryable` and `not retryable`."""
    with for_reading(ledger) as book:
        return book.dead_letter_counts(book.run(run_id).id)


@dataclass(frozen=True)
class LedgerHealth:
    path: Path
    problems: list[str]  # what SQLite's quick check found; empty for a sound ledger
    runs: list[Run]  # every run that can be read
    unreadable: list[str]  # ids of the runs that cannot


def check_ledger(ledger: str | Path | Ledger | None = None) -> LedgerHealth:
    """Where a ledger stands: sound or damaged, and which runs can still be read."""
    with for_reading(ledger) as book:
        problems = book.check()
        runs = book.runs()
        return LedgerHealth(book.path, problems, runs, list(book.unreadable))


@contextmanager
def for_reading(ledger: str | Path | Ledger | None) -> Iterator[Ledger]:
    if isinstance(ledger, Ledger):
        yield ledger
        return
    try:
        book = Ledger(ledger)
    except LedgerError:
        path = Path(ledger) if ledger else states.default_path()
        if not path.is_file():
            raise
        book = Ledger(path, readonly=True)  # read-only, or its folder is: still readable
    with book:
        yield book


def connect_to(
    where: Endpoint, region: str | None, client: Any, profile: str | None = None
) -> tuple[Any, Transport, str]:
    """(client for table calls, transport for writes, region).

    A client given by the caller (a test fake, a preconfigured botocore client) does both.
    """
    if client is not None:
        return client, SyncTransport(client), region or ""
    conn = connect(where, region, profile=profile)
    return conn.client, open_transport(conn.client, conn.credentials), conn.region


def reconnect(run: Run, client: Any, profile: str | None = None) -> tuple[Any, Transport]:
    """The client and transport of a recorded run, at its endpoint, judged again."""
    where = endpoints.parse(run.endpoint)
    endpoints.check(where, run.recorded.allow_remote)
    client, transport, _ = connect_to(where, run.region, client, profile)
    return client, transport


def _read_alike(run: Run, options: ImportOptions, loaded: Transform | None) -> bool:
    """The finished `run` read these bytes as `options` would: the same format, items
    path and transform code. Else the file was read another way, and importing it as
    asked is what the user means."""
    shape = Shape.parse(run.shape)
    items_path = shape.key if shape.kind in ("path", "table") else None
    same = run.format == options.format and items_path == options.items_path
    recorded = run.recorded.transform
    code = loaded.matches(recorded) if loaded and recorded else loaded is recorded is None
    return same and code and unchanged(run)


@contextmanager
def using_ledger(ledger: str | Path | Ledger | None) -> Iterator[Ledger]:
    if isinstance(ledger, Ledger):
        yield ledger
    else:
        with Ledger(ledger) as book:
            yield book
