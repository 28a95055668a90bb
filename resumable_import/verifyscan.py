"""`verify`'s second way to read the table: a parallel Scan over segments, strongly
consistent, each item looked up by key among the expected ones (`verify`'s scratch
database) and marked seen, or counted as extra when the dump does not hold it.

A Scan costs in proportion to the table rather than the dump, and it is the only way to
find the items the dump does not hold (`extra`). The segments are read in threads; the
items are compared in the calling thread, which alone touches the scratch database, and
the pages in between wait in a queue of two, so memory stays bounded (a page holds
up to 1 MB of items, a few times that once parsed).
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .compare import differing
from .errors import ServiceError, TableError
from .keys import canonical, key_of

SEGMENTS = 4
RETRIES = 12
THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException",
             "RequestLimitExceeded", "InternalServerError")  # fmt: skip


@dataclass
class Scanned:
    """What the scan found besides what it marked in the scratch database."""

    extra: int = 0
    extra_keys: list[dict[str, Any]] | None = None  # the first 20 extra items' keys
    read_units: float = 0.0
    measured: bool = False
    seen: int = 0  # expected items found so far, and their bytes: the progress
    seen_bytes: int = 0


def call(client: Any, table: str, what: str, request: Callable[[], Any], attempt: int) -> Any:
    """One read request; None after a throttling answer (to be asked again, later)."""
    try:
        return request()
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise TableError(f"table {table!r} was deleted while it was verified") from None
        if code not in THROTTLED or attempt >= RETRIES:
            raise ServiceError(f"{what} table {table!r} failed: {code or e}") from None
        time.sleep(min(5.0, 0.05 * 2**attempt))
        return None


def scan_compare(
    db: Any,
    client: Any,
    table: str,
    key_names: tuple[str, ...],
    segments: int = SEGMENTS,
    tick: Callable[[int, int], None] | None = None,
) -> Scanned:
    """Scan the whole table, marking each expected item seen (with the attributes that
    differ, if any) in `db`'s `expected` table; `tick` is told the expected items seen so
    far and their bytes."""
    pages: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)  # pages of up to 1 MB each
    stop = threading.Event()

    def read(segment: int) -> None:
        start: dict[str, Any] | None = None
        attempt = 0
        try:
            while not stop.is_set():
                args = {"TableName": table, "Segment": segment, "TotalSegments": segments,
                        "ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"}  # fmt: skip
                if start:
                    args["ExclusiveStartKey"] = start
                answer = call(client, table, "scanning", lambda a=args: client.scan(**a), attempt)
                if answer is None:
                    attempt += 1
                    continue
                attempt = 0
                pages.put(("page", answer))
                start = answer.get("LastEvaluatedKey")
                if not start:
                    break
            pages.put(("done", None))
        except BaseException as e:  # handed to the calling thread, which raises it
            pages.put(("error", e))

    threads = [threading.Thread(target=read, args=(s,), daemon=True) for s in range(segments)]
    for t in threads:
        t.start()
    found = Scanned(extra_keys=[])
    done = 0
    try:
        while done < segments:
            kind, payload = pages.get()
            if kind == "error":
                raise payload
            if kind == "done":
                done += 1
                continue
            used = payload.get("ConsumedCapacity") or {}
            if "CapacityUnits" in used:
                found.read_units += float(used["CapacityUnits"])
                found.measured = True
            _judge(db, payload.get("Items", ()), key_names, found)
            if tick:
                tick(found.seen, found.seen_bytes)
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # let each thread put its last word
            with contextlib.suppress(queue.Empty):
                pages.get(timeout=0.1)
    return found


def _judge(db: Any, items: Any, key_names: tuple[str, ...], found: Scanned) -> None:
    marks = []
    for item in items:
        key = key_of(item, key_names)
        row = None if key is None else db.execute(
            "SELECT item, dead FROM expected WHERE key = ?", (canonical(key),)
        ).fetchone()  # fmt: skip
        if row is None:
            found.extra += 1
            if found.extra_keys is not None and len(found.extra_keys) < 20:
                found.extra_keys.append({n: _plain(item[n]) for n in key_names if n in item})
            continue
        if row[1]:  # a dead letter that is there after all: not the dump's to judge
            continue
        found.seen += 1
        found.seen_bytes += len(row[0])
        names = differing(json.loads(row[0]), item)
        assert key is not None
        marks.append((json.dumps(names) if names else None, canonical(key)))
    db.executemany("UPDATE expected SET seen = 1, diff = ? WHERE key = ?", marks)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """A key attribute as DynamoDB JSON holds it (binary as base64 text)."""
    ((kind, v),) = value.items()
    return {kind: base64.b64encode(v).decode() if isinstance(v, bytes) else v}
