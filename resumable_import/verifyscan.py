"""`verify`'s second way to read the table: a parallel Scan over segments, strongly
consistent, each item looked up by key among the expected ones (`verify`'s scratch
database) and marked seen, or counted as extra when the dump does not hold it.

A Scan costs in proportion to the table rather than the dump, and it is the only way to
find the items the dump does not hold (`extra`). Each segment has one page out at a time
(`tableread`: the requests of this one thread), and each page is judged as it comes, so
memory stays bounded: a page is up to 1 MB of JSON, a few times that parsed, and at most
one is parsed at a time while the other segments' pages are on their way.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .compare import differing_items
from .keys import canonical, key_of
from .tableread import Asker, consumed, open_reads

SEGMENTS = 4


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
    segments: int = SEGMENTS,
    tick: Callable[[int, int], None] | None = None,
) -> Scanned:
    """Scan the whole table, marking each expected item seen (with the attributes that
    differ, if any) in `db`'s `expected` table; `tick` is told the expected items seen so
    far and their bytes."""
    reads = open_reads(client)
    asker = Asker(reads, table, "scanning")

    def ask(segment: int, start: dict[str, Any] | None) -> None:
        request = {"TableName": table, "Segment": segment, "TotalSegments": segments,
                   "ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"}  # fmt: skip
        if start:
            request["ExclusiveStartKey"] = start
        asker.ask(segment, "Scan", request)

    found = Scanned(extra_keys=[])
    try:
        for segment in range(segments):
            ask(segment, None)
        while asker.busy:
            for segment, page, _ in asker.answers():
                assert isinstance(segment, int)
                if start := page.get("LastEvaluatedKey"):
                    ask(segment, start)  # the next page is read while this one is judged
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
        names = differing_items(orjson.loads(row[0]), item)
        assert key is not None
        marks.append((orjson.dumps(names).decode() if names else None, canonical(key)))
    db.executemany("UPDATE expected SET seen = 1, diff = ? WHERE key = ?", marks)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """A key attribute as DynamoDB JSON holds it (binary as base64 text)."""
    ((kind, v),) = value.items()
    return {kind: base64.b64encode(v).decode() if isinstance(v, bytes) else v}
