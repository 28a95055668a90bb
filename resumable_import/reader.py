"""Stream the items of a dump, each with the byte offset where it ends.

The checkpoint has to say where reading continues, so that `resume` seeks straight there
instead of parsing the gigabytes already imported. ijson cannot tell where an item ends in
the file, so this module splits the stream itself, on bytes, and msgspec decodes exactly
the bytes of each object in the items array (keeping every digit of every number). Where
an object ends is found without parsing it: items nearly always begin alike (`, {"pk":`,
text that cannot occur inside a string, whose quotes would be escaped), so one search
for the next such beginning usually finds it; otherwise the end is the first '}' where
the braces since the '{' balance. Either is only a guess until msgspec accepts those bytes
as one whole value. A brace inside a string can fool the count: msgspec then refuses the
bytes, the standard library's `raw_decode` reads the item and finds its end itself, and
once that end disagrees with the count the file is read that way to its end. Measured
with callgrind on the benchmark's 1 KB items: 59k instructions per item read, against
111k with the standard library's decoder on text decoded from UTF-8 first. Memory stays
at one or two read chunks plus the item being decoded.

Shapes of dump (detected, or named with `--format`):
    array   [ {...}, {...} ]
    object  {"Items": [ {...}, ... ], "Count": 2}  (the array under Items, items, Records,
            or the one key whose value is an array of objects)
    jsonl   one object per line; blank lines and CRLF are fine
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from .errors import FileChangedError, InputError
from .items import Unparsed, looks_exported, looks_typed
from .sources import Location, PrefixHash, Source

FORMATS = ("auto", "json", "jsonl", "ddb-json", "ddb-export")
ITEMS_KEYS = ("Items", "items", "Records")

_BOM = b"\xef\xbb\xbf"
_CHUNK = 256 << 10
_WINDOW = 16 << 10  # bytes the slow path decodes first; it grows the window as needed
_PEEK = 4 << 20
# One item's text may grow the buffer to this before the reader calls it malformed: a
# DynamoDB item is at most 400 KB, so anything near this is a broken file, not an item.
_MAX_VALUE_CHARS = 64 << 20
_MAX_LINE = 64 << 20
_WS = re.compile(rb"[ \t\n\r]*")
_SEPARATOR = re.compile(rb"[ \t\n\r]*(,)?[ \t\n\r]*")
_OPEN, _CLOSE = ord("{"), ord("}")
_MAX_MISSES = 16
_MISSING = object()
_UTF8_HINT = "a JSON dump must be UTF-8; re-encode it (e.g. with iconv) and start again"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number DynamoDB can store")


# Numbers stay exact: Decimal keeps 0.1 as 0.1 and every digit of 3.14159265358979323846.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
_decode = _DECODER.raw_decode
# The fast path: msgspec, on bytes, with the same exact numbers (big integers stay int).
_fast_decode = msgspec.json.Decoder(float_hook=Decimal).decode
_REFUSED = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


@dataclass(frozen=True)
class Shape:
    """How items sit in the file; stored with the run so `resume` reads the same way."""

    kind: str  # "array" | "object" (detected) | "path" (named by --items-path) | "jsonl"
    key: str | None = None  # for "object" and "path": the dotted keys down to the items array

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}" if self.key else self.kind

    @classmethod
    def parse(cls, text: str) -> Shape:
        """Read back `str(shape)`, with or without the codec that `Dump.describe` adds."""
        kind, _, key = text.partition("+")[0].partition(":")
        return cls(kind, key or None)


@dataclass(frozen=True)
class Position:
    """Where reading continues: `index` items lie before byte `offset`."""

    index: int = 0
    offset: int = 0


class RawItem(NamedTuple):
    index: int
    value: Any
    end: int  # byte offset just past this item: the checkpoint after it


class _Text:
    """The bytes of a file from some offset on, read a chunk at a time, with the JSON
    values at `pos` decoded on demand.

    Positions are byte indexes into `buf`, so an item's end offset in the file is one
    addition, whatever the text's encoding. UTF-8 is checked where values are decoded:
    msgspec checks the strings it reads, and the slow path decodes what it parses.
    """

    fast = True  # whether `_array_values` may count braces; False once that was fooled
    lead: bytes | None = None  # how items begin, separator included; b"": not guessing
    hits = misses = 0  # of the guesses by `lead`

    def __init__(self, f: Source, offset: int, path: Path) -> None:
        f.seek(offset)
        self._f = f
        self._path = path
        self.base = offset  # the file offset of buf[0]
        self.buf = b""
        self.pos = 0
        self.eof = False

    def byte_offset(self, pos: int) -> int:
        return self.base + pos

    def guessed(self, right: bool) -> None:
        """Count a guess by `lead`. After a wrong one, learn `lead` again from the next
        item; stop guessing once more than 1 in 64 were wrong."""
        if right:
            self.hits += 1
            return
        self.misses += 1
        stop = self.misses > _MAX_MISSES and self.misses * 64 > self.hits
        self.lead = b"" if stop else None

    def fill(self) -> bool:
        """Append the next chunk, dropping the bytes before `pos`; False at end of file."""
        if self.eof:
            return False
        if self.pos:
            self.base += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        data = self._f.read(_CHUNK)
        self.buf += data
        self.eof = not data
        return bool(data)

    def peek(self, ahead: int = 0) -> str:
        """The first non-blank char at or after `pos + ahead`, reading on as needed; '' at EOF."""
        while True:
            j = _WS.match(self.buf, self.pos + ahead).end()
            if j < len(self.buf):
                if not ahead:
                    self.pos = j
                return self._char(j)
            if not ahead:
                self.pos = j
            if not self.fill():
                return ""

    def _char(self, j: int) -> str:
        if self.buf[j] < 0x80:
            return chr(self.buf[j])
        try:  # a non-ASCII char where JSON wants punctuation: name it in the message
            return codecs.utf_8_decode(self.buf[j : j + 4], "strict", False)[0][:1] or "\ufffd"
        except UnicodeDecodeError:
            raise self._not_utf8(j) from None

    def value(self, index: int | None = None) -> Any:
        """Decode the JSON value at `pos` with the standard library and move past it.

        The slow path: for what msgspec refused or `_array_values` could not delimit, and
        for the few values outside the items. Decodes a window of the buffer, growing it
        (and reading on) until the value fits.
        """
        window = _WINDOW
        while True:
            stop = min(len(self.buf), self.pos + window)
            final = self.eof and stop == len(self.buf)
            bad = None
            try:
                text = codecs.utf_8_decode(self.buf[self.pos : stop], "strict", final)[0]
            except UnicodeDecodeError as e:  # parse what comes before it: it may be enough
                bad = e.start
                text = self.buf[self.pos : self.pos + bad].decode("utf-8")
            try:
                value, end = _decode(text)
            except RecursionError:  # nested too deep to decode: keep its text, find its end
                end = _deep_end(text)
                if end < 0 and bad is None and not final and len(text) < _MAX_VALUE_CHARS:
                    window = self._more(window, stop)
                    continue
                if end < 0:
                    raise self.error(
                        "the file ends in the middle of a value (truncated?)"
                        if final
                        else "invalid JSON (brackets that do not match)",
                        index=index,
                    ) from None
                value = Unparsed(text[:end])
            except json.JSONDecodeError as e:
                if bad is None and not final and len(text) < _MAX_VALUE_CHARS:
                    window = self._more(window, stop)
                    continue
                if bad is not None and e.pos >= len(text.rstrip()) - 1:
                    raise self._not_utf8(self.pos + bad, index) from None
                at = self.pos + len(text[: e.pos].encode("utf-8"))
                raise self.error(self._describe(e, text, final), at=at, index=index) from None
            except ValueError as e:  # NaN/Infinity, or an integer too long to convert
                raise self.error(str(e), index=index) from None
            if end == len(text) and bad is None and not final and type(value) in (int, Decimal):
                window = self._more(window, stop)  # a number cut by the window: decode it whole
                continue
            self.pos += len(text[:end].encode("utf-8"))
            return value

    def _more(self, window: int, stop: int) -> int:
        if stop == len(self.buf):
            self.fill()
        return window * 4

    def _describe(self, e: json.JSONDecodeError, text: str, final: bool) -> str:
        if final and (e.msg.startswith("Unterminated") or e.pos >= len(text.rstrip()) - 1):
            return "the file ends in the middle of a value (truncated?)"
        return f"invalid JSON ({e.msg})"

    def _not_utf8(self, at: int, index: int | None = None) -> InputError:
        return self.error("not UTF-8 text", at=at, index=index, hint=_UTF8_HINT)

    def error(
        self, what: str, *, at: int | None = None, index: int | None = None, hint: str | None = None
    ) -> InputError:
        offset = self.byte_offset(self.pos if at is None else at)
        where = f" in item {index}" if index is not None else ""
        return InputError(
            f"{self._path}: {what} at byte {offset}{where}", hint, offset=offset, index=index
        )

    def expect(self, char: str, what: str) -> None:
        got = self.peek()
        if got != char:
            found = f"{got!r}" if got else "the end of the file"
            raise self.error(f"expected {what}, found {found}")
        self.pos += 1


def detect_shape(path: Path, fmt: str = "auto") -> Shape:
    """Decide how items sit in `path`, refusing to guess between two readings."""
    with Source(path) as f:
        head = f.read(_PEEK)
        whole = len(f.read(1)) == 0  # the head is the whole (decompressed) file
    body = head[3:] if head.startswith(_BOM) else head
    stripped = body.lstrip()
    if not stripped:
        what = "is empty" if not head else "holds only white space"
        raise InputError(
            f"{path} {what}: there are no items to import",
            "check the path, and that whatever wrote the dump finished writing it",
        )
    first = stripped[:1]
    if fmt in ("jsonl", "ddb-export"):  # an export is JSON Lines of {"Item": ...}
        if first == b"[":
            raise InputError(
                f"{path} is a JSON array, not JSON Lines as --format {fmt} reads",
                "use --format " + ("ddb-json" if fmt == "ddb-export" else "json") + " (or auto)",
                offset=len(head) - len(stripped),
            )
        return Shape("jsonl")
    if first == b"[":
        return Shape("array")
    if first != b"{":
        raise InputError(
            f"{path} starts with {first.decode('latin-1')!r}, not '[' or '{{'",
            "a dump is a JSON array of objects, an object holding such an array, "
            "or JSON Lines (one object per line)",
            offset=len(head) - len(stripped),
        )
    line, newline, rest = body.partition(b"\n")
    obj = _loads_or_none(line) if newline or whole else None
    if fmt == "json" and isinstance(obj, dict) and rest.strip():
        raise InputError(
            f"{path} holds one object per line (JSON Lines), not the one JSON document "
            "--format json reads",
            "use --format jsonl (or auto)",
        )
    if fmt in ("auto", "ddb-json") and isinstance(obj, dict):
        if rest.strip() or not whole:
            return Shape("jsonl")
        key = next((k for k, v in obj.items() if _is_object_array(k, v)), None)
        if key is None:
            return Shape("jsonl")
        raise InputError(
            f"{path} is a single JSON object on one line: it reads both as JSON Lines "
            f"(one item) and as a wrapper whose items are under {key!r}",
            "say which with --format json or --format jsonl",
        )
    return Shape("object", _find_items_key(path))


def items_as(fmt: str) -> str:
    """What the elements of a dump in format `fmt` are: plain JSON, or DynamoDB's own."""
    return fmt if fmt in ("ddb-json", "ddb-export") else "json"


