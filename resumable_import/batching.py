"""Items -> batches of at most 25 puts, never two with the same primary key.

Each element is converted and checked by `checks.Prepare` on the way in.

DynamoDB rejects a BatchWriteItem that holds one key twice. Closing the batch at the
repeated key, instead of dropping one of the two, keeps the outcome exactly that of writing
the file in order: the later item lands last and wins, and a bad later item cannot erase
a good earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from .checks import Prepare
from .items import ItemError, Key, KeySpec
from .reader import RawItem

MAX_BATCH = 25
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejected:
    """An item refused before sending; it is dead-lettered with the batch it falls in."""

    index: int
    value: object
    error: ItemError


@dataclass
class Batch:
    first: int  # index of the first item this batch covers
    last: int  # index of the last item it covers
    end: int  # byte offset just past its last item: the checkpoint once it is written
    items: list[bytes] = field(default_factory=list)  # each as the JSON the request carries
    indexes: list[int] = field(default_factory=list)
    units: list[int] = field(default_factory=list)  # write units of each, if asked for
    keys: set[Key] = field(default_factory=set)
    rejected: list[Rejected] = field(default_factory=list)


def batches(
    raw_items: Iterable[RawItem],
    keys: tuple[KeySpec, ...],
    size: int = MAX_BATCH,
    *,
    items_as: str = "json",
    units: bool = False,
) -> Iterator[Batch]:
    """Group items into batches; each covers a contiguous run of item indexes.

    An element that fails `checks.Prepare` rides along as rejected, so its index is
    accounted for at the batch's checkpoint. If the source fails midway, the batch gathered
    so far is still yielded before the error propagates, so nothing read before a problem
    is lost.
    """
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch size must be 1..{MAX_BATCH}, not {size}")
    prepare = Prepare(keys, items_as, units=units)
    batch: Batch | None = None
    previous_end = 0  # an element's text lies between the previous one's end and its own
    try:
        for raw in raw_items:
            rejected = None
            try:
                item, key, wcu = prepare(raw.value, raw.end - previous_end)
            except ItemError as e:
                rejected = Rejected(raw.index, raw.value, e)
            previous_end = raw.end
            # Refused items count toward the batch's size: a long run of them closes
            # batches too, so the checkpoint moves on and each commit stays small.
            if batch is not None and (
                len(batch.items) + len(batch.rejected) >= size
                or (rejected is None and key in batch.keys)
            ):
                yield batch
                batch = None
            if batch is None:
                batch = Batch(raw.index, raw.index, raw.end)
            batch.last, batch.end = raw.index, raw.end
            if rejected is not None:
                batch.rejected.append(rejected)
                continue
            batch.items.append(item)
            batch.indexes.append(raw.index)
            batch.units.append(wcu)
            batch.keys.add(key)
    except Exception:
        if batch is not None:
            yield batch
        raise
    if batch is not None:
        yield batch


def groups(entries: Iterable[T], key: Callable[[T], Key | None]) -> Iterator[list[T]]:
    """Already-converted entries (dead letters to retry) in groups that fit one request:
    at most 25, no key twice, by the same rule as `batches`."""
    group: list[T] = []
    keys: set[Key] = set()
    for entry in entries:
        k = key(entry)
        if len(group) == MAX_BATCH or (k and k in keys):
            yield group
            group, keys = [], set()
        group.append(entry)
        if k:
            keys.add(k)
    if group:
        yield group
