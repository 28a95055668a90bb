"""An item: what DynamoDB refuses in one (its limits, its size), and the typed forms a dump
can hold it in (DynamoDB JSON, an export line). Plain values become items in `attributes`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


class ItemError(Exception):
    """This one item cannot be written as it is; it goes to the dead letters, not the table."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


MAX_DEPTH = 32  # levels of maps and lists, the item included (DynamoDB refuses a 33rd)
MAX_DIGITS = 38
_MAX_EXP, _MIN_EXP = 125, -130  # adjusted exponents DynamoDB stores: 1E-130 .. 9.99…E+125


def too_deep() -> ItemError:
    return ItemError("TooDeep", f"nested deeper than DynamoDB's {MAX_DEPTH} levels")


@dataclass(frozen=True, slots=True)
class Unparsed:
    """An element nested so deep (about a thousand levels) that decoding it would exhaust
    Python's recursion limit: the reader hands over its JSON text instead, and it is
    dead-lettered as TooDeep with that text, like any other element nested too deep."""

    text: str


@dataclass(frozen=True, slots=True)
class IonLine:
    """A line of an Ion export as read: amazon-ion's value, and the line itself, which is
    what a refused item is kept as (`{"$ion": "<the line>"}`): Ion has types JSON has not,
    so the line is the one record of the item that loses nothing."""

    value: Any
    line: bytes


class _Token(str):
    """Punctuation queued by `plain_json`, told apart from string values by its type."""


def plain_json(value: Any) -> str:
    """The JSON text of a plain value, however deep: json.dumps recurses, and what is
    dead-lettered as TooDeep may nest deeper than Python's recursion limit."""
    parts: list[str] = []
    work: list[Any] = [value]
    while work:
        v = work.pop()
        t = type(v)
        if t is _Token or t is Decimal or t is int:
            parts.append(str(v))
        elif t is dict:
            work.append(_Token("}"))
            pairs = list(v.items())
            for i in range(len(pairs) - 1, -1, -1):
                work.append(pairs[i][1])
                work.append(_Token(("," if i else "") + json.dumps(pairs[i][0]) + ":"))
            work.append(_Token("{"))
        elif t is list:
            work.append(_Token("]"))
            for i in range(len(v) - 1, -1, -1):
                work.append(v[i])
                if i:
                    work.append(_Token(","))
            work.append(_Token("["))
        elif t is Unparsed:
            parts.append(v.text)
        else:
            parts.append(json.dumps(v))  # str, bool, None
    return "".join(parts)


def check_number(text: str) -> Decimal:
    """The number DynamoDB would store for `text`, or ItemError if it would refuse it."""
    try:
        n = Decimal(text)
    except ArithmeticError:
        raise ItemError("BadNumber", f"{text[:40]!r} is not a number") from None
    if not n.is_finite():
        raise ItemError("BadNumber", f"{text[:40]!r} is not a number DynamoDB can store")
    significant = _significant_digits(n)
    if significant > MAX_DIGITS:
        raise ItemError(
            "BadNumber", f"{_short(text)} has {significant} significant digits; DynamoDB keeps 38"
        )
    if n and not _MIN_EXP <= n.adjusted() <= _MAX_EXP:
        raise ItemError(
            "BadNumber",
            f"{_short(text)} is outside DynamoDB's number range (magnitudes 1E-130 to 9.99…E+125)",
        )
    return n


def _significant_digits(n: Decimal) -> int:
    # Not Decimal.normalize(): it rounds to the context's 28 digits.
    return len("".join(map(str, n.as_tuple().digits)).strip("0")) or 1


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:20]}…({len(text)} chars)"


def not_an_object(value: Any) -> ItemError:
    if type(value) is Unparsed:
        return ItemError(
            "TooDeep",
            f"nested deeper than DynamoDB's {MAX_DEPTH} levels (and than Python decodes)",
        )
    kind = "null" if value is None else type(value).__name__
    return ItemError("NotAnObject", f"the item is a JSON {kind}, not an object")


TYPE_TAGS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})