def _check_typing(path: Path, fmt: str, value: Any) -> None:
    """Plain or DynamoDB JSON, judged on the first item: `auto` never guesses typed JSON,
    and a named typed format must hold it (else every item would be dead-lettered)."""
    typed, exported = looks_typed(value), looks_exported(value)
    if fmt == "auto" and (typed or exported):
        raise InputError(
            f"{path}: its items read both as plain JSON and as DynamoDB's own JSON "
            '(attributes like {"S": "text"})',
            f"say which with --format {'ddb-json' if typed else 'ddb-export'} or --format "
            "json / jsonl",
        )
    if (fmt == "ddb-json" and not typed) or (fmt == "ddb-export" and not exported):
        what = (
            'DynamoDB JSON (attributes like {"S": "text"})'
            if fmt == "ddb-json"
            else 'an export line ({"Item": {...DynamoDB JSON...}})'
        )
        raise InputError(
            f"{path}: its first item is not {what}, as --format {fmt} reads",
            "use --format json or jsonl for plain JSON, or check the file with `rimport validate`",
        )


def _loads_or_none(line: bytes) -> Any:
    try:
        return json.loads(line, parse_float=Decimal)
    except ValueError:
        return None
    except RecursionError:  # an object nested too deep to decode: one item, not a wrapper
        return {}


