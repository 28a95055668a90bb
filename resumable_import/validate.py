"""Read a whole dump and report what DynamoDB would refuse, writing nothing.

The same reader and the same `checks.Prepare` as an import, so what `validate` reports is
exactly what `start` would dead-letter on its own, before any round trip (DynamoDB can
still refuse for reasons only the service knows, such as a full partition).
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .checks import Prepare, key_mistake_in
from .errors import InputError, KeyMismatchError, RimportError
from .firstitems import settle_reading
from .items import ItemError
from .keys import Key, KeySpec, canonical
from .progress import Figures, OnProgress, Progress, known
from .reader import Dump, RawItem
from .transform import Apply, Check, TransformSpec, load

PROGRESS_EVERY = 1000  # items


@dataclass(frozen=True)
class Problem:
    index: int
    start: int  # the item's text lies between these byte offsets (of the decompressed text)
    end: int
    code: str
    message: str

    def __str__(self) -> str:
        return (
            f"item {self.index} (bytes {self.start:,}..{self.end:,}): {self.code}: {self.message}"
        )


@dataclass
class Report:
    file: Path
    shape: str
    items: int = 0
    bytes: int = 0  # of the file as stored: compressed bytes for a compressed dump
    text_bytes: int = 0  # of JSON text read: decompressed bytes for a compressed dump
    problems: list[Problem] = field(default_factory=list)  # the first `keep` of them
    counts: Counter[str] = field(default_factory=Counter)  # every problem, by kind
    duplicates: int = 0  # items whose key an earlier item already had: the last one wins
    transformed: int | None = None  # items the transform made of them, when there is one
    stopped: RimportError | None = None  # the file is broken here (or its key wrong); not read on
    elapsed: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.counts and self.stopped is None


def validate_file(
    path: str | Path,
    keys: tuple[KeySpec, ...],
    *,
    fmt: str = "auto",
    items_path: str | None = None,
    keep: int = 20,
    progress: Progress | None = None,
    on_progress: OnProgress | None = None,
    transform: TransformSpec | None = None,
) -> Report:
    """Check every item of a dump against `keys` and DynamoDB's limits; with `transform`,
    every item it makes of them (a problem is reported at the index of the element read).

    Problems with single items are collected (the first `keep` in full, all of them
    counted); a problem with the file as a whole (invalid JSON, a truncated file) ends the
    reading and is kept in `stopped`. Raises InputError only when the file cannot be opened
    or its layout recognised at all, and KeyMismatchError when every one of its first
    items fails the key the same way (the key given is wrong, or the dump not for this
    table): a report of every item refused for it would bury that one line. `progress` and
    `on_progress` are told how far it has got every PROGRESS_EVERY items, and once at the
    end (see `progress.py`).
    """
    started = time.monotonic()
    loaded = load(transform) if transform is not None else None
    dump = Dump.open(path, fmt, items_path)
    apply = Apply(loaded, dump.items_as) if loaded is not None else None
    check = Check(keys)
    settle_reading(dump, keys, loaded)
    if mistake := key_mistake_in(dump, keys, apply, check if apply else None):
        if mistake.fitting_keys:
            hint = f"the items fit keys={mistake.fitting_keys}"
        else:
            hint = "check the key against an attribute the items have, or that this is the dump"
        raise KeyMismatchError(mistake, "validate", hint)
    report = Report(dump.path, dump.describe())
    prepare = Prepare(keys, dump.items_as)
    transformed = 0
    seen = _KeyCounter()
    previous_end = 0

    def refused(raw: RawItem, start: int, e: ItemError) -> None:
        report.counts[e.code] += 1
        if len(report.problems) < keep:
            report.problems.append(Problem(raw.index, start, raw.end, e.code, e.message))

    told = progress is not None or on_progress is not None

    def tell(end: int) -> None:
        done = dump.file_position(end)
        if progress:
            progress(report.items, done, dump.size or 0)
        if on_progress:
            on_progress(Figures(report.items, done, known(dump.size), time.monotonic() - started))

    try:
        if apply is None:
            for raw in dump.items():
                try:
                    _, key, _ = prepare(raw.value, raw.end - previous_end)
                except ItemError as e:
                    refused(raw, previous_end, e)
                else:
                    seen.add(key)
                previous_end = raw.end
                report.items += 1
                if told and report.items % PROGRESS_EVERY == 0:
                    tell(raw.end)
        else:  # a loop of its own: validating without a transform pays nothing for it
            for raw in dump.items():
                try:
                    made = apply(raw.value)
                except ItemError as e:
                    refused(raw, previous_end, e)
                    made = []
                transformed += len(made)
                for item in made:
                    try:
                        _, key, _ = check(item)
                    except ItemError as e:
                        refused(raw, previous_end, e)
                    else:
                        seen.add(key)
                previous_end = raw.end
                report.items += 1
                if told and report.items % PROGRESS_EVERY == 0:
                    tell(raw.end)
    except InputError as e:
        report.stopped = e
    if apply is not None:
        report.transformed = transformed
    whole = report.stopped is None and dump.size is not None  # a stream's size: what was read
    report.bytes = dump.size if whole else dump.file_position(previous_end)  # type: ignore[assignment]
    report.text_bytes = previous_end
    report.duplicates = seen.repeats()
    report.elapsed = time.monotonic() - started
    if progress:
        progress(report.items, report.bytes, dump.size or 0)
    if on_progress:
        on_progress(Figures(report.items, report.bytes, known(dump.size), report.elapsed,
                            final=report.stopped is None))  # fmt: skip
    return report


class _KeyCounter:
    """Counts keys seen more than once in 8 bytes a key, not a set of millions of tuples.

    Keys go by 64-bit hash into 256 buckets; at the end each bucket is deduplicated on its
    own, so the peak is one bucket's set. Two different keys share a hash with odds near
    n²/2⁶⁵ (1 in 6 million for 2.5 million keys), which would count one repeat too many.
    """

    def __init__(self) -> None:
        self._buckets = [array("q") for _ in range(256)]

    def add(self, key: Key) -> None:
        h = hash(canonical(key))
        self._buckets[h & 0xFF].append(h)

    def repeats(self) -> int:
        return sum(len(b) - len(set(b)) for b in self._buckets)
