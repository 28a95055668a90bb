"""Plain JSON values -> DynamoDB attribute values, and the primary key of an item.

Written by hand rather than with boto3's TypeSerializer: a dump only ever holds JSON types,
and this conversion runs once per attribute of every item, so it is on the hot path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
Key = tuple[Any, ...]


class ItemError(Exception):
    """This one item cannot be written as it is; it goes to the dead letters, not the table."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Scalars are converted inline in the two loops below rather than by a call per value: this
# runs for every attribute of every item, and the calls alone were half of its cost.


def _map(d: dict[str, Any]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for k, v in d.items():
        t = type(v)
        if t is str:
            out[k] = {"S": v}
        elif t is dict:
            out[k] = {"M": _map(v)}
        elif t is int or t is Decimal:
            out[k] = {"N": str(v)}
        elif t is bool:
            out[k] = {"BOOL": v}
        elif t is list:
            out[k] = {"L": _list(v)}
        elif v is None:
            out[k] = {"NULL": True}
        else:
            raise TypeError(f"not a JSON value: {v!r}")
    return out


def _list(values: list[Any]) -> list[AttributeValue]:
    out: list[AttributeValue] = []
    add = out.append
    for v in values:
        t = type(v)
        if t is str:
            add({"S": v})
        elif t is dict:
            add({"M": _map(v)})
        elif t is int or t is Decimal:
            add({"N": str(v)})
        elif t is bool:
            add({"BOOL": v})
        elif t is list:
            add({"L": _list(v)})
        elif v is None:
            add({"NULL": True})
        else:
            raise TypeError(f"not a JSON value: {v!r}")
    return out


def to_attribute(value: Any) -> AttributeValue:
    return _list([value])[0]


def to_item(value: Any) -> Item:
    """The item to send for one element of the dump."""
    if type(value) is not dict:
        kind = "null" if value is None else type(value).__name__
        raise ItemError("NotAnObject", f"the item is a JSON {kind}, not an object")
    return _map(value)


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
        kind = "null" if value is None else type(value).__name__
        raise ItemError("NotAnObject", f"the item is a JSON {kind}, not an object")
    for name, attribute in value.items():
        if not is_attribute(attribute):
            raise ItemError(
                "NotDynamoDBJSON",
                f'attribute {name!r} is not a DynamoDB attribute value such as {{"S": "text"}}',
            )
    return value


def export_item(value: Any) -> Item:
    """A line of DynamoDB's export to S3, `{"Item": {...typed...}}`: the item inside."""
    if type(value) is not dict or list(value) != ["Item"]:
        raise ItemError(
            "NotAnExportLine", 'the line is not {"Item": {...}} as DynamoDB exports write it'
        )
    return typed_item(value["Item"])


def looks_exported(value: Any) -> bool:
    return type(value) is dict and list(value) == ["Item"] and looks_typed(value["Item"])


# How the elements of a dump become items, by `--format`: plain JSON is converted;
# DynamoDB's own JSON is only checked.
CONVERTERS = {"json": to_item, "ddb-json": typed_item, "ddb-export": export_item}

_KEY_TYPES = (str, int, Decimal)


def raw_key(value: dict[str, Any], key_names: tuple[str, ...]) -> Key | None:
    """The primary key of a dump element before conversion; None if it cannot be one."""
    if len(key_names) == 1:  # the common case, without a generator per item
        k = value.get(key_names[0])
        return (k,) if type(k) in _KEY_TYPES else None
    key = tuple(value.get(name) for name in key_names)
    return key if all(type(k) in _KEY_TYPES for k in key) else None


def key_of(item: Item, key_names: tuple[str, ...]) -> Key | None:
    """The item's primary key as a hashable value; None when it has no usable key.

    Numbers compare by value, as DynamoDB compares keys: "1.50" and "1.5" are one key.
    """
    parts = []
    try:
        for name in key_names:
            ((kind, value),) = item[name].items()
            parts.append((kind, Decimal(value) if kind == "N" else value))
        return tuple(parts)
    except (KeyError, AttributeError, ValueError, TypeError, ArithmeticError):
        return None


def item_size(item: Item) -> int:
    """The item's size in bytes as DynamoDB counts it (for write units and the 400 KB limit)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def write_units(item: Item) -> int:
    """Write capacity units one put of the item consumes: one per started KB."""
    return max(1, -(-item_size(item) // 1024))


def _value_size(value: AttributeValue) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in v)
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(_number_size(x) for x in v)
    if kind == "BS":
        return sum(len(x) for x in v)
    raise ValueError(f"unknown attribute type {kind!r}")


def _number_size(text: str) -> int:
    """One byte per two significant digits, plus one."""
    digits = Decimal(text).normalize().as_tuple().digits
    return (len(digits) + 1) // 2 + 1
