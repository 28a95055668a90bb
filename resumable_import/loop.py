"""The run loop: stream batches to the writer, commit checkpoints in file order.

Several batches are in the writer's hands at once and may finish in any order, but they
are committed strictly in file order, so the checkpoint is always a prefix of the file
with no gaps: every item before it is in the table or in the dead letters. A batch that
shares a key with one still in flight waits for it, so items with the same key reach the
table in file order.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import orjson

from . import collector
from . import endpoint as endpoints
from . import ledger as states
from .errors import (
    FileChangedError,
    InputError,
    KeyMismatchError,
    LedgerError,
    RunInterrupted,
    ServiceError,
    Text,
)
from .fingerprint import file_hash
from .firstitems import key_mistake_of
from .hints import (
    after_service_error,
    gentler,
    other_table,
    resume_command,
    resume_hint,
    start_over,
)
from .hooks import Hooks
from .keys import Key, KeySpec, canonical, key_of, key_of_request
from .ledger import DeadLetter, Ledger, Run
from .pipeline import Ready, ready_batches
from .progress import Figures, OnProgress, Progress, known
from .reader import Dump, Position
from .requestitems import FORMAT as REQUESTS
from .runlog import event, log_retry, log_to, outage_notice
from .transform import Transform
from .transport import Transport
from .unchanged import changed_while_read, file_exists
from .workers import writer_for
from .writer import BatchWriter, Failure, Job, RetryPolicy

# Batches handed to the writer but not yet committed are bounded by the bytes of their
# items, not by their number: behind one slow answer, the other connections keep working
# on later batches (committed in file order once it arrives), without memory growing.
# 8 MiB rides out a 2 s answer at 4,000 items/s of 1 KB; 16 MiB cost 15 MB more peak RSS.
# Refused elements wait for the checkpoint too, and count as what they hold: the element
# as kept, its reason, and the objects around them (REFUSED_COST, measured: a million
# refused behind 2 s answers took 102 MB when they counted nothing).
MAX_BYTES_AHEAD = 8 << 20
MAX_BATCHES_AHEAD = 4096
# A refused element and its share of its batch take about 260 bytes of Python objects
# (tracemalloc, 10,000 of them); counting 400 leaves room for the allocator's own.
REFUSED_COST = 400
CHECKPOINT_LOG_EVERY = 100  # batches
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
    items_deleted: int = 0  # keys deleted (a request file's DeleteRequests), apart from puts
    finished_at: str | None = None  # when it completed (UTC, ISO 8601); None if it has not
    imported_before: bool = False  # `start` found the file imported by this run already
    superseded: int = 0  # dead letters a later item with the same key made moot: no failures


def finished(run: Run) -> bool:
    """Read to the end of its file; only `retry-failed` has anything left to do."""
    return run.state in (states.COMPLETED, states.COMPLETED_WITH_FAILURES)


def stopped_before_writing(run: Run) -> bool:
    """Failed or stopped at item 0 with nothing written nor dead-lettered: a wrong key or a
    refused format. Starting anew loses nothing, so such a run blocks no corrected
    command."""
    stopped = run.state in (states.FAILED, states.INTERRUPTED)
    return stopped and run.items_committed == 0 and not run.items_written and not run.dead_letters


def superseded_notice(run: Run) -> str:
    """What a new run says of the one it takes over from (see `stopped_before_writing`)."""
    return (
        f"run {run.id} stopped before writing anything ({run.state} at item 0); starting "
        f"anew (run {run.id} stays in the ledger as it stopped)"
    )


def sent_key(
    requests: bool, key_names: tuple[str, ...]
) -> Callable[[dict[str, Any]], bytes | None]:
    """The canonical key of a dead letter's item as it was sent: an item in attribute
    values, or a request file's whole request; None for one without a key."""
    of = key_of_request if requests else key_of

    def key(item: dict[str, Any]) -> bytes | None:
        k = of(item, key_names)
        return None if k is None else canonical(k)

    return key


