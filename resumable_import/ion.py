"""Lines of an Amazon Ion export -> DynamoDB attribute maps.

DynamoDB's export to S3 in the ION format writes text Ion, one item a line, each line
`$ion_1_0 {Item:{...}}`: strings are Ion strings, numbers Ion decimals (`103.`, `6d2`),
binary Ion blobs (`{{aGk=}}`), lists and maps Ion lists and structs, and sets Ion lists
annotated `$dynamodb_SS::`, `$dynamodb_NS::` or `$dynamodb_BS::`. Each line is parsed on
its own, so a checkpoint is the byte offset of a line, as for JSON Lines.

Parsing is amazon-ion's (its C extension when the wheel has it), asked for plain Python
values wherever that loses nothing: decimals come back as Decimal and integers as int,
so every digit is kept, and only what plain Python cannot tell apart stays wrapped.
Types DynamoDB has no counterpart for (timestamps, symbols, floats, clobs, s-expressions)
never occur in an export; a line holding one is refused with an item error, not guessed at.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from .errors import UsageError
from .items import MAX_DEPTH, AttributeValue, IonLine, Item, ItemError

try:  # optional: `pip install 'rimport[ion]'`
    from amazon.ion import simpleion
    from amazon.ion.core import IonType
    from amazon.ion.exceptions import IonException
    from amazon.ion.simple_types import IonPyDict, IonPyList, IonPyNull
    from amazon.ion.simpleion import IonPyValueModel
except ImportError:  # pragma: no cover - exercised only without the package
    simpleion = None

_PLAIN = (
    {IonType.STRING: str, IonType.DECIMAL: Decimal, IonType.INT: int, IonType.BOOL: bool,
     IonType.BLOB: bytes, IonType.LIST: list}
    if simpleion is not None
    else {}
)  # fmt: skip
SETS = {"$dynamodb_SS": "SS", "$dynamodb_NS": "NS", "$dynamodb_BS": "BS"}
_MIN_TEXT_LIMIT = 4096
_STORE = "_IonPyDict__store"  # IonPyDict's own dict: name -> [values]
EMPTY = object()  # what a line holding no value parses to (None is Ion's null)
TOO_DEEP = object()  # a line nested deeper than amazon-ion decodes (some 500 levels)


class IonSyntaxError(ValueError):
    """The line is not one Ion value; the message says what amazon-ion found wrong."""


def require() -> None:
    """Refuse early, with what to install, when amazon-ion is missing."""
    if simpleion is None:
        raise UsageError(
            "reading Ion needs the `amazon-ion` package, which is not installed",
            "pip install 'rimport[ion]' (or pip install amazon-ion)",
        )


def parse_line(line: bytes) -> Any:
    """The one Ion value on `line`, or EMPTY for a line holding none (a comment, a version
    marker alone). Raises IonSyntaxError when the line is not exactly one value."""
    try:
        values = simpleion.loads(
            line,
            single_value=False,
            value_model=IonPyValueModel.MAY_BE_BARE,
            # text values longer than this are an error; the line bounds them all
            text_buffer_size_limit=max(len(line), _MIN_TEXT_LIMIT),
        )
    except IonException as e:
        if "nesting exceeded" in str(e):  # an item error, as for JSON: its text is kept
            return TOO_DEEP
        raise IonSyntaxError(_describe(e, line)) from None
    except (ValueError, TypeError, RecursionError) as e:
        raise IonSyntaxError(f"invalid Ion ({e})") from None
    if not values:
        return EMPTY
    if len(values) > 1:
        raise IonSyntaxError(f"{len(values)} values on one line, where an export has one")
    return values[0]


def _describe(e: Exception, line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    what = str(e).strip() or type(e).__name__
    return f"invalid Ion ({what})"


def ion_item(value: Any) -> Item:
    """A line of an Ion export, `{Item:{...}}`: the item inside, as the attribute map a
    write sends (numbers as decimal strings, binary as base64)."""
    if type(value) is not IonLine:
        raise ItemError("NotAnExportLine", "the element is not a line of an Ion export")
    v = value.value
    if v is TOO_DEEP:
        raise ItemError(
            "TooDeep",
            f"nested deeper than DynamoDB's {MAX_DEPTH} levels (and than amazon-ion decodes)",
        )
    fields = list(_fields(v)) if type(v) is IonPyDict and not v.ion_annotations else []
    if len(fields) != 1 or fields[0][0] != "Item" or len(fields[0][1]) != 1:
        raise ItemError(
            "NotAnExportLine", "the line is not $ion_1_0 {Item:{...}} as DynamoDB exports write it"
        )
    item = fields[0][1][0]
    if type(item) is not IonPyDict or item.ion_annotations:
        raise ItemError("NotAnExportLine", "the line's Item is not a struct of attributes")
    return _map(item, 1)


# Strings and numbers, most values, are converted inline: this runs for every attribute.


def _map(d: IonPyDict, depth: int) -> dict[str, AttributeValue]:
    if depth > MAX_DEPTH:
        raise ItemError("TooDeep", f"nested deeper than DynamoDB's {MAX_DEPTH} levels")
    out: dict[str, AttributeValue] = {}
    for k, values in _fields(d):
        if len(values) != 1:  # an Ion struct may repeat a name; a DynamoDB item may not
            raise ItemError("DuplicateName", f"the name {k!r} appears twice in one struct")
        if type(k) is not str:
            raise ItemError("IonType", f"a field name that is not text ({k!r})")
        v = values[0]
        t = type(v)
        if t is str:
            out[k] = {"S": v}
        elif t is Decimal or t is int:  # limits: checked with the item's size (item_size)
            out[k] = {"N": str(v)}
        else:
            out[k] = _value(v, depth)
    return out


def _fields(d: IonPyDict) -> Any:
    """(name, [its values]) of a struct. IonPyDict keeps them so, and `items()` walks them
    in Python a pair at a time (a third of the conversion's time); its own dict is read
    when it is there, as in amazon-ion 0.15."""
    store = getattr(d, _STORE, None)
    if type(store) is dict:
        return store.items()
    grouped: dict[Any, list[Any]] = {}
    for k, v in d.items():
        grouped.setdefault(k, []).append(v)
    return grouped.items()


def _value(v: Any, depth: int) -> AttributeValue:
    t = type(v)
    if t is str:
        return {"S": v}
    if t is Decimal or t is int:  # limits: checked with the item's size (items.item_size)
        return {"N": str(v)}
    if t is IonPyDict and not v.ion_annotations:
        return {"M": _map(v, depth + 1)}
    if t is list:
        if depth + 1 > MAX_DEPTH:
            raise ItemError("TooDeep", f"nested deeper than DynamoDB's {MAX_DEPTH} levels")
        return {"L": [_value(x, depth + 1) for x in v]}
    if t is bool:
        return {"BOOL": v}
    if v is None or (t is IonPyNull and not v.ion_annotations):  # null, null.string, ...
        return {"NULL": True}
    if t is bytes:
        return {"B": base64.b64encode(v).decode("ascii")}
    return _wrapped(v, depth)


def _wrapped(v: Any, depth: int) -> AttributeValue:
    """A value amazon-ion kept wrapped: annotated (sets), of a type plain Python lacks, or
    any value at all from amazon-ion without its C extension (which wraps everything)."""
    names = [a.text for a in getattr(v, "ion_annotations", ())]
    if not names and (plain := _unwrapped(v)) is not v:
        return _value(plain, depth)
    if names:
        kind = SETS.get(names[0])
        if kind and len(names) == 1 and type(v) is IonPyList and v.ion_type is IonType.LIST:
            return {kind: [_member(kind, x) for x in v]}
        raise ItemError(
            "IonType",
            f"a value annotated {'::'.join(map(str, names))}:: (DynamoDB exports annotate only "
            "sets, as $dynamodb_SS::[...])",
        )
    if _kind(v) == "an Ion float":
        raise ItemError(
            "IonType",
            f"an Ion float ({float(v)!r}), which is binary and inexact; DynamoDB numbers are "
            "decimals, as an export writes them (1.5, 6d2)",
        )
    raise ItemError("IonType", f"{_kind(v)}, which DynamoDB has no type for")


def _unwrapped(v: Any) -> Any:
    """The plain Python value of an unannotated wrapped one; `v` itself if there is none."""
    ion_type = getattr(v, "ion_type", None)
    plain = _PLAIN.get(ion_type) if ion_type is not None else None
    return plain(v) if plain else v


def _member(kind: str, x: Any) -> str:
    t = type(x)
    if kind == "SS" and t is str:
        return x  # type: ignore[no-any-return]
    if kind == "NS" and (t is Decimal or t is int):
        return str(x)
    if kind == "BS" and t is bytes:
        return base64.b64encode(x).decode("ascii")
    if not getattr(x, "ion_annotations", ()) and (plain := _unwrapped(x)) is not x:
        return _member(kind, plain)
    wanted = {"SS": "strings", "NS": "decimals", "BS": "blobs"}[kind]
    raise ItemError("IonType", f"a $dynamodb_{kind} set holds {_kind(x)}; it holds only {wanted}")


def _kind(v: Any) -> str:
    """What an Ion value is, for a message: `an Ion timestamp`."""
    ion_type = getattr(v, "ion_type", None)  # wrapped; else a plain or core Python value
    name = ion_type.name.lower() if ion_type is not None else _BARE.get(type(v).__name__, "")
    if name == "symbol":
        return f"an Ion symbol ({getattr(v, 'text', v)}; strings are in double quotes)"
    return f"an Ion {name or type(v).__name__}"


_BARE = {
    "str": "string", "Decimal": "decimal", "int": "int", "bool": "bool", "bytes": "blob",
    "list": "list", "NoneType": "null", "float": "float", "Timestamp": "timestamp",
    "SymbolToken": "symbol",
}  # fmt: skip
