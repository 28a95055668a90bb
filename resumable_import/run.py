"""A run: open the ledger and the dump, stream batches to the writer, commit checkpoints.

Several batches are in the writer's hands at once and may finish in any order, but they
are committed strictly in file order, so the checkpoint is always a prefix of the file
with no gaps: every item before it is in the table or in the dead letters. A batch that
shares a key with one still in flight waits for it, so items with the same key reach the
table in file order.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
import logging.handlers
import os
import shlex
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from . import endpoint as endpoints
from . import ledger as states
from .batching import groups
from .checks import KeyMistake, key_mistake_in
from .dynamo import KeySpec, TableInfo, connect, describe_table, ensure_table, resolve_endpoint
from .endpoint import Endpoint
from .errors import (
    FileChangedError,
    InputError,
    KeyMismatchError,
    LedgerError,
    RimportError,
    ServiceError,
    TableError,
    UsageError,
)
from .fingerprint import block_hashes, file_hash, fingerprint
from .items import key_of
from .ledger import DeadLetter, Ledger, Run, private_file
from .pipeline import Ready, ready_batches
from .progress import Figures, OnProgress, Progress, known
from .reader import Dump, Position, Shape, items_as
from .sources import Location
from .transform import Apply, Check, Transform, TransformSpec, changed, load
from .transport import SyncTransport, Transport, open_transport
from .writer import BatchWriter, Failure, Job, RetryPolicy, Writer, wait_for

log = logging.getLogger("rimport")

Notice = Callable[[str], None]
"""Told a line worth showing the user while a run goes on (the endpoint stopped answering)."""

DEFAULT_CONCURRENCY = 16  # requests in flight: enough to hide ~10 ms of network latency
# Batches handed to the writer but not yet committed are bounded by the bytes of their
# items, not by their number: behind one slow answer, the other connections keep working
# on later batches (committed in file order once it arrives), without memory growing.
# 8 MiB rides out a 2 s answer at 4,000 items/s of 1 KB; 16 MiB cost 15 MB more peak RSS.
MAX_BYTES_AHEAD = 8 << 20
MAX_BATCHES_AHEAD = 4096
CHECKPOINT_LOG_EVERY = 100  # batches
LOG_MAX_BYTES = 10 << 20  # rimport.log is rotated at this size,
LOG_BACKUPS = 3  # keeping this many old ones (rimport.log.1 ...)
COLLECT_EVERY = 1000  # batches: how often the paused cyclic garbage collector runs


@dataclass(frozen=True)
class ImportResult:
    run_id: str
    state: str
    items_committed: int
    items_written: int
    dead_letters: int
    elapsed: float
    retryable: int = 0  # of the dead letters, those `retry_failed` may yet write


class RunInterrupted(RimportError):
    """Ctrl-C, SIGTERM or SIGHUP: the checkpoint is saved and `rimport resume` continues
    from it. The exit code is the shell's for that signal: 130, 143, 129."""

    exit_code = 130

    def __init__(self, message: str, hint: str | None = None, *, signum: int = 2) -> None:
        super().__init__(message, hint)
        self.exit_code = 128 + signum


def import_file(
    path: str | Path,
    table: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    ledger: str | Path | Ledger | None = None,
    batch_size: int = 25,
    fmt: str = "auto",
    items_path: str | None = None,
    create_keys: tuple[KeySpec, ...] | None = None,
    allow_remote: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_wcu: float | None = None,
    progress: Progress | None = None,
    on_progress: OnProgress | None = None,
    on_start: Callable[[Run], None] | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
    new: bool = False,
    folder: str | None = None,
    max_outage: float | None = None,
    notice: Notice | None = None,
    transform: TransformSpec | None = None,
) -> ImportResult:
    """Import a dump into `table` as a new run, recorded in the ledger.

    `on_start` is called with the new run before anything is written, so a caller can tell
    its user which run to resume should this one be killed. An unfinished run of the same
    file into the same table is refused unless `new`: importing twice is rarely meant, and
    resuming costs a fraction. `folder` records the folder the file was started from.
    `max_outage`: seconds to keep trying while the endpoint answers nothing (default 300),
    recorded for `resume`. `notice` is told, as one line, when the endpoint stops
    answering and when it answers again, and how a file that reads two ways is read.
    `progress` and `on_progress` are told how far it has got (see `progress.py`).
    `transform`: a function applied to every element on the way in (`transform.py`), as
    FILE.py:FUNCTION, MODULE:FUNCTION or the function itself; the run records it, and
    `resume` refuses to go on with different code.
    """
    check_settings(batch_size=batch_size, concurrency=concurrency, max_wcu=max_wcu,
                   max_outage=max_outage)  # fmt: skip
    where = resolve_endpoint(endpoint)
    endpoints.check(where, allow_remote)
    loaded = load(transform) if transform is not None else None
    dump = Dump.open(path, fmt, items_path, checkpoints=True)
    origin = dump.location
    file = origin.name
    with using_ledger(ledger) as book:
        book.ready_for_runs()
        last = None if new or origin.kind == "stream" else book.latest_run(file, table)
        if last and not finished(last):
            raise UsageError(
                f"{file} already has an unfinished run {last.id} into table {table!r} "
                f"({last.state} at item {last.items_committed:,})",
                f"continue it with {command(last, 'resume', last.id)}, or pass new=True to start "
                "over",
                param="new=True",
            )
        client, transport, region = _connect(where, region, client)
        info = ensure_table(
            client,
            table,
            create_keys,
            where,
            before_create=lambda keys: _sample(dump, keys, loaded),
        )
        digest, blocks = _identity(dump)
        run = book.create_run(
            file=file,
            file_size=dump.size or 0,
            file_hash=digest,
            block_hashes=blocks,
            table=table,
            table_identity=info.identity,
            endpoint=where.url,
            region=region,
            format=fmt,
            shape=dump.describe(),
            options={
                "batch_size": batch_size,
                "concurrency": concurrency,
                "max_wcu": max_wcu,
                "allow_remote": allow_remote,
                "max_outage": max_outage,
                "keys": [_spelled(k) for k in info.keys],
                **({"transform": loaded.record()} if loaded else {}),
            },
            folder=folder,
            source=None if origin.kind == "file" else origin.kind,
        )
        with book.lock(run.id):
            if on_start:
                on_start(run)
            if notice and dump.note:
                notice(dump.note)
            with closing(dump.location):  # a FIFO opened for the run
                return _execute(book, run, dump, client, transport, info.keys,
                                (progress, on_progress), retry, notice, loaded)  # fmt: skip


