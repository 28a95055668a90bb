"""Turn one element of a dump into the item to send, and refuse it early when DynamoDB would.

A refused item costs a round trip and, inside a batch, a split of that batch to find it;
checked here, it goes straight to the dead letters with its reason and the rest of its
batch is written. `rimport validate` runs the very same checks, so a clean report means
`start` will refuse nothing on these grounds.

The checks are DynamoDB's documented limits, confirmed against DynamoDB Local: key
attributes present, of the table's type and not empty; at most 400 KB as DynamoDB counts
size; at most 32 levels of nesting; numbers of at most 38 significant digits within
1E-130 .. 9.99E+125; sets neither empty nor repeating a member.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from .items import CONVERTERS, Item, ItemError, Key, KeySpec, item_size, write_units

MAX_ITEM_BYTES = 400 * 1024
# Measured on any element of plain JSON: its size as DynamoDB counts it is less than 1.5
# times the bytes of its text (a list of one-digit numbers comes closest). An element whose
# text spans under half the limit cannot be too large, so its size is not computed at all.
_SPAN_SAFE = MAX_ITEM_BYTES // 2

_dumps = orjson.dumps
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {"S": (str,), "N": (int, Decimal), "B": ()}


class Prepare:
    """Callable: (element of the dump, bytes its text spans at most) -> (the item as the
    JSON that goes in the request, its key, its write units if `units` else 0).

    Raises ItemError, whose `code` names the kind of problem, when the element cannot be
    written as it is. The item is serialized here, once, because serializing is also the
    last check: a string holding a lone surrogate (`"\\ud800"`, which JSON allows and
    Unicode does not) cannot be sent.
    """

    def __init__(
        self, keys: tuple[KeySpec, ...], items_as: str = "json", *, units: bool = False
    ) -> None:
        self.keys = keys
        self._units = units
        self._convert = _converter(items_as)
        self._typed = items_as != "json"
        first = keys[0]
        self._single = (first.name, _PLAIN_TYPES[first.type]) if len(keys) == 1 else None

    def __call__(self, value: Any, span: int) -> tuple[bytes, Key, int]:
        item = self._convert(value)
        if self._typed:
            key = self._typed_key(item)
            size = item_size(item)  # also checks nesting, numbers and sets
        else:
            key = self._plain_key(value)
            size = item_size(item) if span > _SPAN_SAFE else 0
        if size > MAX_ITEM_BYTES:
            raise ItemError(
                "ItemTooLarge",
                f"the item is {size:,} bytes as DynamoDB counts them; the limit is 409,600",
            )
        try:
            body = _dumps(item)
        except orjson.JSONEncodeError:
            raise ItemError(
                "BadString",
                "a string holds a lone surrogate escape (such as \\ud800), which is not "
                "Unicode text; DynamoDB stores only valid UTF-8",
            ) from None
        return body, key, write_units(item, size) if self._units else 0

    def _plain_key(self, value: dict[str, Any]) -> Key:
        if self._single:  # the common case, in a few C-level operations
            name, types = self._single
            k = value.get(name)
            if type(k) in types and k != "":
                return (k,)
        key = []
        for spec in self.keys:
            k = value.get(spec.name)
            if type(k) not in _PLAIN_TYPES[spec.type]:
                if spec.name not in value:
                    raise _missing(spec)
                if spec.type == "B":
                    raise ItemError(
                        "KeyType",
                        f"key attribute {spec.name!r} must be binary, which plain JSON cannot "
                        "hold; write the dump as DynamoDB JSON (--format ddb-json)",
                    )
                raise _wrong_type(spec, _json_kind(k))
            if k == "":
                raise _empty(spec)
            key.append(k)
        return tuple(key)

    def _typed_key(self, item: Item) -> Key:
        key = []
        for spec in self.keys:
            attribute = item.get(spec.name)
            if attribute is None:
                raise _missing(spec)
            ((kind, v),) = attribute.items()
            if kind != spec.type:
                raise _wrong_type(spec, kind)
            if not v:
                raise _empty(spec)
            key.append((kind, Decimal(v) if kind == "N" else v))
        return tuple(key)


def _converter(items_as: str) -> Callable[[Any], Item]:
    if items_as == "ion":  # imported only for Ion: amazon-ion is an optional package
        from .ion import ion_item

        return ion_item
    return CONVERTERS[items_as]


def _missing(spec: KeySpec) -> ItemError:
    return ItemError("MissingKey", f"key attribute {spec.name!r} is missing")


def _wrong_type(spec: KeySpec, found: str) -> ItemError:
    return ItemError(
        "KeyType", f"key attribute {spec.name!r} is {found}; the table's key is of type {spec.type}"
    )


def _empty(spec: KeySpec) -> ItemError:
    return ItemError("EmptyKey", f"key attribute {spec.name!r} is empty; DynamoDB keys cannot be")


def _json_kind(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", dict: "an object", list: "an array"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
