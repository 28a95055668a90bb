"""Prove a run's dump arrived: read it again as the run read it, and the table by key.

The ledger says what rimport wrote; only reading the table back says what is there. The
dump is read again exactly as the run read it (its file unchanged since, its format and
shape, its transform), each element made ready as the import made it, so the item each key
must hold is the one the run sent: the later of two elements with one key, as in the
table. Those items go to a temporary SQLite file keyed by `keys.canonical`, not to memory,
so a dump of any size is verified in bounded memory. Dead-lettered items are expected
absent and counted apart. Then the table is read by key (`BatchGetItem`, strongly
consistent) and each item compared as DynamoDB compares values (`compare`).
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import endpoint as endpoints
from . import s3
from .compare import differing
from .dynamo import connect, describe_table
from .errors import Arg, FileChangedError, InputError, ServiceError, TableError, Text, UsageError
from .hints import command, start_over
from .hooks import Hooks
from .keys import KeySpec, canonical, key_of
from .ledger import Ledger, Run
from .loop import finished
from .pipeline import ready_batches
from .reader import Dump, Shape, items_as
from .records import Verification
from .run import for_reading
from .sources import Location
from .transform import Transform, TransformSpec
from .unchanged import check_same_object, file_exists, same_transform, unchanged
from .verifyscan import RETRIES, call, scan_compare

GET_BATCH = 100  # BatchGetItem's limit of keys a request
SHOWN = 20  # differences kept in the result, in file order


@dataclass(frozen=True)
class VerifyOptions:
    """`source`: where to read a run started on a stream again (a path, or `-`);
    `transform`: the run's transform, for one given to `import_file` as a function;
    `profile`: the AWS profile for credentials; `method`: "get" (by key, in proportion
    to the dump) or "scan" (a parallel Scan, in proportion to the table) [default: scan
    with `extra`, else get]; `extra`: also count the table's items the dump does not hold
    (needs the scan)."""

    source: str | Path | None = None
    transform: TransformSpec | None = None
    profile: str | None = None
    method: str | None = None
    extra: bool = False

    @property
    def how(self) -> str:
        return self.method or ("scan" if self.extra else "get")


@dataclass(frozen=True)
class Difference:
    """An item not as the dump has it: its index in the dump, its key (as DynamoDB JSON
    key attributes), and the attributes that differ; None for a missing item."""

    index: int
    key: dict[str, Any]
    attributes: list[str] | None  # None: the item is missing

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "key": self.key, "missing": self.attributes is None,
                "attributes": self.attributes or []}  # fmt: skip


@dataclass
class VerifyResult:
    """What reading the table back found. `items`: keys the dump leaves in the table at
    the end (the later of two elements with one key counted once); `expected_missing`:
    dead letters, expected absent; `extra`: None, as the table is read by key only.
    `read_units`: the read capacity DynamoDB said it consumed (`read_units_measured`), or
    else an estimate from the items' sizes."""

    run_id: str
    table: str
    items: int = 0
    identical: int = 0
    missing: int = 0
    different: int = 0
    expected_missing: int = 0
    extra: int | None = None
    method: str = "get"
    read_units: float = 0.0
    read_units_measured: bool = False
    differences: list[Difference] = field(default_factory=list)
    extra_keys: list[dict[str, Any]] = field(default_factory=list)  # the first 20 extra
    elapsed: float = 0.0
    recorded: bool = False  # kept in the ledger, for `status` (not in a read-only one)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.different or self.extra)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "differences"}
        d["read_units"] = round(self.read_units, 1)
        d["read_units_estimated"] = not self.read_units_measured
        del d["read_units_measured"]
        d["differences"] = [x.as_dict() for x in self.differences]
        return d

    def verification(self) -> Verification:
        """The counts, as the ledger keeps them."""
        return Verification(
            self.method, self.items, self.identical, self.missing, self.different, self.extra,
            self.expected_missing, round(self.read_units, 1), not self.read_units_measured,
            round(self.elapsed, 1),
        )  # fmt: skip