def _is_object_array(key: str, value: Any) -> bool:
    if not isinstance(value, list):
        return False
    return isinstance(value[0], dict) if value else key in ITEMS_KEYS


def _find_items_key(path: Path) -> str:
    """Walk the top-level object to the first key whose value is an array of items."""
    with Source(path) as f:
        t = _Text(f, _data_start(f), path)
        t.expect("{", "'{'")
        first = True
        while (key := _next_key(t, first)) is not None:
            first = False
            if t.peek() == "[":
                head = t.peek(1)
                if head == "{" or (head == "]" and key in ITEMS_KEYS):
                    return key
            _skip_value(t)
    raise InputError(
        f"{path}: the top-level object holds no array of objects to import",
        "the items must sit under 'Items', 'items', 'Records' or the object's only key; "
        "for one object per line, pass --format jsonl",
    )


def _data_start(f: Source) -> int:
    f.seek(0)
    return 3 if f.read(3) == _BOM else 0


def _next_key(t: _Text, first: bool) -> str | None:
    """The next key of an object being walked, or None once its '}' is consumed."""
    c = t.peek()
    if c == "}":
        t.pos += 1
        return None
    if not first:
        t.expect(",", "',' or '}'")
        t.peek()
    key = t.value()
    if not isinstance(key, str):
        raise t.error("expected a key (a string)")
    t.expect(":", "':'")
    return key


