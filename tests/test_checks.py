"""The checks made before an item is sent, and that they agree with DynamoDB itself."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from resumable_import.attributes import to_attribute, to_attributes, to_item
from resumable_import.checks import MAX_ITEM_BYTES, Prepare
from resumable_import.items import ItemError, item_size
from resumable_import.keys import KeySpec

PK = (KeySpec("pk", "S"),)
Item = dict[str, Any]


def nested(levels: int) -> dict[str, Any]:
    """An item `levels` deep, counting the item itself as the first level."""
    value: Any = "leaf"
    for _ in range(levels - 1):
        value = {"a": value}
    return {"pk": "k", "v": value} if levels > 1 else {"pk": "k"}


def sized(size: int) -> dict[str, Any]:
    """An item of exactly `size` bytes as DynamoDB counts them: pk "k" (3) + "v" (1) + text."""
    return {"pk": "k", "v": "x" * (size - 4)}


def lists(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def binary(size: int) -> dict[str, str]:
    return {"B": base64.b64encode(b"x" * size).decode()}


# (name, plain JSON item or None, typed item or None): every case is judged by `Prepare` and
# by DynamoDB Local, which must agree.
CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [
    ("32 levels", nested(32), None),
    ("33 levels", nested(33), None),
    ("33 levels of lists", {"pk": "k", "v": lists(32)}, None),
    ("38 digits", {"pk": "k", "n": Decimal("1234567890123456789012345678901234567.8")}, None),
    ("39 digits", {"pk": "k", "n": 123456789012345678901234567890123456789}, None),
    ("trailing zeros", {"pk": "k", "n": 10**60}, None),
    ("largest", {"pk": "k", "n": Decimal("9.9999999999999999999999999999999999999E+125")}, None),
    ("overflow", {"pk": "k", "n": Decimal("1E+126")}, None),
    ("smallest", {"pk": "k", "n": Decimal("-1E-130")}, None),
    ("underflow", {"pk": "k", "n": Decimal("1E-131")}, None),
    ("400 KB", sized(MAX_ITEM_BYTES), None),
    ("400 KB + 1", sized(MAX_ITEM_BYTES + 1), None),
    ("empty key", {"pk": ""}, None),
    ("missing key", {"id": "k"}, None),
    ("number key", {"pk": 7}, None),
    ("empty non-key string", {"pk": "k", "s": "", "l": [], "m": {}}, None),
    ("empty set", None, {"pk": {"S": "k"}, "s": {"SS": []}}),
    ("repeated set member", None, {"pk": {"S": "k"}, "s": {"NS": ["1", "1.0"]}}),
    ("set", None, {"pk": {"S": "k"}, "s": {"SS": ["a", "b"]}, "n": {"NS": ["1", "2"]}}),
    ("typed 39 digits", None, {"pk": {"S": "k"}, "n": {"N": "1" * 39}}),
    ("typed empty key", None, {"pk": {"S": ""}}),
    ("typed key type", None, {"pk": {"N": "1"}}),
    ("binary 400 KB", None, {"pk": {"S": "k"}, "b": binary(409_596)}),
    ("binary 400 KB + 1", None, {"pk": {"S": "k"}, "b": binary(409_597)}),
]


def verdict(prepare: Prepare, value: dict[str, Any]) -> str:
    try:
        prepare(value, 10**9)  # a span this large never skips the size check
    except ItemError as e:
        return e.code
    return "ok"


def wire(typed: dict[str, Any]) -> dict[str, Any]:
    """A typed item as boto3's client takes it: binary as bytes, not base64."""

    def value(v: dict[str, Any]) -> dict[str, Any]:
        ((kind, x),) = v.items()
        if kind == "B":
            return {"B": base64.b64decode(x)}
        if kind == "M":
            return {"M": {k: value(e) for k, e in x.items()}}
        if kind == "L":
            return {"L": [value(e) for e in x]}
        return {kind: x}

    return {k: value(v) for k, v in typed.items()}


