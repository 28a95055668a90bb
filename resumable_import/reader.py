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
    ion     one Ion value per line, `$ion_1_0 {Item:{...}}`: DynamoDB's Ion export (ion.py)

A file that is one object on one line (as `jq -c` writes a wrapper) reads both ways: it is
a wrapper when its array of objects sits under Items, items, Records or its only key, and
otherwise one JSON Lines item. That is decided from its top-level keys, walked without
holding the line whole, however long it is.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from .errors import FileChangedError, InputError
from .items import IonLine, Unparsed, looks_exported, looks_typed
from .sources import Location, PrefixHash, Source

FORMATS = ("auto", "json", "jsonl", "ddb-json", "ddb-export", "ion")
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
_ION_MARKER = b"$ion_1_0"  # how every line of DynamoDB's Ion export begins
_ION_LIKE = re.compile(rb"\{\s*Item\s*:")  # `{Item:` unquoted: Ion text, not JSON


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
    return _detect(path, fmt)[0]


def _detect(path: Path, fmt: str) -> tuple[Shape, str | None]:
    """The shape, and for a file that is one JSON object on one line (which reads both as
    a wrapper of items and as one JSON Lines item) a line saying which reading was taken."""
    with Source(path) as f:
        head = f.read(_PEEK)
        whole = len(f.read(1)) == 0  # the head is the whole (decompressed) file
    body = head[3:] if head.startswith(_BOM) else head
    stripped = body.lstrip()
    start = len(head) - len(stripped)  # where the first value begins, blank lines skipped
    if not stripped:
        what = "is empty" if not head else "holds only white space"
        raise InputError(
            f"{path} {what}: there are no items to import",
            "check the path, and that whatever wrote the dump finished writing it",
        )
    ion = _ion_shape(path, fmt, stripped, start)
    if ion is not None:
        return ion, None
    first = stripped[:1]
    if fmt in ("jsonl", "ddb-export"):  # an export is JSON Lines of {"Item": ...}
        if first == b"[":
            raise InputError(
                f"{path} is a JSON array, not JSON Lines as --format {fmt} reads",
                "use --format " + ("ddb-json" if fmt == "ddb-export" else "json") + " (or auto)",
                offset=start,
            )
        return Shape("jsonl"), None
    if first == b"[":
        return Shape("array"), None
    if first != b"{":
        raise InputError(
            f"{path} starts with {first.decode('latin-1')!r}, not '[' or '{{'",
            "a dump is a JSON array of objects, an object holding such an array, "
            "or JSON Lines (one object per line)",
            offset=start,
        )
    line, newline, rest = stripped.partition(b"\n")
    nested: list[str] = []  # arrays of objects inside its values, for the note
    if not newline and not whole:  # a first line longer than the peek: walk its keys
        if fmt == "json":
            return Shape("object", _find_items_key(path)), None
        with Source(path) as f:
            return _one_object(path, _walk_keys(_Text(f, start, path), nested), nested)
    obj = _loads_or_none(line)
    if not isinstance(obj, dict):  # an object written over several lines: a wrapper
        return Shape("object", _find_items_key(path)), None
    if rest.strip() or not whole:  # one object per line
        if fmt == "json":
            raise InputError(
                f"{path} holds one object per line (JSON Lines), not the one JSON document "
                "--format json reads",
                f"use {_format_for(obj, 'jsonl')}",
            )
        return Shape("jsonl"), None
    if fmt == "json":
        return Shape("object", _find_items_key(path, one_line=True)), None
    for k, v in obj.items():
        _arrays_within(v, k, nested)
    return _one_object(path, ((k, _is_object_array(k, v)) for k, v in obj.items()), nested)