def _skip_value(t: _Text) -> bool:
    """Consume one value, streaming through arrays; True if it was an array of objects."""
    if t.peek() != "[":
        t.value()
        return False
    t.pos += 1
    first = next(_array_values(t, after=False), None)
    for _ in _array_values(t, after=True):
        pass
    return isinstance(first, dict)


def _array_values(t: _Text, *, after: bool, index: int = 0) -> Iterator[Any]:
    """Values of an array whose '[' is consumed; `after` if one element was read already."""
    while True:
        # The fast path, for nearly every item: an object, delimited without parsing.
        if not t.eof and len(t.buf) - t.pos < _CHUNK:
            t.fill()  # keep a chunk ahead, so that an item is whole in the buffer
        buf = t.buf
        previous_end = t.pos
        m = _SEPARATOR.match(buf, previous_end)
        start = m.end()
        counted: int | None = None  # where the count put the item's end, if it tried
        tried, limit = False, 0
        if t.fast and start < len(buf) and buf[start] == _OPEN and (m[1] is not None) == after:
            value, end = _MISSING, _end_by_lead(t, buf, start)
            if end > 0:
                value = _decoded(buf, start, end)
            if t.lead:
                t.guessed(value is not _MISSING)
            if value is _MISSING and (end := _object_end(buf, start)) > 0:
                value = _decoded(buf, start, end)
            if value is not _MISSING:
                if t.lead is None and after:
                    _learn_lead(t, buf, previous_end, start)
                t.pos = end
                yield value
                index += 1
                after = True
                continue
            tried, limit = True, t.byte_offset(len(buf))
            counted = t.byte_offset(end) if end > 0 else None
        c = t.peek()
        if c == "]":
            t.pos += 1
            return
        if after:
            if c != ",":
                raise t.error(
                    "expected ',' or ']' after an item"
                    if c
                    else "the file ends inside the items array (truncated?)",
                    index=index,
                )
            t.pos += 1
            c = t.peek()
        if not c:
            raise t.error("the file ends inside the items array (truncated?)", index=index)
        value = t.value(index)
        if tried:  # did braces inside strings fool the count? Then stop counting, for good
            real = t.byte_offset(t.pos)
            if real != counted and (counted is not None or real <= limit):
                t.fast = False
        yield value
        index += 1
        after = True