def resume_run(
    run_id: str,
    *,
    source: str | Path | None = None,
    ledger: str | Path | Ledger | None = None,
    progress: Progress | None = None,
    on_progress: OnProgress | None = None,
    on_start: Callable[[Run], None] | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
    notice: Notice | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    max_wcu: float | None = None,
    max_outage: float | None = None,
    transform: TransformSpec | None = None,
) -> ImportResult:
    """Continue a run from its last checkpoint, on the same file, table and endpoint, and
    through the same transform: the one it recorded, loaded again, unless `transform`
    names it (needed for a function defined in a script); its code must be unchanged.

    `source`: where to read a run started on a stream again (a path, or `-`).
    `batch_size`, `concurrency`, `max_wcu` and `max_outage`, when given, replace the run's
    own for the rest of it (after throttling, or a proxy's 413): the change is recorded
    with the run, with what it replaced and when.
    """
    given = {"batch_size": batch_size, "concurrency": concurrency, "max_wcu": max_wcu,
             "max_outage": max_outage}  # fmt: skip
    check_settings(**given)
    with using_ledger(ledger) as book:
        book.ready_for_runs()
        run = book.run(run_id)
        with book.lock(run.id):
            run = book.run(run.id)  # re-read now that no one else can change it
            if source is not None and run.source != "stream":
                raise UsageError(
                    f"run {run.id} reads {run.file}, not a stream: --from is for a run "
                    "started on a stream",
                    f"resume it with {command(run, 'resume', run.id)}",
                )
            if finished(run):
                return result_of(run, 0.0, book)
            run = _retune(book, run, {k: v for k, v in given.items() if v is not None})
            loaded = _same_transform(run, transform)
            if run.source == "stream":
                dump = _stream_again(run, source)
            elif run.source == "s3":
                dump = Dump(run.file, Shape.parse(run.shape), items_as=items_as(run.format))
                _check_same_object(run, dump)
            else:
                if not _exists(run):
                    raise InputError(
                        f"{run.file}: the dump of run {run.id} is gone",
                        "put the file back where it was to resume",
                    )
                dump = Dump(run.file, Shape.parse(run.shape), items_as=items_as(run.format))
                _check_unchanged(book, run, dump)
                run = book.run(run.id)  # with the size and hashes of a file fixed since
                dump.size = run.file_size  # read what was hashed, not what was appended since
            client, transport = _reconnect(run, client)
            info = _same_table(book, run, client)
            if on_start:
                on_start(run)
            with closing(dump.location):  # a FIFO opened for the run
                return _execute(book, run, dump, client, transport, info.keys,
                                (progress, on_progress), retry, notice, loaded)  # fmt: skip


def retry_failed(
    run_id: str,
    *,
    ledger: str | Path | Ledger | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
) -> ImportResult:
    """Replay a run's retryable dead letters; those that fail again keep their new error.

    Dead letters that DynamoDB refused as invalid are left alone: sending them again
    cannot succeed, and they stay visible in `status` until the data is fixed.
    """
    started = time.monotonic()
    with using_ledger(ledger) as book:
        book.ready_for_runs()
        run = book.run(run_id)
        with book.lock(run.id), _log_to(book):
            pages = book.pages_of_dead_letters(run.id, retryable_only=True)
            first = next(pages, [])
            if first:
                client, transport = _reconnect(run, client)
                info = _same_table(book, run, client)
                writer: BatchWriter = Writer(
                    transport, run.table, info.key_names, retry, on_retry=_log_retry(run.id)
                )
                _event(logging.INFO, run.id, "retry_failed", "retrying its retryable dead letters")
                pending = itertools.chain(first, *pages)
                with closing(writer):  # its connections, once the dead letters are sent
                    for group in groups(pending, lambda d: key_of(d.item, info.key_names)):
                        items = [orjson.dumps(d.item) for d in group]
                        failures = {f.position: f for f in wait_for(writer, writer.submit(items))}
                        written, failed = [], []
                        for position, letter in enumerate(group):
                            if f := failures.get(position):
                                letter.code, letter.message = f.code, f.message
                                letter.attempts += f.attempts
                                letter.retryable = f.retryable
                                failed.append(letter)
                            else:
                                letter.attempts += 1
                                written.append(letter)
                        book.settle(run.id, written, failed)
            run = book.run(run.id)
            if finished(run):
                state = states.COMPLETED if not run.dead_letters else states.COMPLETED_WITH_FAILURES
                book.set_state(run.id, state)
                run = book.run(run.id)
            remain = run.dead_letters
            _event(logging.INFO, run.id, "retry_failed_done",
                   f"{remain} dead letters remain", dead_letters=remain)  # fmt: skip
            return result_of(run, time.monotonic() - started, book)


