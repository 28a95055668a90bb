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

import copy
import itertools
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from .attributes import to_item
from .errors import SAMPLE_ITEMS, InputError, KeyMistake
from .items import (
    Item,
    ItemError,
    check_number,
    export_item,
    item_size,
    request_entry,
    request_item,
    typed_item,
    write_units,
)
from .keys import KEY_TYPES, Key, KeySpec, part_of_attribute, part_of_value

if TYPE_CHECKING:
    from .reader import Dump

MAX_ITEM_BYTES = 400 * 1024
# Measured on any element of plain JSON: its size as DynamoDB counts it is less than 1.5
# times the bytes of its text (a list of one-digit numbers comes closest). An element whose
# text spans under half the limit cannot be too large, so its size is not computed at all.
_SPAN_SAFE = MAX_ITEM_BYTES // 2

_dumps = orjson.dumps
_join = bytes.join
# What a key attribute may hold as a plain value: JSON's, and what a transform may return.
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "S": (str,), "N": (int, Decimal, float), "B": (bytes, bytearray, memoryview)
}  # fmt: skip
# Key values the fast way takes as they are: already the key's own form, and never empty
# but for "" (binary keys, from transforms only, take the slow way).
_AS_IS: dict[str, tuple[type, ...]] = {"S": (str,), "N": (int, Decimal), "B": ()}
# How the elements of a dump become items, by `--format`: plain JSON is converted;
# DynamoDB's own JSON is only checked.
# A BatchWriteItem request file's entries hold DynamoDB JSON: a put's item, a delete's key.
CONVERTERS = {
    "json": to_item, "ddb-json": typed_item, "ddb-export": export_item,
    "request-items": request_item,
}  # fmt: skip


class Prepare:
    """Callable: (element of the dump, bytes its text spans at most) -> (the item as the
    JSON that goes in the request, its key, its write units if `units` else 0).

    Raises ItemError, whose `code` names the kind of problem, when the element cannot be
    written as it is. The item is serialized here, once, because serializing is also the
    last check: a string holding a lone surrogate (`"\\ud800"`, which JSON allows and
    Unicode does not) cannot be sent.
    """

    def __new__(cls, keys: tuple[KeySpec, ...], items_as: str = "json", **_: Any) -> Prepare:
        # A request file's entries are made ready by their own class, so that every caller
        # (batching, validate, the key check) takes them and plain items pay nothing for it.
        if cls is Prepare and items_as == "request-items":
            cls = PrepareRequest
        return object.__new__(cls)

    def __init__(
        self, keys: tuple[KeySpec, ...], items_as: str = "json", *, units: bool = False
    ) -> None:
        if items_as == "request-items":
            items_as = "ddb-json"  # a put's item, once out of its entry
        self.keys = keys
        self._units = units
        self._convert = converter(items_as)
        self._typed = items_as != "json"
        first = keys[0]
        self._single = (first.name, _AS_IS[first.type]) if len(keys) == 1 else None

    def __call__(self, value: Any, span: int) -> tuple[bytes, Key, int]:
        item = self._convert(value)
        if self._typed:
            key = self._typed_key(item)
            size = item_size(item)  # also checks nesting, numbers and sets
        else:
            single = self._single  # the common case inline: one key attribute, as it is
            if single is None or type(k := value.get(single[0])) not in single[1] or k == "":
                key = self._plain_key(value)
            else:
                key = (k,)
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
        # orjson hands its output back in the buffer it wrote it in, 4 KB or more whatever
        # the length, and never trims it: an item of 1 KB held 6.9 KB. A copy of the exact
        # size (0.3 µs) keeps the 8 MiB of items a run may hold in flight at 8 MiB, where
        # they took 41 MB more peak RSS behind a 10 ms endpoint.
        return _join(b"", (body, b"")), key, write_units(item, size) if self._units else 0

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
                        "hold; write the dump as DynamoDB JSON (format ddb-json)",
                    )
                raise _wrong_type(spec, _json_kind(k))
            if k == "" or (spec.type == "B" and not k):
                raise _empty(spec)
            key.append(part_of_value(k))
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
            if kind == "N":
                key.append(check_number(v))  # BadNumber, as anywhere else in the item
                continue
            try:
                key.append(part_of_attribute(kind, v))
            except (ValueError, TypeError):
                raise ItemError(
                    "KeyType", f"key attribute {spec.name!r} is not a DynamoDB {kind} value"
                ) from None
        return tuple(key)