def _one_object(
    path: Path, keys: Iterator[tuple[str, bool]], nested: list[str] | None = None
) -> tuple[Shape, str | None]:
    """Read a file that is one JSON object on one line as a wrapper exactly when its items
    sit where a wrapper's do: an array of objects under Items, items or Records, or under
    its only key. Otherwise the line is one JSON Lines item, and an array of objects beside
    its other attributes is one of its attributes.

    `keys` yields each top-level key with whether its value is an array of objects; it is
    consumed only as far as needed, as walking a one-line wrapper costs a read of it.
    `nested`: arrays of objects deeper down (as --items-path names them), for the note."""
    names: list[str] = []
    arrays: list[str] = []
    for key, objects in keys:
        if objects and key in ITEMS_KEYS:
            return _wrapper(path, key)
        names.append(key)
        if objects:
            arrays.append(key)
    if len(names) == 1 and arrays:
        return _wrapper(path, arrays[0])
    named = [*arrays, *(nested or [])]
    if not named:
        return Shape("jsonl"), None
    return Shape("jsonl"), (
        f"{_short(path)} is one JSON object on one line: reading it as one item; it holds an "
        f"array of objects under {named[0]!r} (--items-path {named[0]} reads that array's "
        "objects as the items instead)"
    )


def _short(path: Path | Location) -> str:
    """A dump's name in a note: a file's own name, `standard input`, an S3 object's key."""
    return Path(str(path)).name


def _wrapper(path: Path, key: str) -> tuple[Shape, str]:
    return Shape("object", key), (
        f"{_short(path)} is one JSON object on one line: reading the items under {key!r} "
        "(--format jsonl reads the line as one item instead)"
    )


def _walk_keys(t: _Text, nested: list[str]) -> Iterator[tuple[str, bool]]:
    """The keys of the object at `t`, each with whether its value is an array of objects,
    found by walking: arrays are streamed through, never held whole. An items key holding
    an array decides the matter at its '[' and ends the walk. Adds to `nested` the arrays
    of objects inside the other values."""
    t.expect("{", "'{'")
    first = True
    while (key := _next_key(t, first)) is not None:
        first = False
        if t.peek() != "[":
            _arrays_within(t.value(), key, nested)
            yield key, False
        elif key in ITEMS_KEYS and t.peek(1) in ("{", "]"):
            yield key, True
            return
        else:
            yield key, _skip_value(t)


def _format_for(value: Any, plain: str) -> str:
    """The --format that reads items like `value`, laid out as `plain` reads."""
    if looks_exported(value) and plain == "jsonl":
        return "--format ddb-export"
    if looks_typed(value):
        return "--format ddb-json"
    return f"--format {plain} (or auto)"


def _ion_shape(path: Path, fmt: str, text: bytes, at: int) -> Shape | None:
    """Ion text: named by `--format ion`, or found by the version marker that begins every
    line of an Ion export. None: read the file as JSON."""
    if fmt == "ion":
        return Shape("ion")
    if text.startswith(_ION_MARKER):
        if fmt == "auto":
            return Shape("ion")
        raise InputError(
            f"{path} is Ion text (it begins with $ion_1_0), not the JSON --format {fmt} reads",
            "use --format ion (or auto)",
            offset=at,
        )
    if _ION_LIKE.match(text):
        raise InputError(
            f"{path} starts with {{Item: (a name without quotes): Ion text, not JSON",
            "for a DynamoDB export in Ion format, use --format ion",
            offset=at,
        )
    return None


def items_as(fmt: str) -> str:
    """What the elements of a dump in format `fmt` are: plain JSON, or DynamoDB's own."""
    return fmt if fmt in ("ddb-json", "ddb-export", "ion") else "json"


def _check_ion(path: Path, first: RawItem) -> None:
    """`--format ion` on JSON Lines: JSON is also Ion text, but an export's typed JSON read
    as Ion would import `{"S": "text"}` maps, not strings. Refused on the first line."""
    if isinstance(_loads_or_none(first.value.line), dict):
        raise InputError(
            f"{path}: its first line is JSON, not a line of DynamoDB's Ion export "
            "($ion_1_0 {Item:{...}})",
            "for a DynamoDB JSON export use --format ddb-export; for JSON Lines, jsonl",
        )