def result_of(run: Run, elapsed: float, book: Ledger | None = None) -> ImportResult:
    """The run's result; with the ledger it is in, also how many dead letters are retryable."""
    retryable = 0
    if book is not None and run.dead_letters > 0:
        retryable = sum(book.dead_letter_counts(run.id)["retryable"].values())
    return ImportResult(
        run.id, run.state, run.items_committed, run.items_written, run.dead_letters, elapsed,
        retryable, run.items_deleted, run.finished_at, superseded=run.superseded_dead_letters,
    )  # fmt: skip


# -- the loop ---------------------------------------------------------------------------


def execute(
    book: Ledger,
    run: Run,
    dump: Dump,
    client: Any,
    transport: Transport,
    keys: tuple[KeySpec, ...],
    hooks: Hooks,
    retry: RetryPolicy | None,
    transform: Transform | None = None,
    *,
    profile: str | None = None,
    shared_client: bool = False,
) -> ImportResult:
    """Write the run's dump from its checkpoint on, committing as it goes. `profile`: the
    AWS profile writer processes take credentials from; `shared_client`: the client is
    the caller's, which only this process can use (one writer, here)."""
    started = time.monotonic()
    resuming = run.items_committed > 0
    book.set_state(run.id, states.RUNNING)
    with log_to(book):
        if not resuming and (mistake := key_mistake_of(dump, keys, transform)):
            _stop(book, run.id, states.FAILED, mistake.message)
            raise KeyMismatchError(mistake, "run", other_table(run, mistake))
        verb = "resumed" if resuming else "started"
        where = endpoints.redacted(run.endpoint)
        event(
            logging.INFO, run.id, verb,
            f"{verb} {run.file} -> table {run.table} at {where}, from item "
            f"{run.items_committed} (byte {run.byte_offset})",
            file=run.file, table=run.table, endpoint=where, items=run.items_committed,
            byte=run.byte_offset,
        )  # fmt: skip
        settings = run.settings
        if retry is None and settings.max_outage is not None:
            retry = RetryPolicy(max_outage=settings.max_outage)
        committer = _Committer(book, run, dump, hooks.progress, hooks.on_progress)
        if run.dead_letters:  # only a resumed run has any: whose key a later item supersedes
            committer.dead_keys = book.retryable_keys(
                run.id, sent_key(dump.items_as == REQUESTS, tuple(k.name for k in keys))
            )
        writer = writer_for(
            run, transport, tuple(k.name for k in keys), retry, entries=dump.items_as == REQUESTS,
            on_retry=log_retry(run.id, committer.retried),
            on_outage=outage_notice(run.id, hooks.notice), profile=profile,
            shared_client=shared_client,
        )  # fmt: skip
        committer.throttled = lambda: writer.throttled
        start = Position(run.items_committed, run.byte_offset) if resuming else None
        source = ready_batches(
            dump, start, keys, settings.batch_size, units=bool(settings.max_wcu),
            transform=transform,
        )  # fmt: skip
        try:
            with collector.paused(), closing(source), closing(writer):
                _pump(source, writer, committer)
            committer.finish()
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", 2)
            what = "interrupted" if signum == 2 else f"stopped by signal {signum}"
            run = _stop(book, run.id, states.INTERRUPTED, f"{what} by the user")
            raise RunInterrupted(
                f"{what}; run {run.id} stopped at item {run.items_committed}",
                Text("continue with ", resume_command(run), gentler(run, writer)),
                signum=signum,
            ) from None
        except InputError as e:
            run = _stop(book, run.id, states.FAILED, e.message, bad_input=True)
            done = f"{run.items_committed:,} item{'s are' if run.items_committed != 1 else ' is'}"
            e.hint = Text(f"{done} safely imported before it; fix the file and run ",
                          resume_command(run), ", or start over with ",
                          start_over(run))  # fmt: skip
            raise
        except ServiceError as e:
            softer = gentler(run, writer)
            e.hint = after_service_error(book.run(run.id), e, client, softer)  # and e.message
            run = _stop(book, run.id, states.FAILED, e.message)
            raise
        except LedgerError as e:
            # The checkpoint that could not be written is simply not there: what was
            # committed before it stands, and resume starts from it.
            with contextlib.suppress(LedgerError):
                _stop(book, run.id, states.FAILED, e.message)
            e.hint = resume_hint(run, e.hint)
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
        # Pending dead letters only: one a later item with its key superseded is no failure.
        state = states.COMPLETED_WITH_FAILURES if run.dead_letters else states.COMPLETED
        error = changed_while_read(run)
        book.set_state(run.id, state, error=error)
        moot = run.superseded_dead_letters
        event(
            logging.INFO, run.id, "finished",
            f"{state}, {run.items_written} items written, {run.dead_letters} dead letters"
            + (f" ({moot} more superseded by a later item with the same key)" if moot else ""),
            state=state, items=run.items_committed, written=run.items_written,
            dead_letters=run.dead_letters, superseded=moot, retries=committer.retries,
            throttled=committer.throttled(), elapsed=round(time.monotonic() - started, 3),
        )  # fmt: skip
        if error:
            event(logging.WARNING, run.id, "file_changed", error)
            raise FileChangedError(
                f"{run.file}: {error}",
                Text(
                    f"the {run.items_committed:,} items of the file as it was are imported (run "
                    f"{run.id}); to import it as it is now: ",
                    start_over(run),
                ),
            )
        return result_of(book.run(run.id), time.monotonic() - started, book)


