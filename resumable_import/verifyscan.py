"""`verify`'s second way to read the table: a parallel Scan over segments, strongly
consistent, each item looked up by key among the expected ones (`verify`'s scratch
database) and marked seen, or counted as extra when the dump does not hold it.

A Scan costs in proportion to the table rather than the dump, and it is the only way to
find the items the dump does not hold (`extra`). A segment has one page out at a time and
at most `IN_FLIGHT` segments are read at once (`tableread`: the requests of this one
thread), each page judged as it comes, so memory stays bounded: a page is asked for
about 256 KB of items (`Limit`, from the dump's average item), some 3 MB parsed.

The table is cut into about a segment a page, not a few segments: DynamoDB Local seeks
each page's start key afresh, so a segment of n pages costs it n squared, and the 100 MB
bench table took 54 s in 4 segments and 5 s in 64. DynamoDB itself pages in constant
time and charges by the bytes read, so more segments and pages cost it only requests.
"""

from __future__ import annotations

import base64
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .compare import differing_items
from .keys import canonical, key_of
from .tableread import Asker, consumed, open_reads

IN_FLIGHT = 4  # pages out at once
PAGE_BYTES = 256 << 10
MAX_SEGMENTS = 10_000  # DynamoDB allows 1,000,000


@dataclass(frozen=True)
class Cut:
    """How a scan reads the table: in `segments`, `limit` items a page."""

    segments: int = IN_FLIGHT
    limit: int | None = None

    @classmethod
    def of(cls, table_bytes: float, item_bytes: float) -> Cut:
        """About a page a segment, at least IN_FLIGHT of them."""
        segments = max(IN_FLIGHT, min(MAX_SEGMENTS, math.ceil(table_bytes / PAGE_BYTES)))
        return cls(segments, max(1, int(PAGE_BYTES / max(1.0, item_bytes))))


@dataclass
class Scanned:
    """What the scan found besides what it marked in the scratch database."""

    extra: int = 0
    extra_keys: list[dict[str, Any]] | None = None  # the first 20 extra items' keys
    read_units: float = 0.0
    measured: bool = False
    seen: int = 0  # expected items found so far, and their bytes: the progress
    seen_bytes: int = 0


def scan_compare(
    db: Any,
    client: Any,
    table: str,
    key_names: tuple[str, ...],
    cut: Cut = Cut(),
    tick: Callable[[int, int], None] | None = None,
) -> Scanned:
    """Scan the whole table, marking each expected item seen (with the attributes that
    differ, if any) in `db`'s `expected` table; `tick` is told the expected items seen so
    far and their bytes."""
    reads = open_reads(client)
    asker = Asker(reads, table, "scanning")

    def ask(segment: int, start: dict[str, Any] | None) -> None:
        request = {"TableName": table, "Segment": segment, "TotalSegments": cut.segments,
                   "ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"}  # fmt: skip
        if cut.limit:
            request["Limit"] = cut.limit
        if start:
            request["ExclusiveStartKey"] = start
        asker.ask(segment, "Scan", request)

    found = Scanned(extra_keys=[])
    try:
        waiting = iter(range(cut.segments))
        for segment in itertools.islice(waiting, IN_FLIGHT):
            ask(segment, None)
        while asker.busy:
            for segment, page, _ in asker.answers():
                assert isinstance(segment, int)
                if start := page.get("LastEvaluatedKey"):
                    ask(segment, start)  # the next page is read while this one is judged
                elif (following := next(waiting, None)) is not None:
                    ask(following, None)
                units = consumed(page)
                if units is not None:
                    found.read_units += units
                    found.measured = True
                _judge(db, page.get("Items", ()), key_names, found)
                if tick:
                    tick(found.seen, found.seen_bytes)
    finally:
        reads.close()
    return found


def _judge(db: Any, items: Any, key_names: tuple[str, ...], found: Scanned) -> None:
    marks = []
    for item in items:
        key = key_of(item, key_names)
        row = None if key is None else db.execute(
            "SELECT item, dead, gone FROM expected WHERE key = ?", (canonical(key),)
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
        assert key is not None
        if row[2]:  # still there, though the file deletes it
            marks.append(("[]", canonical(key)))
            continue
        names = differing_items(orjson.loads(row[0]), item)
        marks.append((orjson.dumps(names).decode() if names else None, canonical(key)))
    db.executemany("UPDATE expected SET seen = 1, diff = ? WHERE key = ?", marks)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """A key attribute as DynamoDB JSON holds it (binary as base64 text)."""
    ((kind, v),) = value.items()
    return {kind: base64.b64encode(v).decode() if isinstance(v, bytes) else v}
