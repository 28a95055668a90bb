"""`verify`'s first way to read the table: by the dump's keys, 100 a `BatchGetItem`,
strongly consistent, so the read units are in proportion to the dump.

Several batches are out at once (`tableread`: the requests of one thread, on persistent
connections), so DynamoDB answers one while the last answer is compared. Each batch is
marked in the scratch database as it completes; the order of the marks does not matter,
since the count and the first differences are read back from them in file order. A
batch's unprocessed keys are asked again after a pause that grows only while its answers
make no progress.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from .compare import differing_items
from .errors import ServiceError
from .keys import canonical, key_of
from .tableread import RETRIES, Asker, consumed, open_reads, pause
from .verdict import VerifyResult

GET_BATCH = 100  # BatchGetItem's limit of keys a request
IN_FLIGHT = 8  # batches out at once: enough to keep DynamoDB busy while one is judged

Tick = Callable[[int, int], None]
"""(expected items compared so far, their bytes as JSON): progress through the table."""


_Wanted = tuple[bytes, dict[str, Any] | None, dict[str, Any]]
"""An expected item as JSON, parsed (None: its key is to be absent), and its key."""


@dataclass
class _Batch:
    wanted: list[_Wanted]
    found: list[dict[str, Any]] = field(default_factory=list)
    asked: int = 0  # keys in the request out now


def compare_by_key(
    db: sqlite3.Connection,
    client: Any,
    table: str,
    key_names: tuple[str, ...],
    result: VerifyResult,
    tick: Tick,
    where: str = "dead = 0",
) -> None:
    """Look each expected item (those `where` picks) up by key and mark it in `db` as the
    scan does: `seen` when the table holds its key, `diff` the attributes that differ."""
    chunks = _chunks(db, where)
    reads = open_reads(client)
    asker = Asker(reads, table, "reading")
    done = size = 0
    try:
        for chunk in itertools.islice(chunks, IN_FLIGHT):  # then one more as each is done
            _ask(asker, table, _Batch([_wanted(row, key_names) for row in chunk]))
        while asker.busy:
            for batch, answer, attempt in asker.answers():
                assert isinstance(batch, _Batch)
                if not _take(asker, table, batch, answer, attempt, result):
                    continue
                _mark(db, batch, key_names)
                done += len(batch.wanted)
                size += sum(len(w[0]) for w in batch.wanted)
                tick(done, size)
                if chunk := next(chunks, None):
                    _ask(asker, table, _Batch([_wanted(row, key_names) for row in chunk]))
    finally:
        reads.close()


def _chunks(db: sqlite3.Connection, where: str) -> Iterator[list[tuple[bytes, int]]]:
    """The items `where` picks, GET_BATCH at a time in the order of their key hashes: each
    chunk a query of its own from the last key on, which sorts nothing (ordered by index,
    SQLite sorted a copy of every item first, 40 MB for the bench dump) and is not
    disturbed by the marks written in between."""
    last = b""
    while rows := db.execute(
        f"SELECT key, item, gone FROM expected WHERE key > ? AND ({where}) ORDER BY key LIMIT ?",
        (last, GET_BATCH),
    ).fetchall():
        last = rows[-1][0]
        yield [(item, gone) for _, item, gone in rows]


def _wanted(row: tuple[bytes, int], key_names: tuple[str, ...]) -> _Wanted:
    raw, gone = row
    item = orjson.loads(raw)
    return raw, None if gone else item, {n: item[n] for n in key_names}


def _ask(
    asker: Asker, table: str, batch: _Batch, keys: list[dict[str, Any]] | None = None,
    attempt: int = 0, after: float = 0.0,
) -> None:  # fmt: skip
    keys = [w[2] for w in batch.wanted] if keys is None else keys
    batch.asked = len(keys)
    request = {"RequestItems": {table: {"Keys": keys, "ConsistentRead": True}},
               "ReturnConsumedCapacity": "TOTAL"}  # fmt: skip
    asker.ask(batch, "BatchGetItem", request, attempt, after)


def _take(
    asker: Asker, table: str, batch: _Batch, answer: dict[str, Any], attempt: int,
    result: VerifyResult,
) -> bool:  # fmt: skip
    """One answer for the batch: its items kept, its unprocessed keys asked again; whether
    the batch is now whole."""
    units = consumed(answer)
    if units is not None:
        if not result.read_units_measured:
            result.read_units, result.read_units_measured = 0.0, True
        result.read_units += units
    batch.found += answer.get("Responses", {}).get(table, ())
    left = (answer.get("UnprocessedKeys") or {}).get(table, {}).get("Keys") or []
    if not left:
        return True
    attempt = 0 if len(left) < batch.asked else attempt + 1
    if attempt > RETRIES:
        raise ServiceError(
            f"table {table!r} left keys unprocessed {RETRIES} times in a row",
            "verify again later, or when the table has more read capacity",
        )
    _ask(asker, table, batch, left, attempt, pause(attempt))
    return False


def _mark(db: sqlite3.Connection, batch: _Batch, key_names: tuple[str, ...]) -> None:
    found = {canonical(k): it for it in batch.found
             if (k := key_of(it, key_names)) is not None}  # fmt: skip
    marks = []
    for _, item, key in batch.wanted:
        ckey = canonical(key_of(key, key_names) or ())
        if (got := found.get(ckey)) is not None:
            names = differing_items(item, got) if item is not None else []  # not deleted
            marks.append(
                (None if item is not None and not names else orjson.dumps(names).decode(), ckey)
            )
    db.executemany("UPDATE expected SET seen = 1, diff = ? WHERE key = ?", marks)