_SCAN = re.compile(r'["\[\]{}]')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _deep_end(text: str) -> int:
    """Where the array or object at `text[0]` ends, found without recursion (for values
    nested too deep to decode); -1 if the text ends first or its brackets do not match."""
    stack: list[str] = []
    pos = 0
    while m := _SCAN.search(text, pos):
        c = m.group()
        if c == '"':
            string = _STRING.match(text, m.start())
            if string is None:
                return -1
            pos = string.end()
            continue
        pos = m.end()
        if c in "[{":
            stack.append("]" if c == "[" else "}")
        elif not stack or stack.pop() != c:
            return -1
        elif not stack:
            return pos
    return -1


def _object_end(buf: bytes, start: int) -> int:
    """Index just past the '}' that balances the '{' at `start`, or -1 if `buf` ends first.

    Braces inside strings are counted too; the caller finds out by decoding."""
    depth, p = 0, start
    while (k := buf.find(b"}", p)) >= 0:
        depth += buf.count(b"{", p, k) - 1
        p = k + 1
        if depth == 0:
            return p
    return -1


def _end_by_lead(t: _Text, buf: bytes, start: int) -> int:
    """Where the item at `start` ends if the next one begins the way the last did (the
    same separator, the same first key): one search instead of a count per brace. Only a
    guess, checked by decoding; -1 when there is none."""
    if not t.lead:
        return -1
    guess = buf.find(t.lead, start)
    return guess if guess > 0 and buf[guess - 1] == _CLOSE else -1


def _decoded(buf: bytes, start: int, end: int) -> Any:
    """The value of buf[start:end] if it is exactly one that msgspec reads, else _MISSING."""
    try:
        return _fast_decode(buf[start:end])
    except _REFUSED:
        return _MISSING


def _learn_lead(t: _Text, buf: bytes, previous_end: int, start: int) -> None:
    """Remember how this item began, separator included: `{"pk":` after `, `."""
    colon = buf.find(b":", start, start + 64)
    t.lead = buf[previous_end : colon + 1] if colon > 0 else b""


def _expect_end(t: _Text) -> None:
    c = t.peek()
    if c:
        raise t.error(f"unexpected {c!r} after the end of the dump")


