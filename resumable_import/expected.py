"""The items a run's dump says the table must hold, and the table read back against them.

`verify` compares and reports them; `reconcile` turns what a bulk engine refused into dead
letters. The dump is read again exactly as the run read it (its file unchanged since, its
format and shape, its transform), each element made ready as the import made it, so the
item each key must hold is the one the run sent: the later of two elements with one key,
as in the table. Those items go to a temporary SQLite file keyed by `keys.canonical`, not
to memory, so a dump of any size is compared in bounded memory. Dead-lettered items are
expected absent and counted apart.
"""

from __future__ import annotations

import math
import os
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from hashlib import blake2b
from pathlib import Path
from typing import Any

import orjson

from . import endpoint as endpoints
from .dynamo import TableInfo, describe_table
from .errors import Arg, FileChangedError, InputError, TableError, Text, UsageError
from .hints import command, start_over
from .hooks import Hooks
from .keys import KeySpec, canonical
from .ledger import Ledger, Run
from .loop import sent_key
from .pipeline import ready_batches
from .progress import Figures
from .reader import Dump, Shape, items_as
from .records import DeadLetter
from .requestitems import FORMAT as REQUESTS
from .samestream import as_imported, given_again
from .transform import Transform
from .unchanged import check_same_object, file_exists, unchanged
from .verdict import SHOWN, Difference, VerifyResult
from .verifyget import compare_by_key
from .verifyplan import Plan, plan_for
from .verifyscan import Cut, scan_compare


def reconcile(
    book: Ledger, run: Run, client: Any, loaded: Transform | None, code: str, message: str
) -> int:
    """The items a bulk engine said it refused, found as verify finds them: the dump read
    again and the table read back (by key, or by scan where that costs less). Each item
    missing or different becomes a retryable dead letter of the run with `code` and
    `message`, so `retry-failed` writes it with BatchWriteItem; how many. The table, not
    the engine's report, says what arrived, and an item already dead-lettered is marked
    expected absent: reconciling again after a kill adds no second letter."""
    dump = dump_again(run, None)
    info = table_of(run, client)
    with (
        tempfile.TemporaryDirectory(prefix="rimport-reconcile-") as tmp,
        closing(expected_db(Path(tmp) / "expected.sqlite")) as db,
    ):
        meter = Meter(Hooks(), time.monotonic())
        with closing(dump.location):
            load_expected(db, dump, info.keys, loaded, run, None, meter)
        mark_dead_letters(db, book, run, info.key_names)
        plan = plan_for(db, info, None, False, None)
        read_table(db, client, info, VerifyResult(run.id, run.table), plan, False, meter)
        rows = db.execute(
            "SELECT idx, key, item FROM expected WHERE fix = 1 AND dead = 0 ORDER BY idx"
        )
        count = 0
        while page := rows.fetchmany(1000):
            book.add_dead_letters(run.id, [
                DeadLetter(index, orjson.loads(item), code, message, 1, True, key=key)
                for index, key, item in page
            ])  # fmt: skip
            count += len(page)
    return count


def read_table(
    db: sqlite3.Connection,
    client: Any,
    info: TableInfo,
    result: VerifyResult,
    plan: Plan,
    extra: bool,
    meter: Meter,
) -> None:
    """Mark each expected item in `db` by the plan's method, then count what was found."""
    if plan.method == "scan":
        cut = Cut.of(plan.by_scan * 4096, plan.size / max(1, plan.items))
        found = scan_compare(db, client, info.name, info.key_names, cut, meter.table)
        result.read_units_measured = found.measured
        result.read_units = found.read_units
        if extra:
            result.extra, result.extra_keys = found.extra, found.extra_keys or []
    else:
        compare_by_key(db, client, info.name, info.key_names, result, meter.table)
    tally(db, result, info.key_names)


