"""`verify --repair`: the items verify found missing or different, written again.

They go through the run's own writer (`Writer`, with the run's concurrency, WCU cap and
outage budget), in batches of at most 25 with backoff, as the import wrote them; an item
that still cannot be written becomes a dead letter of the run, so `status`,
`dead-letters` and `retry-failed` see it as any other. A repair stopped midway leaves the
table partly mended and nothing false in the ledger: verifying again with a repair finds
what is still wrong and writes only that. The run's counts are left alone: an item
written again is not a new item of the dump.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from contextlib import closing
from typing import Any

import orjson

from .hooks import Hooks
from .items import write_units
from .keys import key_of
from .ledger import Ledger, Run
from .reader import Shape
from .records import DeadLetter
from .run import reconnect
from .runlog import log_retry, outage_notice
from .writer import BatchWriter, Job, RetryPolicy, Writer

BATCH = 25  # BatchWriteItem's limit


def repair(
    db: sqlite3.Connection,
    book: Ledger,
    run: Run,
    client: Any,
    key_names: tuple[str, ...],
    hooks: Hooks,
    profile: str | None = None,
) -> int:
    """Write again each expected item in `db` marked `fix` (and not a dead letter): how
    many were written. `client`: the caller's stand-in for the endpoint, or None."""
    settings = run.settings
    requests = Shape.parse(run.shape).kind == "table"  # a request file's: puts and deletes
    _, transport = reconnect(run, client, profile)
    writer: BatchWriter = Writer(
        transport, run.table, key_names, RetryPolicy(max_outage=settings.max_outage or 300.0),
        max_inflight=settings.concurrency, max_wcu=settings.max_wcu,
        on_retry=log_retry(run.id), on_outage=outage_notice(run.id, hooks.notice),
        entries=requests,
    )  # fmt: skip
    rows = db.execute(
        "SELECT idx, item, gone FROM expected WHERE fix = 1 AND dead = 0 ORDER BY idx"
    )
    open_jobs: deque[tuple[Job, list[tuple[int, bytes]]]] = deque()
    written = 0
    with closing(writer):
        while True:
            picked = rows.fetchmany(BATCH)
            chunk = [(i, _request(raw, gone) if requests else raw) for i, raw, gone in picked]
            if chunk:
                items = [orjson.loads(raw) for _, raw, _ in picked]  # an item, or a key deleted
                job = writer.submit(
                    [sent for _, sent in chunk],
                    [key_of(item, key_names) for item in items],
                    [1 if gone else write_units(item)
                     for item, (_, _, gone) in zip(items, picked, strict=True)]
                    if settings.max_wcu else None,
                )  # fmt: skip
                open_jobs.append((job, chunk))
            while open_jobs and (not chunk or len(open_jobs) >= settings.concurrency):
                writer.poll(block=True)
                while open_jobs and open_jobs[0][0].done:
                    job, done = open_jobs.popleft()
                    written += len(done) - len(job.failures)
                    _dead_letter(book, run, job, done)
            if not chunk and not open_jobs:
                return written


def _request(item: bytes, gone: int) -> bytes:
    """The write request that leaves the key as the request file did."""
    if gone:
        return b'{"DeleteRequest":{"Key":' + item + b"}}"
    return b'{"PutRequest":{"Item":' + item + b"}}"


def _dead_letter(book: Ledger, run: Run, job: Job, rows: list[tuple[int, bytes]]) -> None:
    if job.failures:
        book.add_dead_letters(run.id, [
            DeadLetter(rows[f.position][0], orjson.loads(rows[f.position][1]), f.code,
                       f.message, f.attempts, f.retryable)
            for f in job.failures
        ])  # fmt: skip
