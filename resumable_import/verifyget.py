"""`verify`'s first way to read the table: by the dump's keys, 100 a `BatchGetItem`,
strongly consistent, in file order, so the read units are in proportion to the dump."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from .compare import differing
from .errors import ServiceError
from .keys import canonical, key_of
from .verdict import VerifyResult
from .verifyscan import RETRIES, call

GET_BATCH = 100  # BatchGetItem's limit of keys a request


Tick = Callable[[int, int], None]
"""(expected items compared so far, their bytes as JSON): progress through the table."""


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
    rows = db.execute(f"SELECT idx, item FROM expected WHERE {where} ORDER BY idx")
    done = size = 0
    while chunk := rows.fetchmany(GET_BATCH):
        wanted = []
        for _, raw in chunk:
            item = orjson.loads(raw)
            wanted.append((item, {n: item[n] for n in key_names}))
            size += len(raw)
        found = {canonical(k): it for it in _get(client, table, [w[1] for w in wanted], result)
                 if (k := key_of(it, key_names)) is not None}  # fmt: skip
        marks = []
        for item, key in wanted:
            ckey = canonical(key_of(key, key_names) or ())
            if (got := found.get(ckey)) is not None:
                names = differing(item, got)
                marks.append((orjson.dumps(names).decode() if names else None, ckey))
        db.executemany("UPDATE expected SET seen = 1, diff = ? WHERE key = ?", marks)
        done += len(chunk)
        tick(done, size)


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
