"""Stream the items of a dump, each with the byte offset where it ends: from the start,
or from any checkpoint on, out of a file, a stream or an S3 object.

`detect` decides how the items sit in the file, `jsontext` finds where each one ends; this
module puts them together as a `Dump`, and reads JSON Lines and Ion exports line by line.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .detect import (
    FORMATS,
    Shape,
    check_ion,
    check_typing,
    describe_reading,
    detect,
    items_as,
)
from .errors import SAMPLE_ITEMS, Arg, Command, FileChangedError, InputError, Text
from .items import IonLine, Unparsed
from .jsontext import (
    DECODER,
    REFUSED,
    UTF8_HINT,
    Scanner,
    array_values,
    data_start,
    expect_end,
    fast_decode,
    next_key,
    skip_value,
)
from .requestitems import FORMAT as REQUESTS
from .requestitems import looks_like_requests, tables_in
from .sources import Location, PrefixHash, Source

__all__ = ["FORMATS", "Dump", "Position", "RawItem", "Shape", "describe_reading", "items_as"]

_MAX_LINE = 64 << 20
HEAD_ITEMS = SAMPLE_ITEMS  # the first items kept: the key sample, and the import's start
_SAME_BYTES = Text("give ", Arg("source"), " the same bytes as the run was started with")


@dataclass(frozen=True)
class Position:
    """Where reading continues: `index` items lie before byte `offset`."""

    index: int = 0
    offset: int = 0


class RawItem(NamedTuple):
    index: int
    value: Any
    end: int  # byte offset just past this item: the checkpoint after it


class Dump:
    """An open dump: its size, its shape, and its items from any checkpoint on."""

    # How a file that reads two ways (one JSON object on one line) is read, for the user.
    note: str | None = None
    # The other readings of a file that is one object on one line, to try when the items
    # of the one taken lack the table's key (`firstitems.settle_reading`).
    others: tuple[Shape, ...] = ()

    def __init__(
        self,
        path: str | Path | Location,
        shape: Shape,
        *,
        items_as: str = "json",
        checkpoints: bool = False,
    ) -> None:
        """`checkpoints`: a run will ask `prefix_hash` at its checkpoints (for a stream, the
        text read is kept until then; `validate` does not ask, and keeps nothing)."""
        self.location = path if isinstance(path, Location) else Location(path)
        # A file's path as before; a stream or an S3 object names itself in messages.
        self.path: Path | Location = self.location.path or self.location
        if self.location.kind == "stream":
            self.path = self.location
        self.shape = shape
        self.items_as = items_as  # json, or DynamoDB's own: ddb-json, ddb-export, ion
        if shape.kind == "ion":  # also when `auto` found Ion: a resumed run reads it alike
            self.items_as = "ion"
        elif shape.kind == "table":  # and a request file's entries
            self.items_as = REQUESTS
        elif shape.kind == "item":  # GetItem's answer holds DynamoDB JSON, whatever the format
            self.items_as = "ddb-json"
        self.size: int | None = self.location.size()  # None: a stream, size unknown
        self._source: Source | None = None
        self._compressed = False
        self._codec: str | None = None
        # A stream's text up to each checkpoint is hashed, since it cannot be read again.
        self._prefix = PrefixHash() if checkpoints and self.location.kind == "stream" else None
        # Opened already: a file by `open`, a stream read up to the checkpoint by `skip_to`.
        self._parked: Source | None = None
        self._last_read = 0  # bytes of the file the last reader took
        # The first items, read once (to check them) and given again by `items`: a
        # file's as a list (with what they broke on and whether the file ended there), a
        # stream's with the rest of its reading, which cannot start again.
        self._head: tuple[list[RawItem], InputError | None, bool] | None = None
        self._started: tuple[list[RawItem], Iterator[RawItem]] | None = None
        self._failed: InputError | None = None  # what reading them stopped on

    def describe(self) -> str:
        """The shape, and the compression if any: `array`, `object:Items+gzip`, ..."""
        if self._codec is None:
            with Source(self.location) as f:
                self._codec = f.codec
        return str(self.shape) + ("" if self._codec == "none" else f"+{self._codec}")

    def prefix_hash(self, offset: int) -> str | None:
        """For a stream: 'sha256:<hex>' of its text before `offset` (a checkpoint)."""
        return self._prefix.upto(offset) if self._prefix is not None else None

    def skip_to(self, start: Position, expected: str | None, run_id: str) -> None:
        """Read a stream up to the checkpoint `start` without parsing it, and check that it
        is what the run read before it: the items read next continue from there."""
        f = Source(self.location, self.size, prefix=self._prefix)
        try:
            f.seek(start.offset)
            got = self.prefix_hash(start.offset)
            if got is None:
                raise FileChangedError(
                    f"{self.location}: the stream ends before byte {start.offset:,}, where run "
                    f"{run_id} stopped: it is not the stream the run read",
                    _SAME_BYTES,
                )
            if expected and got != expected:
                raise FileChangedError(
                    f"{self.location}: its first {start.offset:,} bytes differ from those run "
                    f"{run_id} read ({expected[:19]}… is now {got[:19]}…)",
                    _SAME_BYTES,
                )
        except BaseException:
            f.close()
            raise
        self._parked = f

    def file_position(self, item_end: int) -> int:
        """How far into the file reading is, for progress: the item's own offset, or for a
        compressed dump the compressed bytes read so far."""
        if self._source is None:
            if self._compressed and self.size is None:  # a stream: what its reader took
                return self._last_read
            return min(item_end, self.size) if self._compressed and self.size else item_end
        return self._source.bytes_read if self._compressed else item_end

    @contextmanager
    def _reading(self, source: Source) -> Iterator[None]:
        self._source, self._compressed = source, source.codec != "none"
        self._codec = source.codec
        try:
            yield
        finally:
            self._last_read = source.bytes_read
            self._source = None

    @classmethod
    def open(
        cls,
        path: str | Path | Location,
        fmt: str = "auto",
        items_path: str | None = None,
        *,
        checkpoints: bool = False,
    ) -> Dump:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}", f"choose one of {', '.join(FORMATS)}")
        if items_path is not None and fmt not in ("auto", "json", "ddb-json", REQUESTS):
            raise InputError(Text(Arg("items_path"), " does not go with ", Arg("format", fmt)))
        p = path if isinstance(path, Location) else Location(path)
        source, dump = None, None  # a file is opened once: shape, key sample, first items
        try:
            source = Source(p, p.size()) if p.kind == "file" else None
            if fmt == "auto" and source is not None and _requests(source):
                fmt = REQUESTS
            if fmt == REQUESTS:  # its items under a table's name, the one given or its only
                shape, note, others = Shape("table", items_path or _only_table(p)), None, ()
            else:
                shape, note, others = (
                    (Shape("path", items_path), None, ()) if items_path else detect(p, fmt, source)
                )
            dump = cls(p, shape, items_as=items_as(fmt), checkpoints=checkpoints)
            dump.note = note
            dump.others = others if p.kind != "stream" else ()
        except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
            raise InputError(f"{p}: {e.strerror.lower()}", "check the path") from None
        finally:
            if source is not None and dump is None:
                source.close()
        if source is not None:
            dump._parked = source
            dump._read_head()  # reads with it, and closes it
        if shape.kind == "ion" or (fmt not in ("json", "jsonl", REQUESTS) and shape.kind != "item"):
            for first in dump.head(1):
                if shape.kind == "ion":
                    check_ion(dump.path, first.value.line)  # type: ignore[arg-type]
                else:
                    check_typing(dump.path, fmt, first.value, shape)  # type: ignore[arg-type]
        return dump

    def read_as(self, shape: Shape) -> None:
        """Read the file in another shape from now on (before any run records it)."""
        if self._parked is not None:
            self._parked.close()
            self._parked = None
        self.shape, self._head, self.others = shape, None, ()

    def head(self, n: int) -> list[RawItem]:
        """The first `n` items (at most HEAD_ITEMS), to judge the dump by: fewer if it breaks
        before, and the InputError if it breaks at the first. They are read once and kept,
        and `items` begins with them (and stops where they broke): a stream cannot be read
        again, and a file need not be."""
        if self.location.kind != "stream":
            if self._head is None:
                self._read_head()
            assert self._head is not None
            kept, failed, _ = self._head
            if not kept and failed is not None:
                raise failed
            return kept[:n]
        if self._started is None:
            self._started = ([], self._read(None))
        kept, rest = self._started
        if self._failed is None:
            try:
                kept.extend(itertools.islice(rest, n - len(kept)))
            except InputError as e:  # said again when the items are read in earnest
                self._failed = e
        if not kept and self._failed is not None:
            raise self._failed
        return kept[:n]

    def _read_head(self) -> None:
        """Read and keep a file's first HEAD_ITEMS items, the error they broke on, and
        whether the file ended among them."""
        kept: list[RawItem] = []
        failed = None
        with closing(self._read(None)) as items:
            try:
                kept.extend(itertools.islice(items, HEAD_ITEMS))
            except InputError as e:  # said again when the items are read in earnest
                failed = e
        self._head = (kept, failed, failed is None and len(kept) < HEAD_ITEMS)

    def items(self, start: Position | None = None) -> Iterator[RawItem]:
        """Yield every item after `start` (None: from the beginning of the file)."""
        if self._head is not None and start is None:
            kept, failed, ended = self._head
            yield from kept
            if failed is not None:
                raise failed
            if not ended:  # the rest, from where the kept items end, as a resume reads it
                yield from self._read(Position(kept[-1].index + 1, kept[-1].end))
        elif self._started is not None and start is None:
            (kept, rest), self._started = self._started, None
            yield from kept
            if self._failed is not None:
                raise self._failed
            yield from rest
        else:
            yield from self._read(start)

    def _read(self, start: Position | None) -> Iterator[RawItem]:
        f, self._parked = self._parked, None
        if f is None:
            f = Source(self.location, self.size, prefix=self._prefix)
        with f, self._reading(f):
            if self.shape.kind == "jsonl":
                yield from self._lines(f, start or Position(0, data_start(f)))
            elif self.shape.kind == "ion":
                yield from self._ion_lines(f, start or Position(0, data_start(f)))
            elif self.shape.kind == "item":
                yield from self._one_item(f, start)
            else:
                yield from self._json(f, start)

    def _json(self, f: Source, start: Position | None) -> Iterator[RawItem]:
        t = Scanner(f, start.offset if start else data_start(f), self.path)
        resuming = start is not None
        # The keys from the top-level object down to the items array (none for an array).
        key = self.shape.key
        path = ([key] if self.shape.kind == "table" else key.split(".")) if key else []
        if not resuming:
            for depth, part in enumerate(path):
                t.expect("{", "'{'")
                first = True
                while (key := next_key(t, first)) != part:
                    if key is None:
                        where = ".".join(path[:depth]) or "the top-level object"
                        raise t.error(f"no key {part!r} in {where}")
                    first = False
                    skip_value(t)
            t.expect("[", "'['")
        index = start.index if start else 0
        new = tuple.__new__  # RawItem's own __new__ is a Python call: 0.1 µs an item more
        for value in array_values(t, after=resuming, index=index):
            yield new(RawItem, (index, value, t.base + t.pos))  # t.byte_offset(t.pos), inline
            index += 1
        for _ in path:  # what follows the array in each enclosing object
            while (key := next_key(t, first=False)) is not None:
                if skip_value(t) and self.shape.kind == "object":
                    raise t.error(
                        f"a second array of objects, under {key!r}, follows the items "
                        f"under {self.shape.key!r}",
                        hint=Text("name the one to import with ", Arg("items_path")),
                    )
        expect_end(t)

    def _one_item(self, f: Source, start: Position | None) -> Iterator[RawItem]:
        """The one item of GetItem's answer, which a checkpoint can only follow."""
        if start is not None and start.index > 0:
            return
        f.seek(data_start(f))
        data = f.read(1 << 30)  # GetItem answers an item of 400 KB at most
        try:
            value = fast_decode(data)
        except REFUSED:
            value = DECODER.decode(data.decode("utf-8"))
        yield RawItem(0, value[self.shape.key or "Item"], f.bytes_read)

    def _text_lines(self, f: Source, offset: int) -> Iterator[tuple[int, int, bytes]]:
        """(start, end, line) of each line from `offset` on that is not blank: an item per
        line, in JSON Lines and in Ion exports, so a line's end is a checkpoint."""
        f.seek(offset)
        for line in iter(lambda: f.readline(_MAX_LINE), b""):
            at, offset = offset, offset + len(line)
            if len(line) == _MAX_LINE and not line.endswith(b"\n"):
                raise InputError(f"{self.path}: line at byte {at} is longer than 64 MiB")
            if not line.isspace():
                yield at, offset, line

    def _lines(self, f: Source, start: Position) -> Iterator[RawItem]:
        index = start.index
        for at, offset, line in self._text_lines(f, start.offset):
            try:
                value = fast_decode(line)
            except REFUSED:  # the standard library reads it again, to say what is wrong
                value = self._line(line, at, index)
            yield RawItem(index, value, offset)
            index += 1

    def _line(self, line: bytes, at: int, index: int) -> Any:
        """A line msgspec refused: its value, or the error with its byte offset."""
        try:
            text = line.decode("utf-8")
            value = DECODER.decode(text)
        except RecursionError:  # nested too deep to decode: dead-lettered with its text
            return Unparsed(text.strip())
        except UnicodeDecodeError as e:
            raise InputError(
                f"{self.path}: not UTF-8 text at byte {at + e.start} in item {index}",
                UTF8_HINT,
                offset=at + e.start,
                index=index,
            ) from None
        except json.JSONDecodeError as e:
            bad = at + len(text[: e.pos].encode("utf-8"))
            cut = not line.endswith(b"\n") and (
                e.msg.startswith("Unterminated") or e.pos >= len(text.rstrip()) - 1
            )
            problem = (
                "the last line is cut short (truncated?)" if cut else (f"invalid JSON ({e.msg})")
            )
            raise InputError(
                f"{self.path}: {problem} at byte {bad} in item {index}",
                offset=bad,
                index=index,
            ) from None
        except ValueError as e:  # NaN/Infinity, or an integer too long to convert
            raise InputError(
                f"{self.path}: {e} in the line at byte {at} (item {index})",
                offset=at,
                index=index,
            ) from None
        return value

    def _ion_lines(self, f: Source, start: Position) -> Iterator[RawItem]:
        """Lines of Ion text, each one value, as DynamoDB's Ion export writes them: read
        like JSON Lines, so that every item ends at a line's end, a checkpoint."""
        from . import ion  # only for Ion: amazon-ion is an optional package

        ion.require()
        index = start.index
        for at, offset, line in self._text_lines(f, start.offset):
            try:
                value = ion.parse_line(line)
            except ion.IonSyntaxError as e:
                cut = not line.endswith(b"\n") and "EOF" in str(e)
                problem = "the last line is cut short (truncated?)" if cut else str(e)
                raise InputError(
                    f"{self.path}: {problem} in the line at byte {at} (item {index})",
                    "DynamoDB's Ion export holds one value a line: $ion_1_0 {Item:{...}}",
                    offset=at,
                    index=index,
                ) from None
            if value is ion.EMPTY:
                continue
            yield RawItem(index, IonLine(value, line), offset)
            index += 1


def _requests(source: Source) -> bool:
    """Whether the file is a BatchWriteItem request file; `source` is left at its start."""
    head = source.read(1 << 16)
    source.seek(0)
    return looks_like_requests(head)


def _only_table(location: Location) -> str:
    """The table of a request file read as one run: refused when it names several."""
    if location.kind != "file":
        raise InputError(
            f"{location}: a BatchWriteItem request file is read from a file, not a stream",
            "save it to a file and import that",
        )
    names = tables_in(location)
    if len(names) > 1:
        raise InputError(
            f"{location} holds write requests for {len(names)} tables "
            f"({', '.join(names)}): each is a run of its own",
            Text("name one with ", Arg("items_path", names[0]), " or import them all with ",
                 Command("start", (str(location),))),
        )  # fmt: skip
    return names[0]