def compare_again(
    db: sqlite3.Connection, client: Any, info: TableInfo, result: VerifyResult, meter: Meter
) -> VerifyResult:
    """Read the items marked `fix` (found wrong, then written again) by key once more."""
    db.execute("UPDATE expected SET seen = 0, diff = NULL WHERE fix = 1")
    where = "fix = 1 AND dead = 0"
    compare_by_key(db, client, info.name, info.key_names, result, meter.table, where=where)
    tally(db, result, info.key_names, where)
    return result


def tally(
    db: sqlite3.Connection,
    result: VerifyResult,
    key_names: tuple[str, ...],
    where: str = "dead = 0",
) -> None:
    """The counts and the first differences, in file order, from the marks in `db`; the
    read units estimated from the items' sizes when DynamoDB did not say them."""
    live = f"FROM expected WHERE {where}"
    wrong = "((seen = 0 AND gone = 0) OR diff IS NOT NULL)"  # a key deleted is right absent
    (result.items, result.identical, result.different, result.missing, size, units) = db.execute(
        f"SELECT count(*), coalesce(sum(NOT {wrong}), 0), coalesce(sum(diff IS NOT NULL), 0),"
        f" coalesce(sum(seen = 0 AND gone = 0), 0), coalesce(sum(length(item)), 0),"
        f" coalesce(sum((length(item) + 4095) / 4096), 0) {live}"
    ).fetchone()
    for index, raw, diff, gone in db.execute(
        f"SELECT idx, item, diff, gone {live} AND {wrong} ORDER BY idx LIMIT ?", (SHOWN,)
    ):
        item = orjson.loads(raw)
        names = orjson.loads(diff) if diff else None
        key = {n: item[n] for n in key_names}
        result.differences.append(Difference(index, key, names, not_deleted=bool(gone)))
    db.execute(f"UPDATE expected SET fix = 1 WHERE {where} AND {wrong}")
    if not result.read_units_measured:
        result.read_units = float(units if result.method == "get" else math.ceil(size / 4096))


class Meter:
    """Progress as the import shows it: first the dump's bytes read, then the expected
    items' bytes compared with the table."""

    def __init__(self, hooks: Hooks, started: float) -> None:
        self._hooks = hooks
        self._started = started
        self.total: int | None = None  # bytes of the expected items, once they are known

    def dump(self, items: int, done: int, total: int | None) -> None:
        self._tell(items, done, total, final=False)

    def table(self, items: int, done: int) -> None:
        self._tell(items, done, self.total, final=done >= (self.total or 0))

    def _tell(self, items: int, done: int, total: int | None, *, final: bool) -> None:
        if self._hooks.progress:
            self._hooks.progress(items, done, total or 0)
        if self._hooks.on_progress:
            elapsed = time.monotonic() - self._started
            self._hooks.on_progress(Figures(items, done, total, elapsed, final=final))


def table_of(run: Run, client: Any) -> TableInfo:
    info = describe_table(client, run.table)
    if info is None:
        raise TableError(
            f"table {run.table!r} at {endpoints.redacted(run.endpoint)} no longer exists "
            f"since run {run.id} imported into it: there is nothing to verify",
            Text("import the file again with ", start_over(run)),
        )
    return info


def dump_again(run: Run, source: str | Path | None) -> Dump:
    """The run's dump, to be read from its start as the run read it."""
    shape, how = Shape.parse(run.shape), items_as(run.format)
    if run.source == "stream":
        if source is None:
            raise UsageError(
                f"run {run.id} read its dump from a stream ({run.file}), which cannot be read "
                "again",
                Text(
                    "give it the same bytes again, e.g. cat DUMP | ",
                    command(run, "verify", run.id, args=(Arg("source", "-"),)),
                ),
            )
        return Dump(given_again(run, source), shape, items_as=how)
    dump = Dump(run.file, shape, items_as=how)
    if run.source == "s3":
        try:
            check_same_object(run, dump)
        except FileChangedError as e:  # its hint is resume's: nothing here would mix
            e.hint = Text(
                "it no longer says what the table should hold; import the new object with ",
                start_over(run),
            )
            raise
        return dump
    if not file_exists(run):
        raise InputError(
            f"{run.file}: the dump of run {run.id} is gone",
            "put the file back where it was to verify it",
        )
    if not unchanged(run):
        raise FileChangedError(
            f"{run.file} has changed since run {run.id} read it: it no longer says what the "
            "table should hold",
            Text("import the new file with ", start_over(run)),
        )
    dump.size = run.file_size
    return dump