SETTINGS = ("batch_size", "concurrency", "max_wcu", "max_outage")
"""The run's options that `resume` may change: how it writes, not what."""


def check_settings(
    *,
    batch_size: int | None = None,
    concurrency: int | None = None,
    max_wcu: float | None = None,
    max_outage: float | None = None,
) -> None:
    """Refuse settings DynamoDB or the writer cannot work with; None is "not given"."""
    if batch_size is not None and not 1 <= batch_size <= 25:
        raise UsageError(
            f"batch_size must be between 1 and 25, not {batch_size}", param="batch_size"
        )
    if concurrency is not None and concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, not {concurrency}", param="concurrency")
    if max_wcu is not None and max_wcu <= 0:
        raise UsageError(f"max_wcu must be positive, not {max_wcu}", param="max_wcu")
    if max_outage is not None and max_outage < 0:
        raise UsageError(
            f"max_outage must be 0 or more seconds, not {max_outage}", param="max_outage"
        )


def _retune(book: Ledger, run: Run, given: dict[str, Any]) -> Run:
    """The run with the settings given to `resume`, recorded with those they replace."""
    changed = {k: [run.options.get(k), v] for k, v in given.items() if run.options.get(k) != v}
    if not changed:
        return run
    book.change_options(run.id, {**run.options, **given}, changed)
    log.info(
        "run %s: settings changed on resume: %s", run.id,
        ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items()),
    )  # fmt: skip
    return book.run(run.id)


def settings_of(run: Run) -> list[tuple[str, Any, list[tuple[Any, str]]]]:
    """(setting, value now, [(an earlier value, until when)]) for each of SETTINGS, for
    `status`: what a run writes with, and what it wrote with before a resume changed it."""
    out = []
    for name in SETTINGS:
        before = [
            (change[name][0], change["at"])
            for change in run.options.get("changes", [])
            if name in change
        ]
        out.append((name, run.options.get(name), before))
    return out


class RunList(list[Run]):
    """Runs, and the ids of those that a damaged ledger would not give up."""

    unreadable: list[str]


def run_status(run_id: str | None = None, *, ledger: str | Path | Ledger | None = None) -> RunList:
    """Every run in the ledger (or the one named), oldest first; in a damaged ledger, every
    run that can still be read. A ledger that cannot be written to is still read."""
    with _for_reading(ledger) as book:
        runs = RunList([book.run(run_id)] if run_id else book.runs())
        runs.unreadable = list(book.unreadable)
        return runs


def dead_letter_counts(
    run_id: str, *, ledger: str | Path | Ledger | None = None
) -> dict[str, Counter[str]]:
    """A run's pending dead letters by error code, under `retryable` and `not retryable`."""
    with _for_reading(ledger) as book:
        return book.dead_letter_counts(book.run(run_id).id)


@dataclass(frozen=True)
class LedgerHealth:
    path: Path
    problems: list[str]  # what SQLite's quick check found; empty for a sound ledger
    runs: list[Run]  # every run that can be read
    unreadable: list[str]  # ids of the runs that cannot


def check_ledger(ledger: str | Path | Ledger | None = None) -> LedgerHealth:
    """Where a ledger stands: sound or damaged, and which runs can still be read."""
    with _for_reading(ledger) as book:
        problems = book.check()
        runs = book.runs()
        return LedgerHealth(book.path, problems, runs, list(book.unreadable))


@contextmanager
def _for_reading(ledger: str | Path | Ledger | None) -> Iterator[Ledger]:
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


# -- the loop ---------------------------------------------------------------------------


