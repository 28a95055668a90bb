"""Read JSON text in pieces, by byte offset: where each value of the items array begins
and ends, and its value, without holding more than a chunk or two of the file.

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
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from .errors import InputError
from .items import Unparsed
from .sources import Source

BOM = b"\xef\xbb\xbf"
_CHUNK = 256 << 10
_WINDOW = 16 << 10  # bytes the slow path decodes first; it grows the window as needed
# One item's text may grow the buffer to this before the reader calls it malformed: a
# DynamoDB item is at most 400 KB, so anything near this is a broken file, not an item.
_MAX_VALUE_CHARS = 64 << 20
_WS = re.compile(rb"[ \t\n\r]*")
_SEPARATOR = re.compile(rb"[ \t\n\r]*(,)?[ \t\n\r]*")
_OPEN, _CLOSE = ord("{"), ord("}")
_MAX_MISSES = 16
_MISSING = object()
UTF8_HINT = "a JSON dump must be UTF-8; re-encode it (e.g. with iconv) and start again"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number DynamoDB can store")


# Numbers stay exact: Decimal keeps 0.1 as 0.1 and every digit of 3.14159265358979323846.
DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
_decode = DECODER.raw_decode
# The fast path: msgspec, on bytes, with the same exact numbers (big integers stay int).
fast_decode = msgspec.json.Decoder(float_hook=Decimal).decode
REFUSED = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


class Scanner:
    """The bytes of a file from some offset on, read a chunk at a time, with the JSON
    values at `pos` decoded on demand.

    Positions are byte indexes into `buf`, so an item's end offset in the file is one
    addition, whatever the text's encoding. UTF-8 is checked where values are decoded:
    msgspec checks the strings it reads, and the slow path decodes what it parses.
    """

    fast = True  # whether `array_values` may count braces; False once that was fooled
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

        The slow path: for what msgspec refused or `array_values` could not delimit, and
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
        return self.error("not UTF-8 text", at=at, index=index, hint=UTF8_HINT)

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


def data_start(f: Source) -> int:
    f.seek(0)
    return 3 if f.read(3) == BOM else 0


def next_key(t: Scanner, first: bool) -> str | None:
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


def skip_value(t: Scanner) -> bool:
    """Consume one value, streaming through arrays; True if it was an array of objects."""
    if t.peek() != "[":
        t.value()
        return False
    t.pos += 1
    first = next(array_values(t, after=False), None)
    for _ in array_values(t, after=True):
        pass
    return isinstance(first, dict)


def array_values(t: Scanner, *, after: bool, index: int = 0) -> Iterator[Any]:
    """Values of an array whose '[' is consumed; `after` if one element was read already."""
    while True:
        # The fast path, for nearly every item: an object, delimited without parsing.
        if not t.eof and len(t.buf) - t.pos < _CHUNK:
            t.fill()  # keep a chunk ahead, so that an item is whole in the buffer
        buf = t.buf
        previous_end = t.pos
        lead = t.lead
        # The fastest way, in a few C calls: this item begins as the last one did (the
        # separator and the first key of `lead`), and the next one begins so too.
        if lead and after and t.fast and buf.startswith(lead, previous_end):
            start = previous_end + lead.index(b"{")
            end = buf.find(lead, start)
            if end > 0 and buf[end - 1] == _CLOSE:
                try:
                    value = fast_decode(buf[start:end])
                except REFUSED:
                    pass  # the way below tries again, and counts the guess as wrong
                else:
                    t.hits += 1
                    t.pos = end
                    yield value
                    index += 1
                    continue
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


def _end_by_lead(t: Scanner, buf: bytes, start: int) -> int:
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
        return fast_decode(buf[start:end])
    except REFUSED:
        return _MISSING


def _learn_lead(t: Scanner, buf: bytes, previous_end: int, start: int) -> None:
    """Remember how this item began, separator included: `{"pk":` after `, `."""
    colon = buf.find(b":", start, start + 64)
    t.lead = buf[previous_end : colon + 1] if colon > 0 else b""


def expect_end(t: Scanner) -> None:
    c = t.peek()
    if c:
        raise t.error(f"unexpected {c!r} after the end of the dump")
