"""How items sit in a dump, decided from its first bytes: the shape a run records, so
that `resume` reads the file the same way.

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

import json
import re
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import Arg, Command, InputError, Text
from .items import is_attribute, looks_exported, looks_typed
from .jsontext import BOM, Scanner, data_start, next_key, skip_value
from .sources import Location, Source

FORMATS = ("auto", "json", "jsonl", "ddb-json", "ddb-export", "ion", "request-items")
ITEMS_KEYS = ("Items", "items", "Records")
PAGE_KEYS = ("LastEvaluatedKey", "NextToken")  # a page of a larger answer names the next

_PEEK = 4 << 20
_ION_MARKER = b"$ion_1_0"  # how every line of DynamoDB's Ion export begins
_ION_LIKE = re.compile(rb"\{\s*Item\s*:")  # `{Item:` unquoted: Ion text, not JSON


@dataclass(frozen=True)
class Shape:
    """How items sit in the file; stored with the run so `resume` reads the same way."""

    # "array" | "object" (detected) | "path" (named by --items-path) | "jsonl" | "ion" |
    # "item" (GetItem's answer: the one typed item under `key`) | "table" (a BatchWriteItem
    # request file's table: `requestitems`)
    kind: str
    key: str | None = None  # for "object" and "path": the dotted keys down to the items array

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}" if self.key else self.kind

    @classmethod
    def parse(cls, text: str) -> Shape:
        """Read back `str(shape)`, with or without the codec that `Dump.describe` adds."""
        kind, _, key = text.partition("+")[0].partition(":")
        return cls(kind, key or None)


def detect_shape(path: Path, fmt: str = "auto") -> Shape:
    """Decide how items sit in `path`, refusing to guess between two readings."""
    return detect(path, fmt)[0]


def detect(
    path: Path, fmt: str, source: Source | None = None
) -> tuple[Shape, str | None, tuple[Shape, ...]]:
    """The shape; for a file that is one JSON object on one line (which reads both as
    a wrapper of items and as one JSON Lines item) a line saying which reading was taken,
    and the other readings, to try when the items of the one taken lack the table's key;
    for a page of a paginated answer, a line saying so. `source`, when given, is read from
    its start and left there, for the items."""
    with nullcontext(source) if source else Source(path) as f:
        head = f.read(_PEEK)
        whole = len(f.read(1)) == 0  # the head is the whole (decompressed) file
        f.seek(0)
    others: list[Shape] = []  # filled where a one-line object's reading is chosen
    shape, note = _detect(path, fmt, head, whole, others)
    if shape.kind == "object" and whole:
        page = _one_page(path, head[3:] if head.startswith(BOM) else head)
        if page:
            note = page if note is None else note + "; " + page
    return shape, note, tuple(others)


def describe_reading(shape: Shape) -> Text:
    """A reading in words, with how to ask for it."""
    if shape.kind == "jsonl":
        return Text("the line as one item (", Arg("format", "jsonl"), ")")
    return Text(f"the array under {shape.key!r} (", Arg("items_path", shape.key), ")")


def _one_typed_item(obj: Any) -> bool:
    """GetItem's answer: `{"Item": {...DynamoDB JSON...}}`, perhaps with what it says
    beside it about the request."""
    return (
        isinstance(obj, dict)
        and looks_typed(obj.get("Item"))
        and set(obj) <= {"Item", "ConsumedCapacity", "ResponseMetadata"}
    )


def _one_page(path: Path, body: bytes) -> str | None:
    """A line saying that the wrapper is one page of a paginated answer (it names where
    the next page begins), so the rest of the table is not in it."""
    obj = _loads_or_none(body)
    if not isinstance(obj, dict):
        return None
    marker = next((k for k in PAGE_KEYS if obj.get(k)), None)
    if marker is None:
        return None
    return (
        f"{_short(path)} holds one page of a scan or query (it has {marker}): its items are "
        "imported, but the rest of the table is not in this file"
    )


def _detect(
    path: Path, fmt: str, head: bytes, whole: bool, others: list[Shape]
) -> tuple[Shape, str | None]:
    body = head[3:] if head.startswith(BOM) else head
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
        # `{` alone on the first line: one object written over several, as pretty-printers
        # (json.dumps(indent=), jq, the aws cli) write it; no line of it is an item.
        spread = first == b"{" and stripped.partition(b"\n")[0].strip() == b"{"
        if first == b"[" or spread:
            what = "one JSON object over several lines" if spread else "a JSON array"
            raise InputError(
                Text(f"{path} is {what}, not JSON Lines as ", Arg("format", fmt), " reads"),
                Text(
                    "use ",
                    Arg("format", "ddb-json" if fmt == "ddb-export" else "json"),
                    " (or auto)",
                ),
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
            keys = _walk_keys(Scanner(f, start, path), nested)
            return _one_object(path, keys, nested, others)
    obj = _loads_or_none(line)
    if not isinstance(obj, dict):  # an object written over several lines: a wrapper
        if whole and fmt in ("auto", "ddb-json") and _one_typed_item(_loads_or_none(body)):
            return Shape("item", "Item"), (
                f"{_short(path)} is one item in DynamoDB JSON under 'Item', as "
                "`aws dynamodb get-item` writes it: reading it as that one item"
            )
        return Shape("object", _find_items_key(path)), None
    if rest.strip() or not whole:  # one object per line
        if fmt == "json":
            raise InputError(
                Text(
                    f"{path} holds one object per line (JSON Lines), not the one JSON document ",
                    Arg("format", "json"),
                    " reads",
                ),
                Text("use ", _format_for(obj, "jsonl")),
            )
        return Shape("jsonl"), None
    if fmt == "json":
        return Shape("object", _find_items_key(path, one_line=True)), None
    for k, v in obj.items():
        _arrays_within(v, k, nested)
    keys = ((k, _is_object_array(k, v)) for k, v in obj.items())
    return _one_object(path, keys, nested, others)


def _one_object(
    path: Path,
    keys: Iterator[tuple[str, bool]],
    nested: list[str] | None = None,
    found: list[Shape] | None = None,
) -> tuple[Shape, str | None]:
    """Read a file that is one JSON object on one line as a wrapper exactly when its items
    sit where a wrapper's do: an array of objects under Items, items or Records, or under
    its only key. Otherwise the line is one JSON Lines item, and an array of objects beside
    its other attributes is one of its attributes.

    `keys` yields each top-level key with whether its value is an array of objects; it is
    consumed only as far as needed, as walking a one-line wrapper costs a read of it.
    `nested`: arrays of objects deeper down (as --items-path names them), for the note;
    `found` gets the readings not taken."""
    names: list[str] = []
    arrays: list[str] = []

    def others(but: str | None) -> None:
        """The readings not taken, into `found`: the line as one item (when the items
        under `but` are read instead) and every other array of objects seen."""
        if found is not None:
            found.extend([Shape("jsonl")] if but else [])
            found.extend(Shape("path", k) for k in [*arrays, *(nested or [])] if k != but)

    for key, objects in keys:
        if objects and key in ITEMS_KEYS:
            others(key)
            return _wrapper(path, key)
        names.append(key)
        if objects:
            arrays.append(key)
    if len(names) == 1 and arrays:
        others(arrays[0])
        return _wrapper(path, arrays[0])
    named = [*arrays, *(nested or [])]
    others(None)
    if not named:
        return Shape("jsonl"), None
    return Shape("jsonl"), Text(
        f"{_short(path)} is one JSON object on one line: reading it as one item; it holds an "
        f"array of objects under {named[0]!r} (",
        Arg("items_path", named[0]),
        " reads that array's objects as the items instead)",
    )


def _short(path: Path | Location) -> str:
    """A dump's name in a note: a file's own name, `standard input`, an S3 object's key."""
    return Path(str(path)).name


