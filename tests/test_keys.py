"""One key: equal keys are one key however the item arrived, and the later of two wins."""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import scan
from hypothesis import given
from hypothesis import strategies as st

from resumable_import import ImportOptions, KeySpec, WriteSettings, import_file
from resumable_import.batching import batches
from resumable_import.keys import Key, canonical, key_of
from resumable_import.reader import Dump, Shape
from resumable_import.transform import load

# A key value and the texts that spell it in each format: a string, a number (in several
# spellings of one value, and as a float, a Decimal or an int from a transform), or bytes.
texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e20, max_value=1e20).filter(
    lambda f: f == 0 or abs(f) > 1e-120  # DynamoDB's numbers stop at 1E-130
)


def _arrivals_of_string(s: str) -> list[tuple[str, str, Any]]:
    typed = {"pk": {"S": s}, "extra": {"SS": ["a", "b"]}}
    return [
        ("json", json.dumps({"pk": s, "v": 1}), None),
        ("ddb-json", json.dumps(typed), None),
        ("ddb-export", json.dumps({"Item": typed}), None),
        ("ion", f'$ion_1_0 {{Item:{{pk:{json.dumps(s)},extra:$dynamodb_SS::["a"]}}}}', None),
        ("json", json.dumps({"pk": s}), lambda item: {**item, "f": 0.5}),
        ("json", json.dumps({"pk": s}), lambda item: {**item, "tags": {"x", "y"}}),
        ("ddb-json", json.dumps(typed), lambda item: {**item, "b": b"\x00"}),
    ]


def _arrivals_of_number(d: Decimal, f: float | None) -> list[tuple[str, str, Any]]:
    sign, digits, exponent = d.as_tuple()
    mantissa = int("".join(map(str, digits)))
    spellings = {str(d), f"{d:E}", f"{'-' if sign else ''}{mantissa * 10}E{int(exponent) - 1}"}
    if d == d.to_integral_value():
        spellings.add(str(int(d)))
    out: list[tuple[str, str, Any]] = []
    for text in sorted(spellings):
        typed = {"pk": {"N": text}}
        ion_text = text.replace("E", "d") if "E" in text else text
        out += [
            ("json", '{"pk": ' + text + "}", None),
            ("ddb-json", json.dumps(typed), None),
            ("ddb-export", json.dumps({"Item": typed}), None),
            ("ion", f"$ion_1_0 {{Item:{{pk:{ion_text}}}}}", None),
        ]
    out.append(("json", '{"n": 0}', lambda item: {"pk": d, "f": 1.5}))
    if f is not None:
        out.append(("json", '{"n": 0}', lambda item: {"pk": f}))
    if d == d.to_integral_value():
        out.append(("json", '{"n": 0}', lambda item: {"pk": int(d), "s": {"a"}}))
    return out


def _arrivals_of_bytes(b: bytes) -> list[tuple[str, str, Any]]:
    typed = {"pk": {"B": base64.b64encode(b).decode()}}
    return [
        ("ddb-json", json.dumps(typed), None),
        ("ddb-export", json.dumps({"Item": typed}), None),
        ("ion", f"$ion_1_0 {{Item:{{pk:{{{{{base64.b64encode(b).decode()}}}}}}}}}", None),
        ("json", '{"n": 0}', lambda item: {"pk": b}),
        ("json", '{"n": 0}', lambda item: {"pk": bytearray(b), "f": 2.5}),
        ("ddb-json", json.dumps(typed), lambda item: {**item, "g": 0.25}),
    ]


def _key(folder: Path, items_as: str, line: str, transform: Callable[..., Any] | None,
         spec: KeySpec) -> Key:  # fmt: skip
    """The key batching gives the one element of a one-line dump, read as an import reads."""
    path = folder / "d.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    shape = Shape("ion") if items_as == "ion" else Shape("jsonl")
    dump = Dump(path, shape, items_as=items_as)
    made = load(transform) if transform else None
    (batch,) = batches(dump.items(), (spec,), items_as=dump.items_as, transform=made)
    assert not batch.rejected, batch.rejected[0].error.message
    (key,) = batch.keys
    return key


def _one_key(arrivals: list[tuple[str, str, Any]], spec: KeySpec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        keys = [(_key(Path(tmp), a, line, t, spec), a, line) for a, line, t in arrivals]
    first = keys[0][0]
    for key, how, line in keys:
        assert key == first and hash(key) == hash(first), f"{how}: {line} -> {key!r} != {first!r}"
        assert canonical(key) == canonical(first), f"{how}: {line}"


@given(texts)
def test_a_string_key_is_one_key_however_the_item_arrives(s: str) -> None:
    _one_key(_arrivals_of_string(s), KeySpec("pk", "S"))


@given(st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=6).filter(
    lambda d: abs(d) < 10**20), floats))  # fmt: skip
def test_a_number_key_is_one_key_however_the_item_arrives(n: Decimal | float) -> None:
    f = n if isinstance(n, float) else None
    d = Decimal(repr(n)) if isinstance(n, float) else n
    _one_key(_arrivals_of_number(d, f), KeySpec("pk", "N"))


@given(st.binary(min_size=1, max_size=30))
def test_a_binary_key_is_one_key_however_the_item_arrives(b: bytes) -> None:
    _one_key(_arrivals_of_bytes(b), KeySpec("pk", "B"))


def test_numbers_are_one_key_by_value_and_different_values_are_not() -> None:
    one = [key_of({"k": {"N": t}}, ("k",)) for t in ("1", "1.0", "1E0", "10E-1", "0.1e1")]
    assert len(set(one)) == 1 and len({canonical(k) for k in one if k}) == 1
    assert key_of({"k": {"N": "-1"}}, ("k",)) != key_of({"k": {"N": "-2"}}, ("k",))
    assert canonical((-1,)) != canonical((-2,))  # Python's hash makes these two alike
    assert key_of({"k": {"S": "1"}}, ("k",)) == ("1",)
    assert key_of({"k": {"B": "aGk="}}, ("k",)) == key_of({"k": {"B": b"hi"}}, ("k",)) == (b"hi",)
    assert key_of({"k": {"N": "x"}}, ("k",)) is None
    assert key_of({"other": {"S": "x"}}, ("k",)) is None


# -- the later of two elements with one key wins, in the table --------------------------

PAIRS = 1500


def _second_gets_a_float(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "f": 0.5} if item["v"] == "second" else item


@pytest.mark.integration
@pytest.mark.parametrize("transform", [None, _second_gets_a_float], ids=["plain", "transform"])
def test_the_later_of_two_elements_with_one_key_wins(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path, transform: Any
) -> None:
    name = f"pairs-{'t' if transform else 'p'}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    dump = tmp_path / "pairs.jsonl"
    with dump.open("w") as f:
        for n in range(PAIRS):
            for v in ("first", "second"):
                f.write(json.dumps({"pk": f"k{n}", "sk": "s", "v": v}) + "\n")
    result = import_file(
        dump,
        name,
        ImportOptions(
            endpoint=endpoint, transform=transform, settings=WriteSettings(concurrency=64)
        ),
        ledger=ledger,
    )
    assert result.state == "completed"
    got = scan(ddb, name)
    assert len(got) == PAIRS
    kept_first = sorted(k for k, item in got.items() if item["v"] != "second")
    assert kept_first == [], f"{len(kept_first)} keys kept the earlier element: {kept_first[:5]}"
    if transform:
        assert all(item["f"] == Decimal("0.5") for item in got.values())