def expected_db(path: Path) -> sqlite3.Connection:
    """A private scratch database: it holds the items, which may be secret."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -16000")  # 16 MB: bounded memory, whatever the dump
    db.execute(
        "CREATE TABLE expected (key BLOB PRIMARY KEY, idx INTEGER NOT NULL, item BLOB NOT NULL,"
        " dead INTEGER NOT NULL DEFAULT 0, seen INTEGER NOT NULL DEFAULT 0, diff TEXT,"
        " fix INTEGER NOT NULL DEFAULT 0, gone INTEGER NOT NULL DEFAULT 0)"
        " WITHOUT ROWID"
    )
    return db


def load_expected(
    db: sqlite3.Connection,
    dump: Dump,
    keys: tuple[KeySpec, ...],
    transform: Transform | None,
    run: Run,
    sample: float | None,
    meter: Meter,
) -> None:
    """Each item the dump puts, by key: a later element with one key replaces the earlier,
    as its write did in the table. Items refused before sending are left out (they are
    dead letters, counted apart). A sample is drawn by key, so that the later element of
    a key is kept or left out with the earlier: a fresh salt each time, another share. A
    stream given again is refused at its end if its bytes are not the run's
    (`samestream`): nothing is compared before that is known."""
    keep = _sampler(sample)
    as_expected = _from_request if dump.items_as == REQUESTS else lambda raw: (raw, 0)
    db.execute("BEGIN")
    items = 0
    with as_imported(run, dump):
        for n, ready in enumerate(
            ready_batches(dump, None, keys, 25, reader_process=False, transform=transform), 1
        ):
            found = zip(ready.keys, ready.indexes, ready.items, strict=True)
            rows = [(canonical(k), i, *as_expected(raw)) for k, i, raw in found]
            if keep is not None:
                rows = [r for r in rows if keep(r[0])]
            db.executemany(
                "INSERT OR REPLACE INTO expected (key, idx, item, gone) VALUES (?, ?, ?, ?)", rows
            )
            items += len(ready.items)
            if n % 400 == 0:
                db.execute("COMMIT")
                db.execute("BEGIN")
                meter.dump(items, ready.position, dump.size)
    db.execute("COMMIT")


def _from_request(entry: bytes) -> tuple[bytes, int]:
    """A request file's entry as `checks.PrepareRequest` made it: the item a put leaves,
    or the key a delete leaves absent (`gone`)."""
    for head, gone in ((b'{"PutRequest":{"Item":', 0), (b'{"DeleteRequest":{"Key":', 1)):
        if entry.startswith(head):
            return entry[len(head) : -2], gone
    raise AssertionError(f"not a write request: {entry[:40]!r}")


def _sampler(share: float | None) -> Callable[[bytes], bool] | None:
    if share is None or share >= 1:
        return None
    salt, bound = secrets.token_bytes(16), int(share * 2**64)
    return lambda key: int.from_bytes(blake2b(key, digest_size=8, salt=salt).digest()) < bound


def mark_dead_letters(
    db: sqlite3.Connection, book: Ledger, run: Run, key_names: tuple[str, ...]
) -> int:
    """Mark the items the run dead-lettered as expected absent; how many dead letters."""
    count = 0
    sent = sent_key(Shape.parse(run.shape).kind == "table", key_names)
    for page in book.pages_of_dead_letters(run.id):
        marks = []
        for letter in page:
            count += 1
            if letter.refused_before_sending:  # never sent: not among the expected items
                continue
            if (key := sent(letter.item)) is not None:
                marks.append((key, letter.index))
        db.executemany("UPDATE expected SET dead = 1 WHERE key = ? AND idx = ?", marks)
    return count
