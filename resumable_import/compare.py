"""Two items compared as DynamoDB compares them: the attribute names that differ.

A dump says `1.5` where the table may hold `1.50`: DynamoDB takes both for one number, so
numbers are equal by value (`Decimal`, every digit kept). Sets have no order (a number set
by value, a binary set by bytes); binary is its bytes, whether as base64 text (DynamoDB
JSON) or as `bytes` (botocore's answer). Maps and lists are compared all the way down, and
an empty string is a value like any other.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson


def differing_items(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """`differing`, answered at once for the usual pair: the same JSON, attribute for
    attribute (their order aside), is the same item; anything else is compared value by
    value. (JSON alike down to the type: `1` and `true`, equal to Python, are not.)"""
    try:
        if orjson.dumps(expected, option=_SORTED) == orjson.dumps(actual, option=_SORTED):
            return []
    except TypeError:  # bytes, from botocore's answers: compared below
        pass
    return differing(expected, actual)


_SORTED = orjson.OPT_SORT_KEYS


def differing(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """The names of the attributes that differ between two attribute maps (one held by
    only one of them included), sorted; empty when the items are the same."""
    names = set(expected) | set(actual)
    return sorted(
        n for n in names
        if n not in expected or n not in actual or not same(expected[n], actual[n])
    )  # fmt: skip


def same(a: Any, b: Any) -> bool:
    """Whether two attribute values (`{"N": "1.5"}`, ...) are one value to DynamoDB."""
    try:
        ((kind, x),) = a.items()
        ((other, y),) = b.items()
    except (AttributeError, ValueError):
        return False
    if kind != other:
        return False
    try:
        if kind == "N":
            return _number(x) == _number(y)
        if kind == "B":
            return _bytes(x) == _bytes(y)
        if kind == "SS":
            return set(x) == set(y)
        if kind == "NS":
            return {_number(v) for v in x} == {_number(v) for v in y}
        if kind == "BS":
            return {_bytes(v) for v in x} == {_bytes(v) for v in y}
        if kind == "L":
            return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y, strict=True))
        if kind == "M":
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if kind == "BOOL":
            return type(x) is bool and type(y) is bool and x == y
        if kind == "NULL":
            return True
        return type(x) is type(y) and x == y  # S, and anything else as it is
    except (TypeError, ValueError, AttributeError, InvalidOperation, binascii.Error):
        return False


def _number(value: Any) -> Decimal:
    return Decimal(value) if isinstance(value, str | int | Decimal) else Decimal(str(value))


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return base64.b64decode(value, validate=True)