def _wrapper(path: Path, key: str) -> tuple[Shape, str]:
    return Shape("object", key), Text(
        f"{_short(path)} is one JSON object on one line: reading the items under {key!r} (",
        Arg("format", "jsonl"),
        " reads the line as one item instead)",
    )


def _walk_keys(t: Scanner, nested: list[str]) -> Iterator[tuple[str, bool]]:
    """The keys of the object at `t`, each with whether its value is an array of objects,
    found by walking: arrays are streamed through, never held whole. An items key holding
    an array decides the matter at its '[' and ends the walk. Adds to `nested` the arrays
    of objects inside the other values."""
    t.expect("{", "'{'")
    first = True
    while (key := next_key(t, first)) is not None:
        first = False
        if t.peek() != "[":
            _arrays_within(t.value(), key, nested)
            yield key, False
        elif key in ITEMS_KEYS and t.peek(1) in ("{", "]"):
            yield key, True
            return
        else:
            yield key, skip_value(t)


def _format_for(value: Any, plain: str) -> Text:
    """The format that reads items like `value`, laid out as `plain` reads."""
    if looks_exported(value) and plain == "jsonl":
        return Text(Arg("format", "ddb-export"))
    if looks_typed(value):
        return Text(Arg("format", "ddb-json"))
    return Text(Arg("format", plain), " (or auto)")