def _pump(source: Iterator[Ready], writer: BatchWriter, committer: _Committer) -> None:
    """Hand batches to the writer, as many as MAX_BYTES_AHEAD allows, and commit them in
    file order."""
    inflight: deque[tuple[Ready, Job, int]] = deque()
    held: set[Key] = set()  # keys of the batches in flight; theirs never overlap
    ahead = 0  # bytes of the items in flight, and of those refused behind them

    def settle() -> None:
        """Commit the batches done at the head, all in one transaction (see _Committer)."""
        nonlocal ahead
        while inflight and inflight[0][1].done:
            batch, job, size = inflight.popleft()
            ahead -= size
            held.difference_update(batch.keys)
            more = bool(inflight) and inflight[0][1].done
            committer.commit(batch, job.failures, more=more)

    def must_wait(batch: Ready) -> bool:
        return (
            ahead >= MAX_BYTES_AHEAD
            or len(inflight) >= MAX_BATCHES_AHEAD
            or not held.isdisjoint(batch.keys)
        )

    def drain(enough: Callable[[], bool] = lambda: False) -> None:
        """Take in answers and commit until `enough` (by default: until nothing is left)."""
        while inflight and not enough():
            writer.poll(block=True)
            settle()

    try:
        for batch in source:
            drain(enough=lambda: not must_wait(batch))  # noqa: B023 (called right here)
            size = sum(map(len, batch.items)) + sum(
                len(item) + len(message) + REFUSED_COST for _, item, _, message in batch.rejected
            )
            inflight.append((batch, writer.submit(batch.items, batch.keys, batch.units), size))
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
    counts an element whose items are only partly written. So is one with `more` done
    right behind it: their checkpoint is one commit, a cold SQLite transaction that cost
    146 µs of CPU each amid a run's work (6 µs an item), and its moving less often only
    means that a crash writes those batches again.

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
        self._requests = dump.items_as == REQUESTS
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
        self._held_later: list[tuple[bytes, int]] = []
        self._held_deleted = self._held_batches = 0
        # Canonical keys of the run's retryable pending dead letters: a later item with one
        # of them, once written, supersedes them (`retry-failed` must not undo it). Usually
        # empty, and then no key is looked at.
        self.dead_keys: set[bytes] = set()

    def commit(self, batch: Ready, failures: list[Failure], *, more: bool = False) -> None:
        later = self._superseding(batch, failures) if self.dead_keys else []
        dead = [
            DeadLetter(batch.indexes[f.position], orjson.loads(batch.items[f.position]), f.code,
                       f.message, f.attempts, f.retryable, key=canonical(batch.keys[f.position]))
            for f in failures
        ] + [
            DeadLetter(index, json.loads(item), code, message, 0, False)
            for index, item, code, message in batch.rejected
        ]  # fmt: skip
        written = len(batch.items) - len(failures)
        deleted = 0
        if self._requests:  # a request file's deletes, counted apart from its puts
            failed = {f.position for f in failures}
            deleted = sum(
                1 for p, entry in enumerate(batch.items)
                if entry.startswith(b'{"DeleteRequest"') and p not in failed
            )  # fmt: skip
            written -= deleted
        if failures:
            self.dead_keys.update(d.key for d in dead if d.retryable and d.key is not None)
        if not batch.whole or more:
            self._held += dead
            self._held_written += written
            self._held_later += later
            self._held_deleted += deleted
            self._held_batches += batch.whole
            return
        if self._held:
            dead, self._held = self._held + dead, []
        written, deleted, self._held_written, self._held_deleted = (
            written + self._held_written, deleted + self._held_deleted, 0, 0)  # fmt: skip
        if self._held_later:
            later, self._held_later = self._held_later + later, []
        dead.sort(key=lambda d: d.index)
        superseded = self._book.commit(
            self._run_id,
            items_committed=batch.last + 1,
            byte_offset=batch.end,
            written=written,
            dead=dead,
            checkpoint_hash=self._dump.prefix_hash(batch.end),
            deleted=deleted,
            superseded=later,
        )
        self._checkpoint = (batch.last + 1, batch.end)
        self._position = batch.position
        if self._bytes_start is None:
            self._bytes_start = batch.position
        before, self._batches = self._batches, self._batches + 1 + self._held_batches
        self._held_batches = 0
        self.dead_letters += len(dead) - superseded
        self._dead.update(d.code for d in dead)
        if self._batches // COLLECT_EVERY != before // COLLECT_EVERY:
            gc.collect(1)  # the few cycles made since the last time (botocore's, per request)
        if self._batches // CHECKPOINT_LOG_EVERY != before // CHECKPOINT_LOG_EVERY:
            self.flush_log()
        if self._progress:
            self._progress(batch.last + 1, batch.position, self._dump.size or 0)
        if self._on_progress:
            self._on_progress(self.figures())

    def _superseding(self, batch: Ready, failures: list[Failure]) -> list[tuple[bytes, int]]:
        """(key, item index) of the batch's written items (puts or deletes) whose key has
        retryable dead letters before them; those keys leave `dead_keys`, as the ledger
        marks their dead letters superseded."""
        failed = {f.position for f in failures}
        later = []
        for position, key in enumerate(batch.keys):
            if position not in failed and (c := canonical(key)) in self.dead_keys:
                self.dead_keys.discard(c)
                later.append((c, batch.indexes[position]))
        return later

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
        event(
            logging.INFO, self._run_id, "checkpoint",
            f"checkpoint at item {items}, byte {offset}"
            + (f"; dead-lettered since the last line: {dead}" if dead else ""),
            items=items, byte=offset, dead_by_code=dict(self._dead),
            retries=self.retries, throttled=self.throttled(),
        )  # fmt: skip
        self._dead.clear()


def _stop(book: Ledger, run_id: str, state: str, error: str, *, bad_input: bool = False) -> Run:
    """Record why the run stopped.

    When the dump itself was at fault, also record a hash of the part already imported:
    with it, `resume` accepts the file once the user has fixed what follows the checkpoint.
    """
    run = book.run(run_id)
    prefix = file_hash(run.file, run.byte_offset) if bad_input and file_exists(run) else None
    book.set_state(run.id, state, error=error, prefix_hash=prefix)
    event(
        logging.WARNING, run.id, "stopped", f"{state} at item {run.items_committed}: {error}",
        state=state, items=run.items_committed, byte=run.byte_offset,
    )  # fmt: skip
    return run
