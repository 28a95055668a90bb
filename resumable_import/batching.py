"""Items -> batches of at most 25 puts, never two with the same primary key.

Each element is converted and checked by `checks.Prepare` on the way in.

DynamoDB rejects a BatchWriteItem that holds one key twice. Closing the batch at the
repeated key, instead of dropping one of the two, keeps the outcome exactly that of writing
the file in order: the later item lands last and wins, and a bad later item cannot erase
a good earlier one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from .checks import Prepare
from .items import ItemError
from .keys import Key, KeySpec
from .reader import RawItem

if TYPE_CHECKING:
    from .transform import Transform

MAX_BATCH = 25
# Elements a transform skipped, at most, in one batch: a run of them still moves the
# checkpoint on, without a commit for every one.
MAX_SKIPPED = 1000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejected:
    """An item refused before sending; it is dead-lettered with the batch it falls in."""

    index: int
    value: object
    error: ItemError
    kept: str | None = None  # how it is kept in the dead letters, when already known


@dataclass
class Batch:
    first: int  # index of the first item this batch covers
    last: int  # index of the last item it covers
    end: int  # byte offset just past its last item: the checkpoint once it is written
    items: list[bytes] = field(default_factory=list)  # each as the JSON the request carries
    indexes: list[int] = field(default_factory=list)
    units: list[int] = field(default_factory=list)  # write units of each, if asked for
    keys: list[Key] = field(default_factory=list)  # the primary key of each
    distinct: set[Key] = field(default_factory=set)  # the same keys, to find a repeat
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0  # elements a transform turned into no item
    # False when the batch ends partway through the items a transform made of one element:
    # its `last` and `end` are those before that element, and its outcome is only to be
    # committed together with the batch that completes the element (see `_transformed`).
    whole: bool = True


def batches(
    raw_items: Iterable[RawItem],
    keys: tuple[KeySpec, ...],
    size: int = MAX_BATCH,
    *,
    items_as: str = "json",
    units: bool = False,
    transform: Transform | None = None,
) -> Iterator[Batch]:
    """Group items into batches; each covers a contiguous run of item indexes.

    An element that fails `checks.Prepare` rides along as rejected, so its index is
    accounted for at the batch's checkpoint. If the source fails midway, the batch gathered
    so far is still yielded before the error propagates, so nothing read before a problem
    is lost. With a `transform`, each element is first made into the items it returns.
    """
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch size must be 1..{MAX_BATCH}, not {size}")
    if transform is not None:
        yield from _transformed(raw_items, keys, size, items_as, units, transform)
        return
    prepare = Prepare(keys, items_as, units=units)
    batch: Batch | None = None
    previous_end = 0  # an element's text lies between the previous one's end and its own
    held = 0  # items and refused elements in `batch`
    distinct: set[Key] = set()
    try:
        for index, value, end in raw_items:
            rejected = None
            try:
                item, key, wcu = prepare(value, end - previous_end)
            except ItemError as e:
                rejected = Rejected(index, value, e)
            previous_end = end
            # Refused items count toward the batch's size: a long run of them closes
            # batches too, so the checkpoint moves on and each commit stays small.
            if batch is not None and (held >= size or (rejected is None and key in distinct)):
                yield batch
                batch = None
            if batch is None:
                batch = Batch(index, index, end)
                # The batch's lists, appended to without looking them up for every item.
                items, indexes, weights, held_keys = (
                    batch.items,
                    batch.indexes,
                    batch.units,
                    batch.keys,
                )
                distinct, held = batch.distinct, 0
            batch.last, batch.end = index, end
            held += 1
            if rejected is not None:
                batch.rejected.append(rejected)
                continue
            items.append(item)
            indexes.append(index)
            weights.append(wcu)
            held_keys.append(key)
            distinct.add(key)
    except Exception:
        if batch is not None:
            yield batch
        raise
    if batch is not None:
        yield batch


def _transformed(
    raw_items: Iterable[RawItem],
    keys: tuple[KeySpec, ...],
    size: int,
    items_as: str,
    units: bool,
    transform: Transform,
) -> Iterator[Batch]:
    """`batches`, for elements that a transform makes into 0..n items each.

    Indexes stay those of the elements read (the checkpoint is a place in the file): the
    items made of one element share its index. An element's items go in one batch when
    they fit in one, so the checkpoint can follow every batch. Those of an element that
    makes more than a batch holds (or repeats a key) fill several: all but the last are
    not `whole`, and the run commits their outcome only with the batch that holds the
    element's last item, so a crash in between writes all of them again (puts of the same
    items) rather than counting or dead-lettering any of them twice.
    A loop of its own, so that runs without a transform pay nothing for it.
    """
    from .transform import Apply, Check, kept_as

    apply = Apply(transform, items_as)
    check = Check(keys, units=units)
    batch: Batch | None = None
    previous_end = 0
    begun = False  # whether `batch` holds items of the element at hand already
    try:
        for raw in raw_items:
            failed = None
            try:
                made = apply(raw.value)
            except ItemError as e:
                # A plain element may have been changed in place before the transform failed.
                text = kept_as(raw.value, e) if items_as == "json" else None
                made, failed = [], Rejected(raw.index, raw.value, e, text)
            if batch is not None:
                used = len(batch.items) + len(batch.rejected)
                needed = len(made) + (failed is not None)
                if (used and used + needed > size) or batch.skipped >= MAX_SKIPPED:
                    yield batch
                    batch = None
            if batch is None:
                batch = Batch(raw.index, raw.index - 1, previous_end)
            if failed is not None:
                batch.rejected.append(failed)
            elif not made:
                batch.skipped += 1
            for item in made:
                rejected = None
                try:
                    body, key, wcu = check(item)
                except ItemError as e:
                    rejected = Rejected(raw.index, item, e, kept_as(item, e))
                if len(batch.items) + len(batch.rejected) >= size or (
                    rejected is None and key in batch.distinct
                ):
                    batch.whole = not begun
                    yield batch
                    batch = Batch(raw.index, raw.index - 1, previous_end)
                begun = True
                if rejected is not None:
                    batch.rejected.append(rejected)
                    continue
                batch.items.append(body)
                batch.indexes.append(raw.index)
                batch.units.append(wcu)
                batch.keys.append(key)
                batch.distinct.add(key)
            batch.last, batch.end = raw.index, raw.end
            previous_end = raw.end
            begun = False
    except Exception:
        if batch is not None:
            batch.whole = not begun  # a failure partway through an element: none of it counts
            yield batch
        raise
    if batch is not None:
        yield batch


def groups(entries: Iterable[tuple[T, Key | None]]) -> Iterator[list[tuple[T, Key | None]]]:
    """Already-converted entries (dead letters to retry), each with its key, in groups that
    fit one request: at most 25, no key twice, by the same rule as `batches`."""
    group: list[tuple[T, Key | None]] = []
    keys: set[Key] = set()
    for entry in entries:
        k = entry[1]
        if len(group) == MAX_BATCH or (k and k in keys):
            yield group
            group, keys = [], set()
        group.append(entry)
        if k:
            keys.add(k)
    if group:
        yield group
