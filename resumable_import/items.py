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


def to_attribute(value: Any) -> AttributeValue:
    t = type(value)
    if t is str:
        return {"S": value}
    if t is dict:
        return {"M": {k: to_attribute(v) for k, v in value.items()}}
    if t is int or t is Decimal:
        return {"N": str(value)}
    if t is bool:
        return {"BOOL": value}
    if t is list:
        return {"L": [to_attribute(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"not a JSON value: {value!r}")


def to_item(value: Any) -> Item:
    """The item to send for one element of the dump."""
    if type(value) is not dict:
        kind = "null" if value is None else type(value).__name__
        raise ItemError("NotAnObject", f"the item is a JSON {kind}, not an object")
    return {k: to_attribute(v) for k, v in value.items()}


def key_of(item: Item, key_names: tuple[str, ...]) -> Key | None:
    """The item's primary key as a hashable value; None when a key attribute is missing."""
    try:
        return tuple(next(iter(item[name].items())) for name in key_names)
    except (KeyError, AttributeError, StopIteration):
        return None
