"""Python values <-> DynamoDB attribute values: the one converter pair.

`to_attributes` makes the attribute map of plain JSON (every item of a JSON dump), of what
a transform returns (floats, bytes, sets, any mapping or sequence too) and of a value kept
in the dead letters; `from_attributes` gives back Python values (numbers as Decimal,
binary as bytes, sets as sets) to a transform over a typed dump and to the dead-letter
export. Ion has a reader of its own (`ion.py`): its sets are lists that may repeat a
member, which a Python set would merge without a word where DynamoDB refuses the item.

JSON's types are tested first and converted inline, since this runs for every attribute
of every item (a call per value was half the cost). With `limits`, the same walk enforces
what DynamoDB refuses in a value (nesting, numbers, empty sets), so an item that converts
is one DynamoDB stores, but for its size and key, which `checks.Prepare` looks at.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .items import (
    MAX_DEPTH,
    MAX_DIGITS,
    AttributeValue,
    IonLine,
    Item,
    ItemError,
    check_number,
    not_an_object,
    plain_json,
    too_deep,
)


class Unsupported(Exception):
    """A value DynamoDB has no type for (a datetime, a set of mixed kinds), or an attribute
    name that is not a string; `path` says where in the item (`a.b[0]`)."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(what)
        self.path = path
        self.what = what


def to_item(value: Any) -> Item:
    """The item to send for one element of a plain JSON dump."""
    if type(value) is not dict:
        raise not_an_object(value)
    try:
        return _json_map(value, 1)
    except (ItemError, _NotJSON):  # `to_attributes` says what and where
        return to_attributes(value)


class _NotJSON(Exception):
    """A value the decoder of a JSON dump does not make: `to_attributes` takes it."""


def _json_map(d: dict[str, Any], depth: int) -> dict[str, AttributeValue]:
    """`to_attributes` for what a JSON decoder makes, with limits, and nothing else: the
    types tested in the order a dump holds them most, and no keyword to pass down (10% of
    the conversion). Anything else, and any limit broken, raises, and `to_item` converts
    the item again the general way, which says what is wrong where."""
    if depth > MAX_DEPTH:
        raise too_deep()
    out: dict[str, AttributeValue] = {}
    for k, v in d.items():
        t = type(v)
        if type(k) is not str:  # what a transform may return
            raise _NotJSON
        if t is str:
            out[k] = {"S": v}
        elif t is int:
            s = str(v)
            if len(s) > MAX_DIGITS:
                check_number(s)
            out[k] = {"N": s}
        elif t is dict:
            out[k] = {"M": _json_map(v, depth + 1)}
        elif t is list:
            out[k] = {"L": _json_list(v, depth + 1)}
        elif t is Decimal:
            s = str(v)
            if len(s) > MAX_DIGITS or "E" in s:
                check_number(s)
            out[k] = {"N": s}
        elif t is bool:
            out[k] = {"BOOL": v}
        elif v is None:
            out[k] = {"NULL": True}
        else:
            raise _NotJSON
    return out


def _json_list(values: list[Any], depth: int) -> list[AttributeValue]:
    if depth > MAX_DEPTH:
        raise too_deep()
    out: list[AttributeValue] = []
    add = out.append
    for v in values:
        t = type(v)
        if t is str:
            add({"S": v})
        elif t is int:
            s = str(v)
            if len(s) > MAX_DIGITS:
                check_number(s)
            add({"N": s})
        elif t is dict:
            add({"M": _json_map(v, depth + 1)})
        elif t is list:
            add({"L": _json_list(v, depth + 1)})
        elif t is Decimal:
            s = str(v)
            if len(s) > MAX_DIGITS or "E" in s:
                check_number(s)
            add({"N": s})
        elif t is bool:
            add({"BOOL": v})
        elif v is None:
            add({"NULL": True})
        else:
            raise _NotJSON
    return out