def is_attribute(value: Any) -> bool:
    return type(value) is dict and len(value) == 1 and next(iter(value)) in TYPE_TAGS


def looks_typed(value: Any) -> bool:
    """True for an object every attribute of which is already a DynamoDB attribute value."""
    return type(value) is dict and bool(value) and all(map(is_attribute, value.values()))


def typed_item(value: Any) -> Item:
    """An element of a DynamoDB JSON dump: checked at the top level and sent as is, so
    numbers stay the strings they are and binary stays base64, as on the wire."""
    if type(value) is not dict:
        raise not_an_object(value)
    for name, attribute in value.items():
        if not is_attribute(attribute):
            raise ItemError(
                "NotDynamoDBJSON",
                f'attribute {name!r} is not a DynamoDB attribute value such as {{"S": "text"}}',
            )
    return value


def request_item(value: Any) -> Item:
    """An entry of a BatchWriteItem request file: a put's item, or a delete's key (what a
    key mistake is described by), in DynamoDB JSON."""
    return typed_item(request_entry(value)[1])


def request_entry(value: Any) -> tuple[str, Any]:
    """(PutRequest or DeleteRequest, the item or the key) of a request file's entry, as
    `aws dynamodb batch-write-item --request-items` takes them."""
    if type(value) is dict and len(value) == 1:
        ((kind, body),) = value.items()
        inner = "Item" if kind == "PutRequest" else "Key" if kind == "DeleteRequest" else None
        if inner and type(body) is dict and list(body) == [inner]:
            return kind, body[inner]
    raise ItemError(
        "NotAWriteRequest",
        'the entry is not {"PutRequest": {"Item": {...}}} or {"DeleteRequest": {"Key": {...}}}',
    )


def export_item(value: Any) -> Item:
    """A line of DynamoDB's export to S3, `{"Item": {...typed...}}`: the item inside."""
    if type(value) is Unparsed:
        raise not_an_object(value)
    if type(value) is not dict or list(value) != ["Item"]:
        raise ItemError(
            "NotAnExportLine", 'the line is not {"Item": {...}} as DynamoDB exports write it'
        )
    return typed_item(value["Item"])


def looks_exported(value: Any) -> bool:
    return type(value) is dict and list(value) == ["Item"] and looks_typed(value["Item"])


def item_size(item: Item) -> int:
    """The item's size in bytes as DynamoDB counts it, for write units and the 400 KB limit.

    The same walk enforces the rules a typed item can break on its own (nesting, numbers,
    empty or repeated set members), so checking a DynamoDB JSON item costs one pass.
    """
    return sum(len(name.encode()) + _value_size(value, 2) for name, value in item.items())


def write_units(item: Item, size: int = 0) -> int:
    """Write capacity units one put of the item consumes: one per started KB. `size`: the
    item's size, when the caller measured it already."""
    return max(1, -(-(size or item_size(item)) // 1024))


def _value_size(value: AttributeValue, depth: int) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return _binary_size(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("M", "L") and depth > MAX_DEPTH:
        raise too_deep()
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(x, depth + 1) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(x, depth + 1) for x in v)
    if kind not in ("SS", "NS", "BS"):
        raise ItemError("NotDynamoDBJSON", f"unknown attribute type {kind!r}")
    if not v:
        raise ItemError("EmptySet", f"an empty {kind} set: DynamoDB stores no empty sets")
    members = [check_number(x) for x in v] if kind == "NS" else v
    if len(set(members)) != len(v):
        raise ItemError("SetDuplicates", f"a {kind} set holds the same member twice")
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(_number_size(x) for x in v)
    return sum(map(_binary_size, v))


def _number_size(text: str) -> int:
    """One byte per two significant digits, plus one."""
    return (_significant_digits(check_number(text)) + 1) // 2 + 1


def _binary_size(value: str | bytes) -> int:
    """Bytes of a binary value: raw bytes from the API, base64 text in DynamoDB JSON."""
    if isinstance(value, str):
        return len(value.rstrip("=")) * 3 // 4
    return len(value)