def verify_run(
    run_id: str,
    options: VerifyOptions = VerifyOptions(),
    hooks: Hooks = Hooks(),
    *,
    ledger: str | Path | Ledger | None = None,
    client: Any = None,
) -> VerifyResult:
    """Compare a completed run's table with its dump, item by item, writing nothing.

    Refused: a run not read to its end (resume it first), a file changed since (as
    `resume` refuses it), a run read from a stream without `options.source`, a table gone.
    `client` stands in for the endpoint's botocore client.
    """
    started = time.monotonic()
    s3.use_profile(options.profile)
    with for_reading(ledger) as book:
        run = book.run(run_id)
        _refuse_unfit(run, options)
        loaded = _transform_of(run, options.transform)
        dump = _dump_again(run, options.source)
        if client is None:
            where = endpoints.parse(run.endpoint)
            endpoints.check(where, run.recorded.allow_remote)
            client = connect(where, run.region, profile=options.profile).client
        info = describe_table(client, run.table)
        if info is None:
            raise TableError(
                f"table {run.table!r} at {endpoints.redacted(run.endpoint)} no longer exists "
                f"since run {run.id} imported into it: there is nothing to verify",
                Text("import the file again with ", start_over(run)),
            )
        result = VerifyResult(run.id, run.table, method=options.how)
        with (
            tempfile.TemporaryDirectory(prefix="rimport-verify-") as tmp,
            closing(_expected_db(Path(tmp) / "expected.sqlite")) as db,
        ):
            with closing(dump.location):
                _load_expected(db, dump, info.keys, loaded)
            result.expected_missing = _mark_dead_letters(db, book, run, info.key_names)
            if options.how == "scan":
                _by_scan(db, client, run.table, info.key_names, result, options.extra)
            else:
                _compare(db, client, run.table, info.key_names, result, hooks)
        result.elapsed = time.monotonic() - started
        if not book.readonly:  # a ledger that cannot be written to still verifies
            book.record_verification(run.id, result.verification())
            result.recorded = True
        return result