def _execute(
    book: Ledger,
    run: Run,
    dump: Dump,
    client: Any,
    transport: Transport,
    keys: tuple[KeySpec, ...],
    told: tuple[Progress | None, OnProgress | None],
    retry: RetryPolicy | None,
    notice: Notice | None,
    transform: Transform | None = None,
) -> ImportResult:
    started = time.monotonic()
    resuming = run.items_committed > 0
    book.set_state(run.id, states.RUNNING)
    with _log_to(book):
        if not resuming and (mistake := _key_mistake(dump, keys, transform)):
            _stop(book, run.id, states.FAILED, mistake.message)
            raise KeyMismatchError(mistake, "run", _other_table(run, mistake))
        verb = "resumed" if resuming else "started"
        where = endpoints.redacted(run.endpoint)
        _event(
            logging.INFO, run.id, verb,
            f"{verb} {run.file} -> table {run.table} at {where}, from item "
            f"{run.items_committed} (byte {run.byte_offset})",
            file=run.file, table=run.table, endpoint=where, items=run.items_committed,
            byte=run.byte_offset,
        )  # fmt: skip
        concurrency = run.options["concurrency"]
        if retry is None and run.options.get("max_outage") is not None:
            retry = RetryPolicy(max_outage=run.options["max_outage"])
        committer = _Committer(book, run, dump, *told)
        writer: BatchWriter = Writer(
            transport, run.table, tuple(k.name for k in keys), retry, max_inflight=concurrency,
            max_wcu=run.options.get("max_wcu"), on_retry=_log_retry(run.id, committer.retried),
            on_outage=_outage_notice(run.id, notice),
        )  # fmt: skip
        committer.throttled = lambda: writer.throttled
        start = Position(run.items_committed, run.byte_offset) if resuming else None
        source = ready_batches(
            dump, start, keys, run.options["batch_size"], units=bool(run.options.get("max_wcu")),
            transform=transform,
        )  # fmt: skip
        try:
            with _collector_paused(), closing(source), closing(writer):
                _pump(source, writer, committer)
            committer.finish()
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", 2)
            what = "interrupted" if signum == 2 else f"stopped by signal {signum}"
            run = _stop(book, run.id, states.INTERRUPTED, f"{what} by the user")
            raise RunInterrupted(
                f"{what}; run {run.id} stopped at item {run.items_committed}",
                f"continue with {_resume_command(run)}" + _gentler(run, writer),
                signum=signum,
            ) from None
        except InputError as e:
            run = _stop(book, run.id, states.FAILED, e.message, bad_input=True)
            e.hint = (
                f"{run.items_committed} items before it are safely imported; fix the file and run "
                f"{_resume_command(run)}, or start over with {_start_over(run)}"
            )
            raise
        except ServiceError as e:
            gentler = _gentler(run, writer)
            e.hint = _after_service_error(book.run(run.id), e, client, gentler)  # and e.message
            run = _stop(book, run.id, states.FAILED, e.message)
            raise
        except LedgerError as e:
            # The checkpoint that could not be written is simply not there: what was
            # committed before it stands, and resume starts from it.
            with contextlib.suppress(LedgerError):
                _stop(book, run.id, states.FAILED, e.message)
            e.hint = _resume(run, e.hint)
            raise
        except BaseException as e:  # a bug: the run must not stay `running` in the ledger
            with contextlib.suppress(Exception):
                _stop(book, run.id, states.FAILED, f"unexpected {type(e).__name__}: {e}")
            raise
        committer.flush_log()
        if dump.location.kind == "stream":  # its size and hash are known only now
            size, digest = dump.location.finish()
            book.set_file(run.id, size, digest, [])
        run = book.run(run.id)
        state = states.COMPLETED_WITH_FAILURES if run.dead_letters else states.COMPLETED
        error = _changed_while_read(run)
        book.set_state(run.id, state, error=error)
        _event(
            logging.INFO, run.id, "finished",
            f"{state}, {run.items_written} items written, {run.dead_letters} dead letters",
            state=state, items=run.items_committed, written=run.items_written,
            dead_letters=run.dead_letters, retries=committer.retries,
            throttled=committer.throttled(), elapsed=round(time.monotonic() - started, 3),
        )  # fmt: skip
        if error:
            _event(logging.WARNING, run.id, "file_changed", error)
            raise FileChangedError(
                f"{run.file}: {error}",
                f"the {run.items_committed:,} items of the file as it was are imported (run "
                f"{run.id}); to import it as it is now: {_start_over(run)}",
            )
        return result_of(book.run(run.id), time.monotonic() - started, book)


def _pump(source: Iterator[Ready], writer: BatchWriter, committer: _Committer) -> None:
    """Hand batches to the writer, as many as MAX_BYTES_AHEAD allows, and commit them in
    file order."""
    inflight: deque[tuple[Ready, Job, int]] = deque()
    held: set[int] = set()  # key hashes of the batches in flight; theirs never overlap
    ahead = 0  # bytes of the items in flight

    def settle() -> None:
        nonlocal ahead
        while inflight and inflight[0][1].done:
            batch, job, size = inflight.popleft()
            ahead -= size
            held.difference_update(batch.keys)
            committer.commit(batch, job.failures)

    def must_wait(batch: Ready) -> bool:
        return (
            ahead >= MAX_BYTES_AHEAD
            or len(inflight) >= MAX_BATCHES_AHEAD
            or not batch.keys.isdisjoint(held)
        )

    def drain(enough: Callable[[], bool] = lambda: False) -> None:
        """Take in answers and commit until `enough` (by default: until nothing is left)."""
        while inflight and not enough():
            writer.poll(block=True)
            settle()

    try:
        for batch in source:
            drain(enough=lambda: not must_wait(batch))  # noqa: B023 (called right here)
            size = sum(map(len, batch.items))
            inflight.append((batch, writer.submit(batch.items, batch.units), size))
            ahead += size
            held.update(batch.keys)
            writer.poll(block=False)
            settle()
    except InputError:
        drain()  # everything read before the problem still gets written
        raise
    drain()