class PrepareRequest(Prepare):
    """`Prepare` for an entry of a BatchWriteItem request file: `{"PutRequest": {"Item":
    ...}}` or `{"DeleteRequest": {"Key": ...}}`, in DynamoDB JSON. What goes in the request
    is the whole entry, so the writer sends a delete as a delete; its key is the one the
    item or the deleted key has, so batching keeps a put and a delete of one key apart as
    it keeps two puts."""

    def __call__(self, value: Any, span: int) -> tuple[bytes, Key, int]:
        kind, inner = request_entry(value)
        if kind == "PutRequest":
            body, key, wcu = super().__call__(inner, span)
            return b'{"PutRequest":{"Item":' + body + b"}}", key, wcu
        key_map = typed_item(inner)
        key = self._typed_key(key_map)
        if len(key_map) != len(self.keys):
            names = {k.name for k in self.keys}
            others = ", ".join(repr(n) for n in key_map if n not in names)
            raise ItemError(
                "DeleteKey",
                f"the key of a DeleteRequest holds {others} besides the table's key attributes; "
                "DynamoDB takes only those",
            )
        return b'{"DeleteRequest":{"Key":' + _dumps(key_map) + b"}}", key, 1 if self._units else 0


def converter(items_as: str) -> Callable[[Any], Item]:
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


# -- one mistake for all items ----------------------------------------------------------

_KEY_CODES = ("KeyType", "MissingKey")
_FITS = {str: "S", int: "N", Decimal: "N"}


def key_mistake(
    values: Iterable[Any],
    keys: tuple[KeySpec, ...],
    items_as: str,
    check: Callable[[Any], object] | None = None,
) -> KeyMistake | None:
    """The key mistake that every one of `values` (the first items) shares, if any.

    One item with another error, a good item, or a different key error is enough to say
    no: a good dump with a few bad items is imported, those few dead-lettered. `check`
    (default: `Prepare`'s) raises ItemError for an item; a value that is an ItemError
    already stands for an item refused as a whole (by a transform).
    """
    prepare = Prepare(keys, items_as)
    judge = check or (lambda value: prepare(value, 0))
    first: Any = None
    message = None
    count = 0
    for value in values:
        try:
            if isinstance(value, ItemError):
                raise value
            judge(value)
            return None
        except ItemError as e:
            if e.code not in _KEY_CODES or message not in (None, e.message):
                return None
            if message is None:
                first, message = value, e.message
        count += 1
    if not count:
        return None
    return _describe(first, keys, items_as, count)


def key_mistake_in(
    dump: Dump,
    keys: tuple[KeySpec, ...],
    apply: Callable[[Any], Iterable[Any]] | None = None,
    check: Callable[[Any], object] | None = None,
) -> KeyMistake | None:
    """`key_mistake` of the dump's first SAMPLE_ITEMS items. A dump broken among them is
    judged on the items before the break; reading it in full reports the break. With a
    transform (`apply`, and `check` for what it makes), judged on the items it makes: the
    key it builds is the one the table needs."""

    def values() -> Iterable[Any]:
        try:
            sample = dump.head(SAMPLE_ITEMS)
        except InputError:  # the first item is broken: reading the dump says so
            sample = []
        for raw in sample:
            if apply is None:
                yield raw.value
                continue
            try:  # a copy: a transform that changes its argument must see it whole again
                yield from apply(copy.deepcopy(raw.value))
            except ItemError as e:
                yield e

    return key_mistake(values(), keys, "json" if apply else dump.items_as, check)


def _describe(value: Any, keys: tuple[KeySpec, ...], items_as: str, count: int) -> KeyMistake:
    """What the first item holds at the first key attribute it fails."""
    typed = items_as != "json"
    item = converter(items_as)(value) if typed else value
    for spec in keys:
        if spec.name not in item:
            others = tuple(itertools.islice(item, 5))
            return KeyMistake(count, keys, spec.name, "missing", None, others)
        v = item[spec.name]
        if typed:
            ((kind, _),) = v.items()
            found, fit = f"of type {kind}", kind if kind in KEY_TYPES else None
        else:
            found, fit = _json_kind(v), _FITS.get(type(v))
        if fit != spec.type:
            fitting = tuple(KeySpec(k.name, fit) if k == spec else k for k in keys) if fit else None
            return KeyMistake(count, keys, spec.name, found, fitting, ())
    raise AssertionError("a key error on an item whose key fits")  # Prepare said otherwise
