"""An item's primary key, in one form that is equal exactly when DynamoDB's keys are.

The key is worked out once, when an element is made ready (`checks.Prepare`), and travels
with the item: batching keeps two items of one key apart by it, the writer matches the
items DynamoDB hands back unprocessed by it, validate counts repeats by it. It must not
matter how the item arrived, as plain JSON, DynamoDB JSON, an export line, Ion, or a
transform's values: two elements with one key that reached batching in two forms would sit
in one batch or in flight at once, and the earlier one could land last.

So each part is the value DynamoDB compares: a string as `str` (equal code points, equal
UTF-8 bytes), binary as `bytes`, a number by its value (`int` or `Decimal`, which Python
compares and hashes alike: `1`, `Decimal("1.0")` and `Decimal("1E0")` are one key).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import UsageError

KeyPart = str | int | Decimal | bytes
Key = tuple[KeyPart, ...]

KEY_TYPES = ("S", "N", "B")


@dataclass(frozen=True)
class KeySpec:
    """One key attribute of a table: its name and type (S, N or B)."""

    name: str
    type: str

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        name, _, type_ = text.rpartition(":")
        if not name or type_ not in KEY_TYPES:
            raise UsageError(
                f"{text!r} is not a key definition", "write it as NAME:S, NAME:N or NAME:B"
            )
        return cls(name, type_)


def part_of_attribute(kind: str, value: Any) -> KeyPart:
    """The key part of an attribute value `{kind: value}`, as DynamoDB JSON holds it
    (numbers as text, binary as base64) or as boto3 does (binary as bytes).

    Raises ValueError (or TypeError) for what is no key value at all."""
    if kind == "S":
        if type(value) is not str:
            raise TypeError("not a string")
        return value
    if kind == "N":
        try:
            number = Decimal(value)
        except (InvalidOperation, TypeError):
            raise ValueError("not a number") from None
        if not number.is_finite():
            raise ValueError("not a finite number")
        return number
    if kind == "B":
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        try:
            return base64.b64decode(value)
        except (binascii.Error, TypeError):
            raise ValueError("not base64") from None
    raise ValueError(f"{kind} is not a key type")


def part_of_value(value: Any) -> KeyPart:
    """The key part of a plain Python value: what a transform or plain JSON holds.

    A float is the number its shortest repr writes, as it is sent (`0.1`, not the binary
    fraction nearest it); bytes-like values are bytes."""
    t = type(value)
    if t is str or t is int or t is Decimal or t is bytes:
        return value  # type: ignore[no-any-return]
    if t is float:
        return Decimal(repr(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"{t.__name__} is not a key value")


def key_of(item: Mapping[str, Any], key_names: tuple[str, ...]) -> Key | None:
    """The key of an item in attribute values (one DynamoDB handed back, a dead letter's);
    None when it has no usable key."""
    try:
        parts = []
        for name in key_names:
            ((kind, value),) = item[name].items()
            parts.append(part_of_attribute(kind, value))
        return tuple(parts)
    except (KeyError, AttributeError, ValueError, TypeError):
        return None


def key_of_request(request: Mapping[str, Any], key_names: tuple[str, ...]) -> Key | None:
    """The key of a write request DynamoDB handed back unprocessed: a put's item's, or a
    delete's `Key`'s; None when it has none."""
    if put := request.get("PutRequest"):
        return key_of(put.get("Item") or {}, key_names)
    if delete := request.get("DeleteRequest"):
        return key_of(delete.get("Key") or {}, key_names)
    return None


def canonical(key: Key) -> bytes:
    """The key as bytes that are equal exactly when the keys are, the same in every process
    (Python's own hash of a string changes from one to the next, and hashes the ints -1
    and -2 alike): for counting and storing keys by digest."""
    out = bytearray()
    for part in key:
        if type(part) is str:
            data, tag = part.encode("utf-8", "surrogatepass"), b"S"
        elif type(part) is bytes:
            data, tag = part, b"B"
        else:
            data, tag = _number_text(part).encode(), b"N"
        out += tag + len(data).to_bytes(4, "big") + data
    return bytes(out)


def _number_text(number: KeyPart) -> str:
    """One text per value: `1`, `1.0`, `1E0` and `10E-1` are all `1`."""
    d = Decimal(number)  # type: ignore[arg-type]
    if not d:
        return "0"
    sign, digits, exponent = d.as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    exponent = int(exponent) + len(digits) - len(text)
    return ("-" if sign else "") + text + "E" + str(exponent)