class _Committer:
    """Turns a written batch into a ledger commit: dead letters plus the new checkpoint.

    The log gets one line per CHECKPOINT_LOG_EVERY batches, with the dead letters of those
    batches counted by reason: a dump of a million refused items makes a short log.

    A batch that is not `whole` (it ends partway through the items a transform made of
    one element) is held back and committed with the next one, so the checkpoint never
    counts an element whose items are only partly written.

    It also keeps the run's figures for whoever watches: retries (counted by the writer's
    retry hook through `retried`), throttled answers (asked of the writer through
    `throttled`) and dead letters (counted here, as they are committed)."""

    def __init__(
        self,
        book: Ledger,
        run: Run,
        dump: Dump,
        progress: Progress | None,
        on_progress: OnProgress | None = None,
    ) -> None:
        self._book = book
        self._run_id = run.id
        self._dump = dump
        self._progress = progress
        self._on_progress = on_progress
        self._batches = 0
        self._dead: Counter[str] = Counter()
        self._checkpoint = self._logged = (run.items_committed, run.byte_offset)
        self._started = time.monotonic()
        self._items_start = run.items_committed
        # The checkpoint is in decompressed bytes: a compressed file's position in its own
        # bytes is known from the first commit on.
        plain = "+" not in run.shape
        self._position = run.byte_offset if plain else 0
        self._bytes_start = self._position if plain or not run.items_committed else None
        self.dead_letters = max(run.dead_letters, 0)
        self.retries = 0
        self.throttled: Callable[[], int] = lambda: 0
        self._held: list[DeadLetter] = []
        self._held_written = 0

    def commit(self, batch: Ready, failures: list[Failure]) -> None:
        dead = [
            DeadLetter(batch.indexes[f.position], orjson.loads(batch.items[f.position]), f.code,
                       f.message, f.attempts, f.retryable)
            for f in failures
        ] + [
            DeadLetter(index, json.loads(item), code, message, 0, False)
            for index, item, code, message in batch.rejected
        ]  # fmt: skip
        written = len(batch.items) - len(failures)
        if not batch.whole:
            self._held += dead
            self._held_written += written
            return
        if self._held:
            dead, self._held = self._held + dead, []
        if self._held_written:
            written, self._held_written = written + self._held_written, 0
        dead.sort(key=lambda d: d.index)
        self._book.commit(
            self._run_id,
            items_committed=batch.last + 1,
            byte_offset=batch.end,
            written=written,
            dead=dead,
            checkpoint_hash=self._dump.prefix_hash(batch.end),
        )
        self._checkpoint = (batch.last + 1, batch.end)
        self._position = batch.position
        if self._bytes_start is None:
            self._bytes_start = batch.position
        self._batches += 1
        self.dead_letters += len(dead)
        self._dead.update(d.code for d in dead)
        if self._batches % COLLECT_EVERY == 0:
            gc.collect(1)  # the few cycles made since the last time (botocore's, per request)
        if self._batches % CHECKPOINT_LOG_EVERY == 0:
            self.flush_log()
        if self._progress:
            self._progress(batch.last + 1, batch.position, self._dump.size or 0)
        if self._on_progress:
            self._on_progress(self.figures())

    def retried(self) -> None:
        """The writer sends something again: counted, and told, so a stalled run ticks."""
        self.retries += 1
        if self._on_progress:
            self._on_progress(self.figures())

    def finish(self) -> None:
        """The file is read to its end: the last call says so, with every byte done.

        The last batch's position can stop short of the size (a closing bracket, white
        space, a compressed file's trailer): the callbacks are told the whole size."""
        size = known(self._dump.size)
        done = size if size is not None else self._position
        self._position = done
        if self._progress:
            self._progress(self._checkpoint[0], done, self._dump.size or 0)
        if self._on_progress:
            self._on_progress(self.figures(final=True))

    def figures(self, *, final: bool = False) -> Figures:
        return Figures(
            items=self._checkpoint[0],
            bytes_done=self._position,
            bytes_total=known(self._dump.size),
            elapsed=time.monotonic() - self._started,
            items_start=self._items_start,
            bytes_start=self._bytes_start or 0,
            retries=self.retries,
            throttled=self.throttled(),
            dead_letters=self.dead_letters,
            final=final,
        )

    def flush_log(self) -> None:
        if self._checkpoint == self._logged:  # the end of a run, just after its 100th batch
            return
        items, offset = self._logged = self._checkpoint
        dead = ", ".join(f"{code} {n:,}" for code, n in self._dead.most_common())
        _event(
            logging.INFO, self._run_id, "checkpoint",
            f"checkpoint at item {items}, byte {offset}"
            + (f"; dead-lettered since the last line: {dead}" if dead else ""),
            items=items, byte=offset, dead_by_code=dict(self._dead),
            retries=self.retries, throttled=self.throttled(),
        )  # fmt: skip
        self._dead.clear()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Run the cyclic garbage collector every COLLECT_EVERY batches instead of every 700
    allocations.

    Every item is some fifty small dicts and lists that die young by reference counting,
    yet they trigger the collector, which then walks every item in flight: measured at a
    quarter of the client's CPU per item. The cycles it exists for are a handful per
    request (inside botocore), which `_Committer` collects on its own schedule.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stop(book: Ledger, run_id: str, state: str, error: str, *, bad_input: bool = False) -> Run:
    """Record why the run stopped.

    When the dump itself was at fault, also record a hash of the part already imported:
    with it, `resume` accepts the file once the user has fixed what follows the checkpoint.
    """
    run = book.run(run_id)
    prefix = file_hash(run.file, run.byte_offset) if bad_input and _exists(run) else None
    book.set_state(run.id, state, error=error, prefix_hash=prefix)
    _event(
        logging.WARNING, run.id, "stopped", f"{state} at item {run.items_committed}: {error}",
        state=state, items=run.items_committed, byte=run.byte_offset,
    )  # fmt: skip
    return run