class Dump:
    """An open dump: its size, its shape, and its items from any checkpoint on."""

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
        self.items_as = items_as  # json, or DynamoDB's own: ddb-json, ddb-export
        self.size: int | None = self.location.size()  # None: a stream, size unknown
        self._source: Source | None = None
        self._compressed = False
        self._codec: str | None = None
        # A stream's text up to each checkpoint is hashed, since it cannot be read again.
        self._prefix = PrefixHash() if checkpoints and self.location.kind == "stream" else None
        self._parked: Source | None = None  # a stream read up to the checkpoint by `skip_to`
        self._last_read = 0  # bytes of the file the last reader took
        self._started: tuple[RawItem, Iterator[RawItem]] | None = None  # a stream's first item

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
                    "give `resume --from` the same bytes as the run was started with",
                )
            if expected and got != expected:
                raise FileChangedError(
                    f"{self.location}: its first {start.offset:,} bytes differ from those run "
                    f"{run_id} read ({expected[:19]}… is now {got[:19]}…)",
                    "give `resume --from` the same bytes as the run was started with",
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
        if items_path is not None and fmt not in ("auto", "json", "ddb-json"):
            raise InputError(f"--items-path does not go with --format {fmt}")
        p = path if isinstance(path, Location) else Location(path)
        try:
            shape = Shape("path", items_path) if items_path else detect_shape(p, fmt)  # type: ignore[arg-type]
            dump = cls(p, shape, items_as=items_as(fmt), checkpoints=checkpoints)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
            raise InputError(f"{p}: {e.strerror.lower()}", "check the path") from None
        if fmt != "json" and fmt != "jsonl":
            items = dump.items()
            first = next(items, None)
            if first is not None:
                _check_typing(dump.path, fmt, first.value)  # type: ignore[arg-type]
                if dump.location.kind == "stream":  # read once: the items go on from here
                    dump._started = (first, items)
        return dump

    def items(self, start: Position | None = None) -> Iterator[RawItem]:
        """Yield every item after `start` (None: from the beginning of the file)."""
        if self._started is not None and start is None:
            (first, rest), self._started = self._started, None
            yield first
            yield from rest
            return
        f, self._parked = self._parked, None
        if f is None:
            f = Source(self.location, self.size, prefix=self._prefix)
        with f, self._reading(f):
            if self.shape.kind == "jsonl":
                yield from self._lines(f, start or Position(0, _data_start(f)))
            else:
                yield from self._json(f, start)

    def _json(self, f: Source, start: Position | None) -> Iterator[RawItem]:
        t = _Text(f, start.offset if start else _data_start(f), self.path)
        resuming = start is not None
        # The keys from the top-level object down to the items array (none for an array).
        path = self.shape.key.split(".") if self.shape.key else []
        if not resuming:
            for depth, part in enumerate(path):
                t.expect("{", "'{'")
                first = True
                while (key := _next_key(t, first)) != part:
                    if key is None:
                        where = ".".join(path[:depth]) or "the top-level object"
                        raise t.error(f"no key {part!r} in {where}")
                    first = False
                    _skip_value(t)
            t.expect("[", "'['")
        index = start.index if start else 0
        for value in _array_values(t, after=resuming, index=index):
            yield RawItem(index, value, t.byte_offset(t.pos))
            index += 1
        for _ in path:  # what follows the array in each enclosing object
            while (key := _next_key(t, first=False)) is not None:
                if _skip_value(t) and self.shape.kind == "object":
                    raise t.error(
                        f"a second array of objects, under {key!r}, follows the items "
                        f"under {self.shape.key!r}",
                        hint="name the one to import with --items-path",
                    )
        _expect_end(t)

    def _lines(self, f: Source, start: Position) -> Iterator[RawItem]:
        f.seek(start.offset)
        index, offset = start.index, start.offset
        for line in iter(lambda: f.readline(_MAX_LINE), b""):
            at, offset = offset, offset + len(line)
            if len(line) == _MAX_LINE and not line.endswith(b"\n"):
                raise InputError(f"{self.path}: line at byte {at} is longer than 64 MiB")
            if line.isspace():
                continue
            try:
                value = _fast_decode(line)
            except _REFUSED:  # the standard library reads it again, to say what is wrong
                value = self._line(line, at, index)
            yield RawItem(index, value, offset)
            index += 1

    def _line(self, line: bytes, at: int, index: int) -> Any:
        """A line msgspec refused: its value, or the error with its byte offset."""
        try:
            text = line.decode("utf-8")
            value = _DECODER.decode(text)
        except RecursionError:  # nested too deep to decode: dead-lettered with its text
            return Unparsed(text.strip())
        except UnicodeDecodeError as e:
            raise InputError(
                f"{self.path}: not UTF-8 text at byte {at + e.start} in item {index}",
                _UTF8_HINT,
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