def _check_typing(path: Path, fmt: str, value: Any, shape: Shape) -> None:
    """Plain or DynamoDB JSON, judged on the first item: `auto` never guesses typed JSON,
    and a named typed format must hold it (else every item would be dead-lettered)."""
    typed, exported = looks_typed(value), looks_exported(value)
    plain = "jsonl" if shape.kind == "jsonl" else "json"
    if fmt == "auto" and (typed or exported):
        raise InputError(
            f"{path}: its items read both as plain JSON and as DynamoDB's own JSON "
            '(attributes like {"S": "text"})',
            f"say which with --format {'ddb-json' if typed else 'ddb-export'} or --format {plain}",
        )
    if (fmt == "ddb-json" and not typed) or (fmt == "ddb-export" and not exported):
        what = (
            'DynamoDB JSON (attributes like {"S": "text"})'
            if fmt == "ddb-json"
            else 'an export line ({"Item": {...DynamoDB JSON...}})'
        )
        raise InputError(
            f"{path}: its first item is not {what}, as --format {fmt} reads",
            f"use {_format_for(value, plain)}, or check the file with `rimport validate`",
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


def _find_items_key(path: Path, *, one_line: bool = False) -> str:
    """Walk the top-level object to the first key whose value is an array of items.

    `one_line`: the object is the file's only line, which JSON Lines reads as one item."""
    nested: list[str] = []  # arrays of objects inside the values, for the hint
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
            else:
                _arrays_within(t.value(), key, nested)
    if nested:
        others = f" (or {', '.join(nested[1:])})" if nested[1:] else ""
        hint = f"name the array to import with --items-path {nested[0]}{others}"
    elif one_line:
        hint = "use --format jsonl (or auto) to read its line as one item"
    else:
        hint = (
            "the items must sit in an array under 'Items', 'items', 'Records' or another key "
            "of the object, or be one object per line (JSON Lines)"
        )
    raise InputError(f"{path}: the top-level object holds no array of objects to import", hint)


def _arrays_within(value: Any, path: str, found: list[str], depth: int = 3) -> None:
    """Add the dotted paths of the arrays of objects inside `value` (a few levels down)."""
    if not isinstance(value, dict) or not depth or len(found) >= 3:
        return
    for key, v in value.items():
        if "." in key:
            continue  # --items-path could not name it
        if isinstance(v, list) and v and isinstance(v[0], dict):
            found.append(f"{path}.{key}")
        else:
            _arrays_within(v, f"{path}.{key}", found, depth - 1)


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

    # How a file that reads two ways (one JSON object on one line) is read, for the user.
    note: str | None = None

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
        self.size: int | None = self.location.size()  # None: a stream, size unknown
        self._source: Source | None = None
        self._compressed = False
        self._codec: str | None = None
        # A stream's text up to each checkpoint is hashed, since it cannot be read again.
        self._prefix = PrefixHash() if checkpoints and self.location.kind == "stream" else None
        self._parked: Source | None = None  # a stream read up to the checkpoint by `skip_to`
        self._last_read = 0  # bytes of the file the last reader took
        # A stream's first items, read once (to check them) and given again by `items`.
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
            shape, note = (Shape("path", items_path), None) if items_path else _detect(p, fmt)
            dump = cls(p, shape, items_as=items_as(fmt), checkpoints=checkpoints)
            dump.note = note
        except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
            raise InputError(f"{p}: {e.strerror.lower()}", "check the path") from None
        if shape.kind == "ion" or fmt not in ("json", "jsonl"):
            for first in dump.head(1):
                if shape.kind == "ion":
                    _check_ion(dump.path, first)  # type: ignore[arg-type]
                else:
                    _check_typing(dump.path, fmt, first.value, shape)  # type: ignore[arg-type]
        return dump

    def head(self, n: int) -> list[RawItem]:
        """The first `n` items, to judge the dump by: fewer if it breaks before, and the
        InputError if it breaks at the first. A stream is read once: its items are kept,
        and `items` begins with them (and stops where they broke)."""
        if self.location.kind != "stream":
            kept: list[RawItem] = []
            with closing(self.items()) as items:
                try:
                    kept.extend(itertools.islice(items, n))
                except InputError:
                    if not kept:
                        raise
            return kept
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

    def items(self, start: Position | None = None) -> Iterator[RawItem]:
        """Yield every item after `start` (None: from the beginning of the file)."""
        if self._started is not None and start is None:
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
                yield from self._lines(f, start or Position(0, _data_start(f)))
            elif self.shape.kind == "ion":
                yield from self._ion_lines(f, start or Position(0, _data_start(f)))
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
