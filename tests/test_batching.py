"""Items -> batches: size, contiguous indexes, repeated keys, rejects, and flushing on error."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest

from resumable_import.attributes import to_item
from resumable_import.batching import batches
from resumable_import.errors import InputError
from resumable_import.items import ItemError
from resumable_import.keys import KeySpec, key_of
from resumable_import.reader import RawItem

PK = (KeySpec("pk", "S"),)


def raws(*pks: object) -> list[RawItem]:
    return [
        RawItem(i, {"pk": pk} if isinstance(pk, str) else pk, 10 * (i + 1))
        for i, pk in enumerate(pks)
    ]


def test_json_values_become_dynamodb_attributes() -> None:
    item = to_item({"s": "x", "n": 1, "d": Decimal("0.10"), "b": True, "z": None,
                    "l": [1, "a"], "m": {"k": False}})  # fmt: skip
    assert item == {
        "s": {"S": "x"}, "n": {"N": "1"}, "d": {"N": "0.10"}, "b": {"BOOL": True},
        "z": {"NULL": True}, "l": {"L": [{"N": "1"}, {"S": "a"}]},
        "m": {"M": {"k": {"BOOL": False}}},
    }  # fmt: skip
    assert key_of(item, ("s",)) == ("x",)
    assert key_of({"k": {"N": "1.50"}}, ("k",)) == key_of({"k": {"N": "1.5"}}, ("k",))
    assert key_of(item, ("missing",)) is None


def test_an_element_that_is_not_an_object_is_an_item_error() -> None:
    with pytest.raises(ItemError, match="a JSON list, not an object"):
        to_item([1])


def test_batches_hold_at_most_size_items_and_cover_every_index() -> None:
    out = list(batches(raws(*"abcdefghij"), PK, size=4))
    assert [len(b.items) for b in out] == [4, 4, 2]
    assert [(b.first, b.last, b.end) for b in out] == [(0, 3, 40), (4, 7, 80), (8, 9, 100)]


def test_a_repeated_key_closes_the_batch_so_the_later_item_lands_last() -> None:
    out = list(batches(raws("a", "b", "a", "c"), PK))
    assert [[orjson.loads(i)["pk"]["S"] for i in b.items] for b in out] == [["a", "b"], ["a", "c"]]
    assert [b.indexes for b in out] == [[0, 1], [2, 3]]


def test_rejected_items_travel_with_their_batch() -> None:
    (batch,) = list(batches(raws("a", 5, "b"), PK))
    assert [orjson.loads(i)["pk"]["S"] for i in batch.items] == ["a", "b"]
    assert batch.indexes == [0, 2]
    assert [(r.index, r.error.code) for r in batch.rejected] == [(1, "NotAnObject")]
    assert (batch.first, batch.last) == (0, 2)


def test_the_partial_batch_is_yielded_before_a_read_error() -> None:
    def source() -> Iterator[RawItem]:
        yield from raws("a", "b")
        raise InputError("boom")

    out = []
    with pytest.raises(InputError):
        for b in batches(source(), PK):
            out.append(b)
    assert [b.indexes for b in out] == [[0, 1]]


@pytest.mark.parametrize("size", [0, 26])
def test_batch_size_must_fit_dynamodb(size: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.25"):
        list(batches(raws("a"), PK, size=size))


def test_dynamodb_json_items_are_checked_and_sent_as_they_are() -> None:
    good = {"pk": {"S": "a"}, "b": {"B": "AAE="}, "n": {"N": "1.50"}}
    bad = {"pk": {"S": "b"}, "plain": "text"}
    raws = [RawItem(0, good, 10), RawItem(1, bad, 20), RawItem(2, {"pk": {"S": "a"}}, 30)]
    out = list(batches(raws, PK, items_as="ddb-json"))
    items = [[orjson.loads(i) for i in b.items] for b in out]
    assert items == [[good], [{"pk": {"S": "a"}}]]  # the repeated key splits
    assert [(r.index, r.error.code) for r in out[0].rejected] == [(1, "NotDynamoDBJSON")]


def test_export_lines_give_the_item_inside() -> None:
    raws = [RawItem(0, {"Item": {"pk": {"S": "a"}}}, 10), RawItem(1, {"pk": {"S": "b"}}, 20)]
    (batch,) = list(batches(raws, PK, items_as="ddb-export"))
    assert batch.items == [b'{"pk":{"S":"a"}}']
    assert [(r.index, r.error.code) for r in batch.rejected] == [(1, "NotAnExportLine")]


def test_a_lone_surrogate_is_refused_and_the_rest_written() -> None:
    (batch,) = list(batches(raws("a", "b\ud800", "c"), PK, units=True))
    assert [orjson.loads(i)["pk"]["S"] for i in batch.items] == ["a", "c"]
    assert [(r.index, r.error.code) for r in batch.rejected] == [(1, "BadString")]
    assert batch.units == [1, 1]