def _ion_shape(path: Path, fmt: str, text: bytes, at: int) -> Shape | None:
    """Ion text: named by `--format ion`, or found by the version marker that begins every
    line of an Ion export. None: read the file as JSON."""
    if fmt == "ion":
        return Shape("ion")
    if text.startswith(_ION_MARKER):
        if fmt == "auto":
            return Shape("ion")
        raise InputError(
            Text(
                f"{path} is Ion text (it begins with $ion_1_0), not the JSON ",
                Arg("format", fmt),
                " reads",
            ),
            Text("use ", Arg("format", "ion"), " (or auto)"),
            offset=at,
        )
    if _ION_LIKE.match(text):
        raise InputError(
            f"{path} starts with {{Item: (a name without quotes): Ion text, not JSON",
            Text("for a DynamoDB export in Ion format, use ", Arg("format", "ion")),
            offset=at,
        )
    return None


def items_as(fmt: str) -> str:
    """What the elements of a dump in format `fmt` are: plain JSON, or DynamoDB's own."""
    return fmt if fmt in ("ddb-json", "ddb-export", "ion", "request-items") else "json"


def check_ion(path: Path, first_line: bytes) -> None:
    """`--format ion` on JSON Lines: JSON is also Ion text, but an export's typed JSON read
    as Ion would import `{"S": "text"}` maps, not strings. Refused on the first line."""
    if isinstance(_loads_or_none(first_line), dict):
        raise InputError(
            f"{path}: its first line is JSON, not a line of DynamoDB's Ion export "
            "($ion_1_0 {Item:{...}})",
            Text(
                "for a DynamoDB JSON export use ",
                Arg("format", "ddb-export"),
                "; for JSON Lines, jsonl",
            ),
        )


def check_typing(path: Path, fmt: str, value: Any, shape: Shape) -> None:
    """Plain or DynamoDB JSON, judged on the first item: `auto` never guesses typed JSON,
    and a named typed format must hold it (else every item would be dead-lettered)."""
    typed, exported = looks_typed(value), looks_exported(value)
    plain = "jsonl" if shape.kind == "jsonl" else "json"
    if fmt == "auto" and (typed or exported):
        raise InputError(
            f"{path}: its items read both as plain JSON and as DynamoDB's own JSON "
            '(attributes like {"S": "text"})',
            Text(
                "say which with ",
                Arg("format", "ddb-json" if typed else "ddb-export"),
                " or ",
                Arg("format", plain),
            ),
        )
    if (fmt == "ddb-json" and not typed) or (fmt == "ddb-export" and not exported):
        what = (
            'DynamoDB JSON (attributes like {"S": "text"})'
            if fmt == "ddb-json"
            else 'an export line ({"Item": {...DynamoDB JSON...}})'
        )
        raise InputError(
            Text(f"{path}: its first item is not {what}, as ", Arg("format", fmt), " reads"),
            Text(
                "use ", _format_for(value, plain), ", or check the file with ", Command("validate")
            ),
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
        t = Scanner(f, data_start(f), path)
        t.expect("{", "'{'")
        first = True
        while (key := next_key(t, first)) is not None:
            first = False
            if t.peek() == "[":
                head = t.peek(1)
                if head == "{" or (head == "]" and key in ITEMS_KEYS):
                    return key
                skip_value(t)
            else:
                value = t.value()
                if key == "Table" and isinstance(value, dict) and "KeySchema" in value:
                    raise InputError(
                        f"{path} describes a table (DescribeTable's answer, as a dynamodump "
                        "backup's schema.json holds it): it holds no items",
                        Text("import the backup's table folder: ",
                             Command("start", (str(Path(str(path)).parent),))),
                    )  # fmt: skip
                _arrays_within(value, key, nested)
    if nested:
        others = f" (or {', '.join(nested[1:])})" if nested[1:] else ""
        hint = Text("name the array to import with ", Arg("items_path", nested[0]), others)
    elif one_line:
        hint = Text("use ", Arg("format", "jsonl"), " (or auto) to read its line as one item")
    else:
        hint = (
            "the items must sit in an array under 'Items', 'items', 'Records' or another key "
            "of the object, or be one object per line (JSON Lines)"
        )
    raise InputError(f"{path}: the top-level object holds no array of objects to import", hint)


def _typed(value: dict[str, Any]) -> bool:
    """An item in DynamoDB JSON, or one of its attribute values: what is inside is the
    item's, not an array of items."""
    return looks_typed(value) or (len(value) == 1 and is_attribute(value))


def _arrays_within(value: Any, path: str, found: list[str], depth: int = 3) -> None:
    """Add the dotted paths of the arrays of objects inside `value` (a few levels down)."""
    if not isinstance(value, dict) or not depth or len(found) >= 3 or _typed(value):
        return
    for key, v in value.items():
        if "." in key:
            continue  # --items-path could not name it
        if isinstance(v, list) and v and isinstance(v[0], dict):
            found.append(f"{path}.{key}")
        else:
            _arrays_within(v, f"{path}.{key}", found, depth - 1)