def _after_service_error(run: Run, e: ServiceError, client: Any, gentler: str = "") -> str:
    """The hint for a run that DynamoDB stopped: resume (`gentler` after throttling),
    unless its table is gone or was created anew, where resuming would skip the items the
    old table took with it."""
    try:
        info = describe_table(client, run.table)
    except RimportError:  # the endpoint itself is away: resuming later is right
        return _resume(run, e.hint, e.param) + gentler
    if info is None or (run.table_identity and info.identity != run.table_identity):
        what = "no longer exists" if info is None else "was created anew"
        e.message += f" (table {run.table!r} {what})"
        return f"what was written to it is gone; import the file again with {_start_over(run)}"
    return _resume(run, e.hint, e.param) + gentler


def _resume(run: Run, first: str | None, param: str | None = None) -> str:
    then = _resume_command(run)
    if param == "max_outage":  # waiting longer may be all it takes
        longer = max(2 * (run.options.get("max_outage") or 300), 60)
        patient = _resume_command(run, "--max-outage", f"{longer:g}")
        return f"{first}; then {then}, or {patient} to wait longer for it"
    return f"{first}; then {then}" if first else f"continue with {then}"


def _gentler(run: Run, writer: BatchWriter) -> str:
    """After DynamoDB throttled the run, the resume that asks less of the table: the
    same run with half the requests in flight (or a WCU cap under the pace it kept up)."""
    if not writer.throttled:
        return ""
    concurrency = run.options.get("concurrency") or DEFAULT_CONCURRENCY
    words = ["--concurrency", str(max(1, concurrency // 2))]
    if writer.pace:
        words += ["--max-wcu", f"{max(1, int(writer.pace)):d}"]
    return (
        f"; DynamoDB throttled {writer.throttled:,} of its requests: "
        f"{_resume_command(run, *words)} "
        "asks less of the table"
    )


def _resume_command(run: Run, *more: str) -> str:
    """`rimport resume ID`, and for a run read from a stream, `--from` the same stream."""
    if run.source == "stream":
        more = ("--from", run.file, *more)
    return command(run, "resume", run.id, *more)


def command(run: Run, *words: str) -> str:
    """A command about `run` for the user to type, quoted for the shell, naming the
    run's ledger when it is not the default one (else the command would not find it)."""
    if run.ledger and Path(run.ledger) != states.default_path():
        words = (*words, "--ledger", run.ledger)
    return "`" + " ".join(shlex.quote(w) for w in ("rimport", *words)) + "`"


def _changed_while_read(run: Run) -> str | None:
    """Whether the file grew or shrank while the run read it: only the bytes it hashed at
    the start were read, so a change is reported, never silently absorbed or half read."""
    if run.source is not None:  # a stream has no size to compare; S3 GETs check the ETag
        return None
    try:
        size = Path(run.file).stat().st_size
    except OSError:
        return "the file was removed while it was read"
    if size == run.file_size:
        return None
    how = "grew" if size > run.file_size else "shrank"
    return (
        f"the file {how} from {run.file_size:,} to {size:,} bytes while it was read; "
        f"only its first {run.file_size:,} bytes were imported"
    )


def unchanged(run: Run) -> bool:
    """Whether the run's file still holds the bytes it had when the run read it."""
    if run.source == "s3":
        return _object_identity(run.file) == (run.file_size, run.file_hash)
    if run.source is not None:
        return False  # a stream cannot be read again to tell
    path = Path(run.file)
    if not path.is_file() or path.stat().st_size != run.file_size:
        return False
    if run.block_hashes:  # on both cores
        return block_hashes(path) == run.block_hashes
    return file_hash(path) == run.file_hash  # a run recorded before block hashes


def _check_unchanged(book: Ledger, run: Run, dump: Dump) -> None:
    if unchanged(run):
        return
    current, blocks = fingerprint(dump.path)
    if run.prefix_hash and file_hash(dump.path, run.byte_offset) == run.prefix_hash:
        _event(
            logging.INFO, run.id, "changed_after_checkpoint",
            f"{run.file} changed after byte {run.byte_offset} only; continuing",
            byte=run.byte_offset,
        )  # fmt: skip
        book.set_file(run.id, dump.size, current, blocks)
        return
    raise FileChangedError(
        f"{run.file} has changed since run {run.id} read it ({run.file_hash[:19]}… is now "
        f"{current[:19]}…)",
        f"resuming would mix two versions of the data; import the new file with {_start_over(run)}",
    )


def _start_over(run: Run, table: str | None = None, keys: list[str] | None = None) -> str:
    """The command that imports the run's file afresh: `start` alone would point back here.
    It names the endpoint and creates the table with the run's key, should it be gone
    (or, given, into another `table` created with `keys`)."""
    words = ["start", run.file, "--table", table or run.table]
    if run.endpoint != endpoints.DEFAULT:
        words += ["--endpoint", run.endpoint]
    if run.options.get("allow_remote"):
        words.append("--allow-remote")
    keys = keys or run.options.get("keys") or []
    if keys:
        words += ["--create-table", "--key", keys[0]]
        words += ["--sort-key", keys[1]] if len(keys) > 1 else []
    if transform := run.options.get("transform"):
        words += ["--transform", transform["spec"]]
    return command(run, *words, "--new")


def _key_mistake(
    dump: Dump, keys: tuple[KeySpec, ...], transform: Transform | None
) -> KeyMistake | None:
    """The key mistake all of the dump's first items share, judged on what the transform
    makes of them when there is one."""
    if transform is None:
        return key_mistake_in(dump, keys)
    return key_mistake_in(dump, keys, Apply(transform, dump.items_as), Check(keys))


def _sample(dump: Dump, keys: tuple[KeySpec, ...], transform: Transform | None) -> None:
    """Refuse to create a table with a key that every one of the dump's first items fails
    the same way: the table would stay behind, empty, with the wrong key."""
    if mistake := _key_mistake(dump, keys, transform):
        if mistake.fitting_keys:
            hint = f"the table was not created; pass create_keys={mistake.fitting_keys}"
        else:
            hint = (
                "the table was not created; name in create_keys an attribute the items have, "
                "or check that the file is the dump you mean"
            )
        raise KeyMismatchError(mistake, "create", hint)


def _other_table(run: Run, mistake: KeyMistake) -> str:
    """What to do when the items do not fit the key of the run's table, which already
    existed: a table's key cannot change, and the table is the user's to keep or delete."""
    done = f"nothing was written (run {run.id} stopped at item 0)"
    if not mistake.fitting:
        return f"{done}; check that {run.file} is a dump for table {run.table!r}"
    keys = [_spelled(k) for k in mistake.fitting]
    return (
        f"{done}; a table's key cannot change: import into a new table keyed "
        f"{', '.join(keys)} with {_start_over(run, table='NEW_TABLE', keys=keys)}"
    )


def _spelled(key: KeySpec) -> str:
    return f"{key.name}:{key.type}"


def _same_transform(run: Run, given: TransformSpec | None) -> Transform | None:
    """The transform to resume `run` with: the one it recorded, loaded again (or `given`),
    refused if its code changed, as resuming would transform the rest of the file
    differently from what is already in the table."""
    recorded = run.options.get("transform")
    if recorded is None:
        if given is not None:
            raise UsageError(
                f"run {run.id} was started without a transform",
                f"resume it without one, or import the file afresh through the transform with "
                f"{_start_over(run)} and --transform",
            )
        return None
    try:
        loaded = load(given if given is not None else recorded["spec"])
    except UsageError as e:
        e.message = f"run {run.id} cannot load its {e.message}"
        spec = str(recorded["spec"])
        if spec.startswith("__main__:") or "<" in spec:  # given to import_file as a function
            e.hint = "it was a function given to import_file: give it to resume_run as transform="
        e.hint = f"{e.hint}; or start over with {_start_over(run)}"
        raise
    if why := changed(loaded, recorded):
        raise UsageError(
            f"run {run.id}: {why}; resuming would import the rest of the file differently "
            "from what is already in the table",
            f"put the transform back as it was and resume, or start over with {_start_over(run)}",
        )
    return loaded


def _connect(where: Endpoint, region: str | None, client: Any) -> tuple[Any, Transport, str]:
    """(client for table calls, transport for writes, region).

    A client given by the caller (a test fake, a preconfigured botocore client) does both.
    """
    if client is not None:
        return client, SyncTransport(client), region or ""
    conn = connect(where, region)
    return conn.client, open_transport(conn.client, conn.credentials), conn.region


def _reconnect(run: Run, client: Any) -> tuple[Any, Transport]:
    """The client and transport of a recorded run, at its endpoint, judged again."""
    where = endpoints.parse(run.endpoint)
    endpoints.check(where, run.options.get("allow_remote", False))
    client, transport, _ = _connect(where, run.region, client)
    return client, transport


def _same_table(book: Ledger, run: Run, client: Any) -> TableInfo:
    """The run's table, refused if it is not the one the run wrote its checkpoint into.

    A table deleted and created again under the same name has lost every item written
    before the checkpoint; writing only what follows would end in a `completed` run with a
    table missing part of the file. A run that wrote nothing yet may take the new table.
    A missing table is not created here: the hint names the `start` that creates it.
    """
    info = describe_table(client, run.table)
    if info is None:
        raise TableError(
            f"table {run.table!r} at {run.endpoint} no longer exists since run {run.id} "
            f"started: the {run.items_written:,} items it wrote before its checkpoint are gone",
            f"import the whole file again with {_start_over(run)}",
        )
    anew = run.table_identity not in (None, info.identity)
    if anew and (run.items_written or run.dead_letters):
        raise TableError(
            f"table {run.table!r} at {run.endpoint} was deleted and created again since run "
            f"{run.id} wrote to it: the {run.items_written:,} items it wrote before its "
            "checkpoint are not in it",
            f"import the whole file again with {_start_over(run)}",
        )
    info = ensure_table(client, run.table, None, endpoints.parse(run.endpoint))
    if info.identity != run.table_identity:
        book.set_table_identity(run.id, info.identity)
    return info


def finished(run: Run) -> bool:
    """Read to the end of its file; only `retry-failed` has anything left to do."""
    return run.state in (states.COMPLETED, states.COMPLETED_WITH_FAILURES)


def result_of(run: Run, elapsed: float, book: Ledger | None = None) -> ImportResult:
    """The run's result; with the ledger it is in, also how many dead letters are retryable."""
    retryable = 0
    if book is not None and run.dead_letters > 0:
        retryable = sum(book.dead_letter_counts(run.id)["retryable"].values())
    return ImportResult(
        run.id, run.state, run.items_committed, run.items_written, run.dead_letters, elapsed,
        retryable,
    )  # fmt: skip


def _exists(run: Run) -> bool:
    return run.source is None and Path(run.file).is_file()


def _identity(dump: Dump) -> tuple[str, list[str] | None]:
    """(file_hash, block hashes) recorded when a run starts. A stream is hashed as it
    passes, and its hash recorded at its end; an S3 object goes by its ETag and version."""
    where = dump.location
    if where.kind == "file":
        assert where.path is not None
        return fingerprint(where.path, dump.size)
    if where.kind == "s3":
        return where.identity() or "", None
    return "", None


def _object_identity(url: str) -> tuple[int, str]:
    where = Location(url)
    return where.size() or 0, where.identity() or ""


def _check_same_object(run: Run, dump: Dump) -> None:
    """An S3 object replaced since the run read it (another ETag or version) is refused."""
    now = (dump.size or 0, dump.location.identity() or "")
    if now != (run.file_size, run.file_hash):
        raise FileChangedError(
            f"{run.file} has changed since run {run.id} read it ({run.file_hash} is now {now[1]})",
            f"resuming would mix two versions of the data; import the new object with "
            f"{_start_over(run)}",
        )


def _stream_again(run: Run, source: str | Path | None) -> Dump:
    """A run started on a stream, given the same bytes again: read up to its checkpoint
    (without writing), checked against the hash recorded there."""
    if source is None:
        raise UsageError(
            f"run {run.id} read its dump from a stream ({run.file}), which cannot be read again",
            f"give it the same bytes again, e.g. `cat DUMP | rimport resume {run.id} --from -`"
            + (f" --ledger {shlex.quote(run.ledger)}" if _other_ledger(run) else ""),
        )
    where = Location(source)
    where.kind = "stream"  # read once, from its start, whatever it is
    dump = Dump(where, Shape.parse(run.shape), items_as=items_as(run.format), checkpoints=True)
    if run.byte_offset:
        dump.skip_to(Position(run.items_committed, run.byte_offset), run.checkpoint_hash, run.id)
    return dump


def _other_ledger(run: Run) -> bool:
    return bool(run.ledger and Path(run.ledger) != states.default_path())


def _outage_notice(run_id: str, notice: Notice | None) -> Callable[[float | None, str], None]:
    """The writer's word that the endpoint stopped answering (or answers again), as a line
    for the log and for whoever watches the run."""

    def hook(since: float | None, cause: str) -> None:
        if since is None:
            text = "the endpoint answers again"
            _event(logging.WARNING, run_id, "outage_over", text)
        else:
            began = datetime.now() - timedelta(seconds=time.monotonic() - since)
            text = (
                f"waiting for the endpoint since {began:%H:%M:%S} ({cause}); "
                "the run stops, resumably, once --max-outage has passed"
            )
            _event(logging.WARNING, run_id, "outage", text, since=f"{began:%H:%M:%S}",
                   cause=endpoints.redacted(cause))  # fmt: skip
        if notice:
            notice(f"run {run_id}: {text}")

    return hook


def _log_retry(
    run_id: str, count: Callable[[], None] | None = None
) -> Callable[[str, int, float], None]:
    def hook(code: str, attempt: int, delay: float) -> None:
        _event(
            logging.INFO, run_id, "retry",
            f"retry after {code} (attempt {attempt}), waiting {delay:.2f}s",
            code=code, attempt=attempt, delay=round(delay, 3),
        )  # fmt: skip
        if count:
            count()

    return hook


def _event(level: int, run_id: str, event: str, message: str, **fields: Any) -> None:
    """One event of a run for the log: a stable name, and fields to search it by.

    Fields hold counts, codes, offsets and names, never an item's values: a dead letter's
    message (which DynamoDB may write from the item) stays in the ledger."""
    if log.isEnabledFor(level):
        log.log(level, f"run {run_id}: {message}",
                extra={"run": run_id, "event": event, "fields": fields})  # fmt: skip


@contextmanager
def using_ledger(ledger: str | Path | Ledger | None) -> Iterator[Ledger]:
    if isinstance(ledger, Ledger):
        yield ledger
    else:
        with Ledger(ledger) as book:
            yield book


class _JsonLines(logging.Formatter):
    """One event a line, `{"time", "run", "event", ...fields, "level", "message"}`: easy
    to search (`jq 'select(.event == "retry")'`) and to ship. `message` is the same event
    in words, with any URL's user name and password masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "run": getattr(record, "run", None),
            "event": getattr(record, "event", "message"),
        }
        for name, value in getattr(record, "fields", {}).items():
            entry.setdefault(name, value)
        entry["level"] = record.levelname.lower()
        entry["message"] = endpoints.redacted(record.getMessage())
        return orjson.dumps(entry, default=str).decode()


class _PrivateLog(logging.handlers.RotatingFileHandler):
    """Rotated by size, and every file it opens (a new one after a rotation too) is the
    user's alone (0600): the log names files, tables and endpoints."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


@contextmanager
def _log_to(book: Ledger) -> Iterator[None]:
    """Append run events to `$RIMPORT_LOG`, else `rimport.log` beside the ledger, while a
    run works, as JSON lines, rotated at LOG_MAX_BYTES (LOG_BACKUPS old files kept)."""
    path = Path(os.environ.get("RIMPORT_LOG") or book.path.with_name("rimport.log"))
    private_file(path, create=False)  # an older log made readable by others; new ones: 0600
    handler = _PrivateLog(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(_JsonLines())
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