def kept(value: Any, error: ItemError) -> str:
    """How a value rimport refused is kept in the dead letters, so the data is not lost
    with the item: as the attribute value it would have been (limits unchecked), or, for
    one nested too deep to convert, `{"$json": "<its JSON text>"}`; a line of an Ion
    export, `{"$ion": "<the line>"}`."""
    if type(value) is IonLine:
        return json.dumps({"$ion": value.line.decode("utf-8", "replace").strip()})
    if error.code == "TooDeep":
        return json.dumps({"$json": plain_json(value)})
    return json.dumps(to_attribute(value, limits=False))


def to_attributes(
    d: Mapping[Any, Any], depth: int = 1, *, limits: bool = True
) -> dict[str, AttributeValue]:
    """The attribute map of a mapping; `depth` counts the item itself as level 1."""
    if limits and depth > MAX_DEPTH:
        raise too_deep()
    out: dict[str, AttributeValue] = {}
    k: Any = None
    try:  # costs nothing until raised: where the value stands is worked out only then
        for k, v in d.items():
            if type(k) is not str:
                raise Unsupported("", f"is named by {kind_of(k)}; attribute names are strings")
            t = type(v)
            if t is str:
                out[k] = {"S": v}
            elif t is dict:
                out[k] = {"M": to_attributes(v, depth + 1, limits=limits)}
            elif t is int or t is Decimal:
                s = str(v)
                if limits and (len(s) > MAX_DIGITS or "E" in s):  # only these can break a limit
                    check_number(s)
                out[k] = {"N": s}
            elif t is bool:
                out[k] = {"BOOL": v}
            elif t is list:
                out[k] = {"L": _list(v, depth + 1, limits)}
            elif v is None:
                out[k] = {"NULL": True}
            else:
                out[k] = to_attribute(v, depth, limits=limits)
    except Unsupported as e:
        raise Unsupported(_join(k if type(k) is str else repr(k), e.path), e.what) from None
    return out


def _list(values: list[Any], depth: int, limits: bool) -> list[AttributeValue]:
    if limits and depth > MAX_DEPTH:
        raise too_deep()
    out: list[AttributeValue] = []
    add = out.append
    try:
        for v in values:
            t = type(v)
            if t is str:
                add({"S": v})
            elif t is dict:
                add({"M": to_attributes(v, depth + 1, limits=limits)})
            elif t is int or t is Decimal:
                s = str(v)
                if limits and (len(s) > MAX_DIGITS or "E" in s):
                    check_number(s)
                add({"N": s})
            elif t is bool:
                add({"BOOL": v})
            elif t is list:
                add({"L": _list(v, depth + 1, limits)})
            elif v is None:
                add({"NULL": True})
            else:
                add(to_attribute(v, depth, limits=limits))
    except Unsupported as e:
        raise Unsupported(_join(f"[{len(out)}]", e.path), e.what) from None
    return out


def to_attribute(v: Any, depth: int = 1, *, limits: bool = True) -> AttributeValue:
    """One value as an attribute value; `depth` is that of the map or list holding it."""
    t = type(v)
    if t is str:
        return {"S": v}
    if t is bool:
        return {"BOOL": v}
    if t is int or t is Decimal or t is float:
        return {"N": _number(v, limits)}
    if v is None:
        return {"NULL": True}
    if isinstance(v, Mapping):
        return {"M": to_attributes(v, depth + 1, limits=limits)}
    if isinstance(v, list | tuple):
        return {"L": _list(list(v), depth + 1, limits)}
    if isinstance(v, bytes | bytearray | memoryview):
        return {"B": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, set | frozenset):
        return _set(v, limits)
    if isinstance(v, str):
        return {"S": str(v)}
    if isinstance(v, int | Decimal | float):
        return {"N": _number(v, limits)}
    raise Unsupported(
        "", f"is {kind_of(v)}: DynamoDB cannot store that; use str, int, Decimal, float, bool, "
        "None, bytes, dict, list or set"
    )  # fmt: skip


def _number(v: int | Decimal | float, limits: bool) -> str:
    if isinstance(v, float):  # its repr is the shortest text that reads back as it: 0.1
        s = repr(float(v))
    else:
        s = str(v) if isinstance(v, Decimal) else str(int(v))  # an IntEnum as its number
    if limits and (len(s) > MAX_DIGITS or "E" in s or "e" in s or "n" in s):  # also inf, nan
        check_number(s)
    return s


