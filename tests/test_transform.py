"""`--transform`: items changed on the way in, checked as returned, recorded with the run."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import EndpointConnectionError
from conftest import rimport
from fakes import FakeDynamo
from transforms import split

from resumable_import import (
    ImportOptions,
    KeyMismatchError,
    Ledger,
    RetryPolicy,
    ServiceError,
    UsageError,
    WriteSettings,
    import_file,
    import_folder,
    resume_run,
    run_status,
    validate_file,
)
from resumable_import.batching import Batch, batches
from resumable_import.keys import KeySpec
from resumable_import.reader import RawItem
from resumable_import.transform import load

FAST = RetryPolicy(
    max_attempts=3, base_delay=0.0001, max_delay=0.001, item_timeout=0.0, max_outage=0.5
)
# Retries a refused request until nothing has answered for half a second: the run stops.
STUBBORN = RetryPolicy(
    max_attempts=10**6, base_delay=0.0001, max_delay=0.001, item_timeout=60, max_outage=0.5
)

FIX = '''
def fix(item):
    """Drop test rows, rename `id` to `pk`, build `sk` from two fields, split bundles."""
    if item.get("test"):
        return None
    if item["id"] == "boom":
        raise ValueError(f"cannot fix {item['id']}")
    item["pk"] = item.pop("id")
    item["sk"] = f"{item.pop('kind')}#{item['n']}"
    if "parts" in item:
        return [{**item, "sk": f"{item['sk']}#{p}"} for p in item.pop("parts")]
    return item
'''


@pytest.fixture(params=["reader process", "one process"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RIMPORT_READER_PROCESS", "1" if request.param == "reader process" else "0")
    return str(request.param)


def source_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"id": f"u{i}", "kind": "user", "n": i, "price": 0.25} for i in range(30)
    ]
    items[4]["test"] = True
    items[9] = {"id": "boom", "kind": "user", "n": 9}
    items[12]["parts"] = ["a", "b", "c"]
    return items


def expected_items() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for i, item in enumerate(source_items()):
        if i in (4, 9):
            continue
        base = {"pk": item["id"], "n": i, "price": Decimal("0.25")}
        sks = [f"user#{i}#{p}" for p in item.get("parts", [])] or [f"user#{i}"]
        for sk in sks:
            out[(base["pk"], sk)] = {**base, "sk": sk}
    return out


def test_start_transforms_items_and_dead_letters_the_one_it_raises_on(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    (tmp_path / "fix.py").write_text(FIX)
    dump = tmp_path / "users.jsonl"
    dump.write_text("".join(json.dumps(i) + "\n" for i in source_items()))
    table = "transformed-users"
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger,
                  "--create-table", "--key", "pk:S", "--sort-key", "sk:S",
                  "--transform", tmp_path / "fix.py:fix")  # fmt: skip
    assert out.returncode == 3, out.stderr
    run_id = out.stdout.splitlines()[0]
    want = expected_items()
    assert f"30 items read, {len(want)} written, 1 dead-lettered" in out.stderr
    got = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for raw in page["Items"]:
            item = {k: next(iter(v.values())) for k, v in raw.items()}
            item["n"], item["price"] = int(item["n"]), Decimal(item["price"])
            got[(item["pk"], item["sk"])] = item
    assert got == want
    detail = rimport("status", run_id, "--ledger", ledger).stdout
    assert f"{'transform:':<17}{tmp_path / 'fix.py'}:fix\n" in detail
    assert re.search(
        r"^ +9  TransformError: the transform raised ValueError: cannot fix boom "
        r"\[not retryable\]$",
        detail,
        re.M,
    )
    st = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert st["options"]["transform"]["sha256"].startswith("sha256:")
    with Ledger(ledger) as book:
        (letter,) = book.dead_letters(run_id)
    assert letter.item == {"M": {"id": {"S": "boom"}, "kind": {"S": "user"}, "n": {"N": "9"}}}


BAD_SPECS = [
    ("nowhere.py:fix", "there is no file", "FILE.py:FUNCTION"),
    ("fix.py:repair", "has no 'repair'", "functions it defines: fix"),
    ("broken.py:fix", "broken.py, line 2: ", "fix the syntax error"),
    ("no_such_module:fix", "there is no module 'no_such_module'", "FILE.py:FUNCTION"),
    ("fails.py:fix", "importing it raised KeyError: 'HOME_OF_NOTHING'", "shows the full traceback"),
    ("fix.py:LIMIT", "'LIMIT' is int, not a function", "takes one item"),
    ("fix.py:two", "two(a, b) cannot be called with one item", "exactly one argument"),
    ("fix.py", "names no function", "FILE.py:FUNCTION"),
]


def transform_files(folder: Path) -> None:
    (folder / "fix.py").write_text(FIX + "\nLIMIT = 3\n\ndef two(a, b):\n    return a\n")
    (folder / "broken.py").write_text("def fix(item):\n    return item[\n")
    (folder / "fails.py").write_text("import os\nos.environ['HOME_OF_NOTHING']\n")


@pytest.mark.parametrize(("spec", "message", "hint"), BAD_SPECS)
def test_a_transform_that_cannot_be_loaded_is_named_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, message: str, hint: str
) -> None:
    transform_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as caught:
        load(spec)
    assert caught.value.message.startswith(f"transform '{spec}'")
    assert message in caught.value.message and hint in str(caught.value.hint)


@pytest.mark.parametrize(("command", "spec"), [("start", "nowhere.py:fix"),
                                               ("validate", "fix.py:repair")])  # fmt: skip
def test_the_cli_stops_on_a_bad_transform_before_anything_is_written(
    tmp_path: Path, ledger: Path, command: str, spec: str
) -> None:
    transform_files(tmp_path)
    dump = tmp_path / "d.json"
    dump.write_text('[{"id": "a", "kind": "k", "n": 1}]')
    args = ["--table", "t", "--ledger", ledger] if command == "start" else ["--key", "pk:S"]
    out = subprocess_in(tmp_path, command, dump, *args, "--transform", spec)
    assert out.returncode == 2, out.stderr
    error, hint = out.stderr.splitlines()
    assert error.startswith(f"error: transform '{spec}': ")
    assert hint.startswith("hint: ")
    assert out.stdout == ""
    assert not ledger.exists()


def subprocess_in(folder: Path, *args: str | Path) -> Any:
    """`rimport` run from `folder`, where relative transform paths and modules are found."""
    import os
    import subprocess

    from conftest import RIMPORT

    return subprocess.run([RIMPORT, *map(str, args)], capture_output=True, text=True,
                          cwd=folder, env=os.environ.copy(), timeout=120)  # fmt: skip


def test_validate_checks_what_the_transform_returns(tmp_path: Path) -> None:
    (tmp_path / "shape.py").write_text(
        "def shape(item):\n"
        "    if item['n'] == 2:\n"
        "        return {'name': 'no key'}\n"  # the key is missing from what it returns
        "    if item['n'] == 3:\n"
        "        return 'text'\n"  # not an item
        "    if item['n'] == 4:\n"
        "        return [{'pk': 'x', 'at': object()}]\n"  # a value DynamoDB cannot hold
        "    return [{'pk': f\"{item['pk']}-{i}\", 'ratio': 0.1} for i in range(item['n'])]\n"
    )
    dump = tmp_path / "d.jsonl"
    dump.write_text("".join(json.dumps({"pk": f"p{n}", "n": n}) + "\n" for n in range(6)))
    out = subprocess_in(tmp_path, "validate", dump, "--key", "pk:S", "--transform",
                        "shape:shape")  # fmt: skip
    assert out.returncode == 3, out.stderr
    assert "6 items" in out.stdout and "the transform made 8 items of them" in out.stdout
    problems = re.findall(r"^  item (\d) \(bytes [\d,.]+\): (\w+): (.*)$", out.stdout, re.M)
    assert problems == [
        ("2", "MissingKey", "key attribute 'pk' is missing"),
        ("3", "TransformError", "the transform returned a str; it must return the item to "
         "write (a dict), a list of items, or None to skip it"),
        ("4", "TransformError", "the transform returned attribute 'at', which is an object: "
         "DynamoDB cannot store that; use str, int, Decimal, float, bool, None, bytes, dict, "
         "list or set"),
    ]  # fmt: skip


def test_typed_items_reach_the_transform_as_plain_values(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def look(item: dict[str, Any]) -> dict[str, Any]:
        seen.append(item)
        return {**item, "tags": item["tags"] | {"new"}, "count": item["n"] + 1}

    dump = tmp_path / "typed.jsonl"
    dump.write_text(json.dumps({"Item": {
        "pk": {"S": "a"}, "n": {"N": "1.50"}, "b": {"B": "AAE="}, "tags": {"SS": ["x"]},
        "m": {"M": {"l": {"L": [{"NULL": True}, {"BOOL": False}, {"NS": ["2"]}]}}},
    }}) + "\n")  # fmt: skip
    report = validate_file(dump, (KeySpec("pk", "S"),), fmt="ddb-export", transform=look)
    assert report.clean and report.transformed == 1
    want = {"pk": "a", "n": Decimal("1.50"), "b": b"\x00\x01", "tags": {"x"},
            "m": {"l": [None, False, {Decimal(2)}]}}  # fmt: skip
    assert seen == [want, want]  # the key check of the first items, then the reading


def test_an_element_split_over_batches_is_counted_once_across_a_stop(
    tmp_path: Path, reading: str
) -> None:
    fake = FakeDynamo()
    fake.poison = {"e1#7"}  # refused by DynamoDB: dead-lettered
    stop = {"on": True}

    def outage(items: list[dict[str, Any]]) -> None:
        if stop["on"] and any(i["pk"]["S"] == "e1#25" for i in items):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    fake.on_call = outage
    dump = tmp_path / "d.json"
    dump.write_text(json.dumps([{"pk": f"e{i}"} for i in range(4)]))
    ledger = tmp_path / "l.db"
    with pytest.raises(ServiceError):
        import_file(
            dump,
            "t",
            ImportOptions(transform=split, settings=WriteSettings(concurrency=1)),
            ledger=ledger,
            client=fake,
            retry=STUBBORN,
        )
    (run,) = run_status(ledger=ledger)
    # e1's first 25 items were written, but the element is not done: nothing of it counts.
    assert (run.items_committed, run.items_written, run.dead_letters) == (1, 30, 0)
    assert (run.recorded.transform or {})["spec"] == "transforms:split"
    stop["on"] = False
    result = resume_run(run.id, ledger=ledger, client=fake, retry=FAST)
    assert (result.items_committed, result.items_written, result.dead_letters) == (4, 119, 1)
    assert len(fake.items) == 119
    with Ledger(ledger) as book:
        (letter,) = book.dead_letters(run.id)
    assert (letter.index, letter.code, letter.item["pk"]) == (1, "ValidationException",
                                                              {"S": "e1#7"})  # fmt: skip


def test_resume_refuses_a_transform_whose_code_changed(tmp_path: Path, ledger: Path) -> None:
    code = tmp_path / "fix.py"
    code.write_text(FIX)
    fake = FakeDynamo(key_names=("pk", "sk"))
    fake.on_call = lambda items: setattr(fake, "down", (0.0, float("inf")))  # down after one
    dump = tmp_path / "users.json"
    dump.write_text(json.dumps(source_items()))
    with pytest.raises(ServiceError):
        import_file(
            dump,
            "t",
            ImportOptions(
                transform=f"{code}:fix", settings=WriteSettings(batch_size=5, concurrency=1)
            ),
            ledger=ledger,
            client=fake,
            retry=FAST,
        )
    (run,) = run_status(ledger=ledger)
    assert 0 < run.items_committed < 30
    fake.on_call, fake.down = None, None

    code.write_text(FIX.replace("#", "/"))
    out = rimport("resume", run.id, "--ledger", ledger)
    assert out.returncode == 2
    error, hint = out.stderr.splitlines()
    assert error == (
        f"error: run {run.id}: the code of {code}:fix has changed since the run used it; "
        "resuming would import the rest of the file differently from what is already in the "
        "table"
    )
    assert hint.startswith("hint: put the transform back as it was and resume, or start over ")
    assert hint.endswith(f"--transform {code}:fix --new --ledger {ledger}`")
    with pytest.raises(UsageError, match="has changed since the run used it"):
        resume_run(run.id, ledger=ledger, client=fake, retry=FAST)

    code.write_text(FIX)  # put back as it was: the run goes on
    result = resume_run(run.id, ledger=ledger, client=fake, retry=FAST)
    assert (result.items_committed, result.dead_letters) == (30, 1)
    assert {k for k in fake.items} >= {("u12", "user#12#a"), ("u29", "user#29")}


def made_batches(function: Any, values: list[Any], size: int = 25) -> list[Batch]:
    raws = [RawItem(i, v, 10 * (i + 1)) for i, v in enumerate(values)]
    return list(batches(raws, (KeySpec("pk", "S"),), size, transform=load(function)))


def test_one_element_s_items_stay_together_and_in_order() -> None:
    def twice(item: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"pk": item["pk"], "v": 1}, {"pk": item["pk"], "v": 2}, {"pk": item["pk"] + "!"}]

    out = made_batches(twice, [{"pk": "a"}, {"pk": "b"}, {"pk": "c"}], size=4)
    # The repeated key closes the batch partway through the element: the later item lands
    # last, and that batch is not `whole` (its checkpoint waits for the element's end).
    assert [[(orjson.loads(i)["pk"]["S"], orjson.loads(i).get("v")) for i in b.items]
            for b in out] == [
        [("a", {"N": "1"})], [("a", {"N": "2"}), ("a!", None)],
        [("b", {"N": "1"})], [("b", {"N": "2"}), ("b!", None)],
        [("c", {"N": "1"})], [("c", {"N": "2"}), ("c!", None)],
    ]  # fmt: skip
    assert [(b.whole, b.last, b.end) for b in out] == [
        (False, -1, 0), (True, 0, 10), (False, 0, 10), (True, 1, 20), (False, 1, 20),
        (True, 2, 30),
    ]  # fmt: skip
    assert [b.indexes for b in out] == [[0], [0, 0], [1], [1, 1], [2], [2, 2]]


def test_an_element_whose_items_do_not_fit_starts_a_new_batch() -> None:
    out = made_batches(lambda item: [{"pk": f"{item['pk']}{n}"} for n in range(3)],
                       [{"pk": p} for p in "abcd"], size=7)  # fmt: skip
    assert [len(b.items) for b in out] == [6, 6]
    assert all(b.whole for b in out) and [b.last for b in out] == [1, 3]


def test_skipped_elements_still_move_the_checkpoint() -> None:
    out = made_batches(lambda item: None, [{"pk": "x"}] * 2500)
    assert [(b.last, b.skipped, b.items) for b in out] == [(999, 1000, []), (1999, 1000, []),
                                                         (2499, 500, [])]  # fmt: skip


def test_what_a_transform_returns_is_converted_and_checked() -> None:
    def make(item: dict[str, Any]) -> Any:
        return {
            "a": [
                {
                    "pk": "p",
                    "f": 0.1,
                    "b": b"\x00",
                    "ss": {"x"},
                    "ns": {1, Decimal("2.5")},
                    "t": (1, 2),
                }
            ],
            "big": {"pk": "big", "blob": "x" * 410_000},  # grown past the limit
            "nokey": {"other": 1},
            "nan": {"pk": "nan", "f": float("nan")},
            "emptyset": {"pk": "e", "s": set()},
            "mixed": {"pk": "m", "s": {1, "a"}},
            "names": {"pk": "n", 5: "five"},
            "deep": {"pk": "d", "l": [[{"x": {"y": object()}}]]},
            "typo": [{"pk": "a"}, "b"],
        }[item["case"]]

    cases = ["a", "big", "nokey", "nan", "emptyset", "mixed", "names", "deep", "typo"]
    (batch,) = made_batches(make, [{"case": c} for c in cases])
    (item,) = [orjson.loads(i) for i in batch.items]
    assert {k: v for k, v in item.items() if k != "ns"} == {
        "pk": {"S": "p"}, "f": {"N": "0.1"}, "b": {"B": "AA=="}, "ss": {"SS": ["x"]},
        "t": {"L": [{"N": "1"}, {"N": "2"}]},
    }  # fmt: skip
    assert sorted(item["ns"]["NS"]) == ["1", "2.5"]
    assert [(r.index, r.error.code, r.error.message) for r in batch.rejected] == [
        (1, "ItemTooLarge", "the item is 410,009 bytes as DynamoDB counts them; the limit is "
         "409,600"),
        (2, "MissingKey", "key attribute 'pk' is missing"),
        (3, "BadNumber", "'nan' is not a number DynamoDB can store"),
        (4, "EmptySet", "an empty SS set: DynamoDB stores no empty sets"),
        (5, "TransformError", "the transform returned attribute 's', which is a set of int, "
         "str: DynamoDB sets hold only strings, only numbers or only bytes"),
        (6, "TransformError", "the transform returned attribute '5', which is named by an int; "
         "attribute names are strings"),
        (7, "TransformError", "the transform returned attribute 'l[0][0].x.y', which is an "
         "object: DynamoDB cannot store that; use str, int, Decimal, float, bool, None, bytes, "
         "dict, list or set"),
        (8, "TransformError", "the transform returned a str as item 1 of a list, not a dict"),
    ]  # fmt: skip
    kept = {r.index: json.loads(r.kept or "null") for r in batch.rejected}
    assert kept[2] == {"M": {"other": {"N": "1"}}}
    assert kept[3] == {"M": {"pk": {"S": "nan"}, "f": {"N": "nan"}}}
    assert kept[7] == {"$repr": "{'pk': 'd', 'l': [[{'x': {'y': <object object at " +
                       kept[7]["$repr"].split(" at ")[1]}  # fmt: skip


def test_a_folder_takes_the_transform_and_resumes_only_with_the_same(tmp_path: Path) -> None:
    folder = tmp_path / "dumps"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.json").write_text(json.dumps([{"pk": f"{name}{i}"} for i in range(10)]))
    code = tmp_path / "up.py"
    code.write_text("def up(item):\n    return {'pk': item['pk'].upper()}\n\n"
                    "def same(item):\n    return item\n")  # fmt: skip
    fake = FakeDynamo()
    fake.on_call = lambda items: setattr(fake, "down", (0.0, float("inf")))  # down after one
    ledger = tmp_path / "l.db"
    settings = WriteSettings(batch_size=5, concurrency=1)
    up = ImportOptions(transform=f"{code}:up", settings=settings)
    with pytest.raises(ServiceError):
        import_folder(folder, "t", up, ledger=ledger, client=fake, retry=STUBBORN)
    fake.on_call, fake.down = None, None
    same = ImportOptions(transform=f"{code}:same", settings=settings)
    with pytest.raises(UsageError, match=f"the run used {code}:up, not {code}:same"):
        import_folder(folder, "t", same, ledger=ledger, client=fake, retry=FAST)
    result = import_folder(folder, "t", up, ledger=ledger, client=fake, retry=FAST)
    assert [f.action for f in result.files] == ["resumed", "imported"]
    assert sorted(k[0] for k in fake.items) == sorted(f"{n}{i}" for n in "AB" for i in range(10))


def test_the_key_is_judged_on_what_the_transform_makes(tmp_path: Path, ledger: Path) -> None:
    """The dump has no `pk`; the transform builds it. The early key check (every one of the
    first items failing the key the same way) must look at the transform's items, or it
    would stop a run, and refuse to create a table, that is perfectly right."""
    dump = tmp_path / "ids.jsonl"
    dump.write_text("".join(json.dumps({"id": f"i{n}", "n": n}) + "\n" for n in range(40)))
    spec = f"{tmp_path / 'key.py'}:key"
    (tmp_path / "key.py").write_text("def key(item):\n    return {'pk': item.pop('id'), **item}\n")
    assert validate_file(dump, (KeySpec("pk", "S"),), transform=spec).clean
    fake = FakeDynamo()
    result = import_file(
        dump, "t", ImportOptions(transform=spec), ledger=ledger, client=fake, retry=FAST
    )
    assert (result.items_written, result.dead_letters) == (40, 0)
    with pytest.raises(KeyMismatchError, match="'pk' is missing"):  # and without it, it stops
        validate_file(dump, (KeySpec("pk", "S"),))