@pytest.fixture(scope="module")
def checks_table(ddb: Any) -> str:
    ddb.create_table(
        TableName="checks",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return "checks"


@pytest.mark.parametrize(("name", "plain", "typed"), CASES, ids=[c[0] for c in CASES])
def test_the_checks_agree_with_dynamodb(
    ddb: Any, checks_table: str, name: str, plain: Item | None, typed: Item | None
) -> None:
    ours = (
        verdict(Prepare(PK), plain)
        if plain is not None
        else verdict(Prepare(PK, "ddb-json"), typed or {})
    )
    if plain is not None:
        # the plain item converted and seen as DynamoDB JSON is judged the same way
        assert verdict(Prepare(PK, "ddb-json"), _unchecked(plain)) == ours
    try:
        ddb.put_item(TableName=checks_table, Item=wire(typed) if typed else _unchecked(plain or {}))
        theirs = "ok"
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationException"
        theirs = "refused"
    assert (ours == "ok") == (theirs == "ok"), f"{name}: rimport says {ours}, DynamoDB {theirs}"


def _unchecked(plain: dict[str, Any]) -> dict[str, Any]:
    return to_attribute(plain, limits=False)["M"]


@pytest.mark.parametrize(
    ("item", "code", "message"),
    [
        ({"id": 1}, "MissingKey", "key attribute 'pk' is missing"),
        ({"pk": None}, "KeyType", "key attribute 'pk' is null; the table's key is of type S"),
        ({"pk": True}, "KeyType", "key attribute 'pk' is a boolean; the table's key is of type S"),
        ({"pk": ""}, "EmptyKey", "key attribute 'pk' is empty; DynamoDB keys cannot be"),
        (nested(33), "TooDeep", "nested deeper than DynamoDB's 32 levels"),
        ({"pk": "k", "n": Decimal("1E+126")}, "BadNumber", "1E+126 is outside"),
        (sized(MAX_ITEM_BYTES + 1), "ItemTooLarge", "the item is 409,601 bytes"),
        ([1], "NotAnObject", "the item is a JSON list, not an object"),
    ],
)
def test_each_problem_is_named_and_explained(item: Any, code: str, message: str) -> None:
    with pytest.raises(ItemError) as e:
        Prepare(PK)(item, 10**9)
    assert e.value.code == code
    assert e.value.message.startswith(message)


def test_a_binary_key_cannot_come_from_plain_json() -> None:
    with pytest.raises(ItemError, match=r"as DynamoDB JSON \(format ddb-json\)"):
        Prepare((KeySpec("id", "B"),))({"id": "AAE="}, 10)


def test_the_key_is_returned_for_batching() -> None:
    keys = (KeySpec("pk", "S"), KeySpec("n", "N"))
    item, key, units = Prepare(keys)({"pk": "a", "n": 2}, 10)
    assert orjson.loads(item) == to_item({"pk": "a", "n": 2}) and key == ("a", 2)
    assert units == 0 and Prepare(keys, units=True)({"pk": "a" * 1500, "n": 1}, 10)[2] == 2
    _, typed_key, _ = Prepare(keys, "ddb-json")({"pk": {"S": "a"}, "n": {"N": "2.0"}}, 10)
    assert typed_key == key  # one key, whichever form the item came in


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**37), 10**37)
    | st.text()
    | st.decimals(-(10**30), 10**30, places=3, allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=40,
)


@given(st.dictionaries(st.text(max_size=3), json_values, max_size=8))
def test_an_items_size_stays_under_twice_its_text(value: dict[str, Any]) -> None:
    """What lets `Prepare` skip measuring elements whose text spans under 200 KB."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    assert item_size(to_attribute(value, limits=False)["M"]) < 2 * len(text.encode())


_JSON_SCALARS = (
    st.text()
    | st.integers(min_value=-(10**45), max_value=10**45)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def _converted(value: Any) -> tuple[str, Any]:
    try:
        return "ok", orjson.dumps(to_item(value))
    except ItemError as e:
        return e.code, e.message
    except Exception as e:  # Unsupported, compared as it is
        return type(e).__name__, str(e)


def _general(value: Any) -> tuple[str, Any]:
    try:
        return "ok", orjson.dumps(to_attributes(value))
    except ItemError as e:
        return e.code, e.message
    except Exception as e:
        return type(e).__name__, str(e)


@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=6))
def test_the_fast_conversion_is_the_general_one(value: dict[str, Any]) -> None:
    """`to_item` takes a way of its own for what JSON decodes to: the same item, or the
    same error, as `to_attributes` (numbers past the limits, nesting, the lot)."""
    assert _converted(value) == _general(value)


@pytest.mark.parametrize(
    "value",
    [
        nested(32), nested(33), {"pk": "k", "l": lists(31)}, {"pk": "k", "l": lists(32)},
        {"pk": "k", 1: "an int name"}, {"pk": "k", "t": (1, 2)}, {"pk": "k", "f": 0.1},
        {"pk": "k", "s": {"a", "b"}}, {"pk": "k", "n": 10**38}, {"pk": "k", "n": -(10**37)},
        {"pk": "k", "n": Decimal("1E+126")}, {"pk": "k", "n": Decimal("1.5E+3")},
        {"pk": "k", "b": b"bytes"}, {"pk": "k", "m": {"deep": [{"x": 1e400}]}},
    ],
)  # fmt: skip
def test_the_fast_conversion_hands_over_what_it_does_not_know(value: dict[Any, Any]) -> None:
    assert _converted(value) == _general(value)