def _set(members: set[Any] | frozenset[Any], limits: bool) -> AttributeValue:
    if not members:
        if limits:
            raise ItemError("EmptySet", "an empty SS set: DynamoDB stores no empty sets")
        return {"SS": []}
    if all(isinstance(m, str) for m in members):
        return {"SS": sorted(members)}
    if all(isinstance(m, int | Decimal | float) and not isinstance(m, bool) for m in members):
        return {"NS": [_number(m, limits) for m in members]}
    if all(isinstance(m, bytes | bytearray) for m in members):
        return {"BS": [base64.b64encode(bytes(m)).decode("ascii") for m in members]}
    kinds = ", ".join(sorted({type(m).__name__ for m in members}))
    raise Unsupported(
        "", f"is a set of {kinds}: DynamoDB sets hold only strings, only numbers or only bytes"
    )


def _join(head: str, tail: str) -> str:
    """`a.b`, `a[0]`: where in the item a value sits, for a message."""
    return head + ("" if not tail else tail if tail.startswith("[") else "." + tail)


def kind_of(value: Any) -> str:
    """`a float`, `an int`: what a value is, for a message."""
    article = "an" if type(value).__name__[0] in "aeiou" else "a"
    return f"{article} {type(value).__name__}"


# -- back to Python values -----------------------------------------------------------------

NOT_PLAIN_JSON = "NotPlainJSON"  # the code for binary and sets, where plain JSON was asked for


def from_attributes(
    item: Mapping[str, Any], depth: int = 1, *, plain: bool = False, max_depth: float = MAX_DEPTH
) -> dict[str, Any]:
    """An attribute map as a dict of Python values. With `plain`, binary and sets raise
    ItemError(NOT_PLAIN_JSON): JSON has no such values. Raises ItemError for what is not an
    attribute value (NotDynamoDBJSON, BadNumber, BadBinary) or nests past `max_depth`."""
    return {k: from_attribute(v, depth + 1, plain=plain, max_depth=max_depth)
            for k, v in item.items()}  # fmt: skip


def from_attribute(
    value: Any, depth: int = 2, *, plain: bool = False, max_depth: float = MAX_DEPTH
) -> Any:
    """One attribute value as the Python value it stands for (see `from_attributes`)."""
    if depth > max_depth:
        raise too_deep()
    if type(value) is not dict or len(value) != 1:
        raise ItemError("NotDynamoDBJSON", f"{str(value)[:40]} is not a DynamoDB attribute value")
    ((kind, v),) = value.items()
    if kind == "S" and type(v) is str:
        return v
    if kind == "N":
        return _decimal(v)
    if kind == "M" and type(v) is dict:
        return {k: from_attribute(x, depth + 1, plain=plain, max_depth=max_depth)
                for k, x in v.items()}  # fmt: skip
    if kind == "L" and type(v) is list:
        return [from_attribute(x, depth + 1, plain=plain, max_depth=max_depth) for x in v]
    if kind == "BOOL" and type(v) is bool:
        return v
    if kind == "NULL":
        return None
    if kind in ("B", "SS", "NS", "BS") and plain:
        raise ItemError(NOT_PLAIN_JSON, f"a {kind} value, which plain JSON cannot hold")
    try:
        if kind == "B":
            return _bytes(v)
        if kind == "SS" and all(type(x) is str for x in v):
            return set(v)
        if kind == "NS":
            return {_decimal(x) for x in v}
        if kind == "BS":
            return {_bytes(x) for x in v}
    except TypeError:
        pass
    raise ItemError("NotDynamoDBJSON", f'{{"{kind}": …}} is not a DynamoDB attribute value')


def _decimal(text: Any) -> Decimal:
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        raise ItemError("BadNumber", f"{str(text)[:40]!r} is not a number") from None


def _bytes(text: Any) -> bytes:
    if isinstance(text, bytes):  # as boto3 gives it
        return text
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ItemError("BadBinary", f"{str(text)[:40]!r} is not base64") from None