def _refuse_unfit(run: Run, options: VerifyOptions) -> None:
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
    if Shape.parse(run.shape).kind == "table":
        raise UsageError(
            f"run {run.id} read a request file ({run.file}), whose puts and deletes verify "
            "does not compare yet",
            "verify a run that imported a dump of items",
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


def _dump_again(run: Run, source: str | Path | None) -> Dump:
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
        where = Location(source)
        where.kind = "stream"
        return Dump(where, shape, items_as=how)
    dump = Dump(run.file, shape, items_as=how)
    if run.source == "s3":
        check_same_object(run, dump)
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


def _expected_db(path: Path) -> sqlite3.Connection:
    """A private scratch database: it holds the items, which may be secret."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -16000")  # 16 MB: bounded memory, whatever the dump
    db.execute(
        "CREATE TABLE expected (key BLOB PRIMARY KEY, idx INTEGER NOT NULL, item BLOB NOT NULL,"
        " dead INTEGER NOT NULL DEFAULT 0, seen INTEGER NOT NULL DEFAULT 0, diff TEXT)"
        " WITHOUT ROWID"
    )
    return db


def _load_expected(
    db: sqlite3.Connection, dump: Dump, keys: tuple[KeySpec, ...], transform: Transform | None
) -> None:
    """Each item the dump puts, by key: a later element with one key replaces the earlier,
    as its write did in the table. Items refused before sending are left out (they are
    dead letters, counted apart)."""
    db.execute("BEGIN")
    for n, ready in enumerate(
        ready_batches(dump, None, keys, 25, reader_process=False, transform=transform), 1
    ):
        db.executemany(
            "INSERT OR REPLACE INTO expected (key, idx, item) VALUES (?, ?, ?)",
            [(canonical(k), i, item)
             for k, i, item in zip(ready.keys, ready.indexes, ready.items, strict=True)],
        )  # fmt: skip
        if n % 400 == 0:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")


def _mark_dead_letters(
    db: sqlite3.Connection, book: Ledger, run: Run, key_names: tuple[str, ...]
) -> int:
    """Mark the items the run dead-lettered as expected absent; how many dead letters."""
    count = 0
    for page in book.pages_of_dead_letters(run.id):
        marks = []
        for letter in page:
            count += 1
            if letter.refused_before_sending:  # never sent: not among the expected items
                continue
            key = key_of(letter.item, key_names)
            if key is not None:
                marks.append((canonical(key), letter.index))
        db.executemany("UPDATE expected SET dead = 1 WHERE key = ? AND idx = ?", marks)
    return count


def _compare(
    db: sqlite3.Connection,
    client: Any,
    table: str,
    key_names: tuple[str, ...],
    result: VerifyResult,
    hooks: Hooks,
) -> None:
    rows = db.execute("SELECT idx, item FROM expected WHERE dead = 0 ORDER BY idx")
    total = db.execute("SELECT count(*) FROM expected WHERE dead = 0").fetchone()[0]
    while chunk := rows.fetchmany(GET_BATCH):
        wanted = []
        for index, raw in chunk:
            item = orjson.loads(raw)
            wanted.append((index, item, {n: item[n] for n in key_names}))
        found = {canonical(k): it for it in _get(client, table, [w[2] for w in wanted], result)
                 if (k := key_of(it, key_names)) is not None}  # fmt: skip
        for index, item, key in wanted:
            ckey = key_of(key, key_names)
            got = found.get(canonical(ckey)) if ckey is not None else None
            result.items += 1
            if got is None:
                result.missing += 1
                names = None
            elif names := differing(item, got):
                result.different += 1
            else:
                result.identical += 1
                continue
            if len(result.differences) < SHOWN:
                result.differences.append(Difference(index, key, names))
        if not result.read_units_measured:
            result.read_units += sum(math.ceil(max(1, len(orjson.dumps(w[1]))) / 4096)
                                     for w in wanted)  # fmt: skip
        if hooks.progress:
            hooks.progress(result.items, result.items, total)


def _by_scan(
    db: sqlite3.Connection,
    client: Any,
    table: str,
    key_names: tuple[str, ...],
    result: VerifyResult,
    extra: bool,
) -> None:
    """The table read whole (`verifyscan`), then the expected items never seen counted."""
    found = scan_compare(db, client, table, key_names)
    live = "FROM expected WHERE dead = 0"
    (result.items, result.identical, result.different, result.missing, size) = db.execute(
        f"SELECT count(*), coalesce(sum(seen = 1 AND diff IS NULL), 0), coalesce(sum(diff IS"
        f" NOT NULL), 0), coalesce(sum(seen = 0), 0), coalesce(sum(length(item)), 0) {live}"
    ).fetchone()
    for index, raw, diff in db.execute(
        f"SELECT idx, item, diff {live} AND (seen = 0 OR diff IS NOT NULL) ORDER BY idx LIMIT ?",
        (SHOWN,),
    ):
        item = orjson.loads(raw)
        names = orjson.loads(diff) if diff else None
        result.differences.append(Difference(index, {n: item[n] for n in key_names}, names))
    result.read_units_measured = found.measured
    result.read_units = found.read_units if found.measured else math.ceil(size / 4096)
    if extra:
        result.extra, result.extra_keys = found.extra, found.extra_keys or []


def _get(
    client: Any, table: str, keys: list[dict[str, Any]], result: VerifyResult
) -> Iterator[dict[str, Any]]:
    """The items of `keys` in the table, strongly consistent, the unprocessed ones asked
    again with backoff; the pause grows only while an answer makes no progress."""
    pending = {table: {"Keys": keys, "ConsistentRead": True}}
    attempt = 0  # answers in a row that made no progress
    while attempt <= RETRIES:
        ask = lambda p=pending: client.batch_get_item(  # noqa: E731
            RequestItems=p, ReturnConsumedCapacity="TOTAL"
        )
        answer = call(client, table, "reading", ask, attempt)
        if answer is None:  # throttled: asked again after a pause
            attempt += 1
            continue
        for used in answer.get("ConsumedCapacity") or ():
            if "CapacityUnits" in used:
                if not result.read_units_measured:
                    result.read_units, result.read_units_measured = 0.0, True
                result.read_units += float(used["CapacityUnits"])
        yield from answer.get("Responses", {}).get(table, ())
        left = answer.get("UnprocessedKeys") or {}
        if not left.get(table, {}).get("Keys"):
            return
        progress = len(left[table]["Keys"]) < len(pending[table]["Keys"])
        attempt = 0 if progress else attempt + 1
        pending = left
        time.sleep(min(5.0, 0.05 * 2**attempt))
    raise ServiceError(
        f"table {table!r} left keys unprocessed {RETRIES} times in a row",
        "verify again later, or when the table has more read capacity",
    )
