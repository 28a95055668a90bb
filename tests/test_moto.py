"""The CLI against a second DynamoDB implementation, moto in server mode: the array, JSON Lines
and DynamoDB JSON dumps land item for item, `status` agrees, and a run killed with SIGKILL
resumes to the same table. Everything else is proved on DynamoDB Local; this is the check
that rimport relies on the API, not on one server's behaviour."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import make_dump
import moto_server
import pytest
from conftest import RIMPORT, assert_table_equals, dump_items, kill_when, rimport

from resumable_import.ledger import Ledger


@pytest.fixture(scope="session")
def moto(_aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server for this test session; its URL."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server.running(log=log) as url:
        yield url


@pytest.fixture(scope="session")
def mddb(moto: str) -> Iterator[Any]:
    client = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1")
    yield client
    client.close()  # moto's server waits for its open keep-alive connections as it stops


_tables = iter(range(10**6))


@pytest.fixture
def mtable() -> str:
    """A fresh table name: rimport creates the table itself with `--create-table`."""
    return f"moto-{next(_tables)}"


def start(dump: Path, moto: str, table: str, ledger: Path, *extra: str) -> tuple[str, str]:
    """`rimport start` into a table it creates; the run id and stderr, once it succeeded."""
    out = rimport("start", dump, "--endpoint", moto, "--table", table, "--create-table",
                  "--key", "pk:S", "--ledger", ledger, *extra, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[0], out.stderr


def assert_completed(ledger: Path, run_id: str, count: int) -> None:
    out = rimport("status", run_id, "--json", "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    got = [st[k] for k in ("run_id", "state", "items_committed", "items_written", "dead_letters")]
    assert got == [run_id, "completed", count, count, 0] and st["error"] is None


def plain_item(i: int, rng: random.Random) -> dict[str, Any]:
    """A plain JSON item with what make_dump's items hold (unicode, 38 digits, literals,
    nesting, empty containers) in a third of the attributes: moto's server spends about
    0.2 ms of CPU per attribute value it returns, so reading back its ~30-value items
    would take most of this file's time."""
    digits = rng.randint(1, 38)
    return {
        "pk": f"item#{i:06d}",
        "n": i,
        "title": " ".join(rng.choice(make_dump.WORDS) for _ in range(3)),
        "price": Decimal(rng.randrange(10 ** (digits - 1), 10**digits)).scaleb(
            -rng.randint(0, digits)
        ),
        "active": rng.random() < 0.5,
        "missing": None,
        "profile": {"geo": [Decimal("-23.5505199"), {}], "tags": []},
    }


def small_item(i: int, rng: random.Random) -> dict[str, Any]:
    """An item whose content only tells it from the others, for the crash test."""
    return {"pk": f"item#{i:06d}", "n": i, "title": rng.choice(make_dump.WORDS)}


def plain_dump(
    path: Path, count: int, item: Callable[[int, random.Random], Any] = plain_item
) -> Path:
    """`count` items as a JSON array, or as JSON Lines for a `.jsonl` path."""
    rng = random.Random(3)
    lines = [make_dump.encode(item(i, rng)) for i in range(count)]
    text = "\n".join(lines) if path.suffix == ".jsonl" else "[\n" + ",\n".join(lines) + "\n]"
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "count"), [("dump.json", 2_000), ("dump.jsonl", 2_000)])
def test_a_plain_json_dump_lands_item_for_item(
    tmp_path: Path, moto: str, mddb: Any, mtable: str, ledger: Path, name: str, count: int
) -> None:
    dump = plain_dump(tmp_path / name, count)
    run_id, err = start(dump, moto, mtable, ledger)
    assert f"run {run_id}: completed: {count:,} items read, {count:,} written" in err
    assert_table_equals(mddb, mtable, dump_items(dump))
    assert_completed(ledger, run_id, count)


def typed_item(i: int, rng: random.Random) -> dict[str, Any]:
    """An item in DynamoDB JSON using every type, with numbers at the edges of what DynamoDB
    keeps (38 digits, tiny and huge exponents) and binary that is not text; the edge numbers
    sit in a set, whose members moto returns at little cost (see `plain_item`)."""

    def blob() -> str:
        return base64.b64encode(rng.randbytes(rng.randint(1, 40))).decode()

    digits = "".join(rng.choice("0123456789") for _ in range(37))
    return {
        "pk": {"S": f"typed#{i:06d}"},
        "n": {"N": str(i)},
        "exact": {"N": f"-{rng.randint(1, 9)}{digits}"},
        "text": {"S": rng.choice(make_dump.WORDS)},
        "bin": {"B": blob()},
        "ok": {"BOOL": rng.random() < 0.5},
        "nothing": {"NULL": True},
        "ss": {"SS": sorted({rng.choice(make_dump.WORDS) for _ in range(3)})},
        "ns": {"NS": [str(i), "0.10", f"{rng.randint(1, 9)}.5E-{rng.randint(100, 129)}",
                      f"-9.{rng.randint(0, 10**6)}E+{rng.randint(100, 125)}"]},
        "bs": {"BS": list(dict.fromkeys(blob() for _ in range(3)))},
        "m": {"M": {
            "l": {"L": [{"N": "1.50"}, {"NULL": True}, {"B": blob()}, {"M": {"s": {"S": ""}}}]},
            "deep": {"M": {"empty": {"L": []}}},
        }},
    }  # fmt: skip


def typed_value(value: dict[str, Any]) -> Any:
    """One DynamoDB JSON attribute as comparable data: numbers by value, binary as bytes
    (base64 in the file, bytes from boto3), sets without order. Tagged by type, so an S
    never equals an N."""
    ((kind, x),) = value.items()

    def binary(b: str | bytes) -> bytes:
        return base64.b64decode(b) if isinstance(b, str) else bytes(b)

    if kind == "N":
        return ("N", Decimal(x))
    if kind == "B":
        return ("B", binary(x))
    if kind == "NS":
        return ("NS", frozenset(Decimal(e) for e in x))
    if kind == "BS":
        return ("BS", frozenset(binary(e) for e in x))
    if kind == "SS":
        return ("SS", frozenset(x))
    if kind == "M":
        return ("M", {k: typed_value(v) for k, v in x.items()})
    if kind == "L":
        return ("L", [typed_value(v) for v in x])
    return (kind, x)


def test_a_dynamodb_json_dump_lands_with_every_type(
    tmp_path: Path, moto: str, mddb: Any, mtable: str, ledger: Path
) -> None:
    rng = random.Random(10)
    items = [typed_item(i, rng) for i in range(2_000)]
    dump = tmp_path / "typed.json"
    dump.write_text(json.dumps(items), encoding="utf-8")
    run_id, _ = start(dump, moto, mtable, ledger, "--format", "ddb-json")
    got = {
        item["pk"]["S"]: {k: typed_value(v) for k, v in item.items()}
        for page in mddb.get_paginator("scan").paginate(TableName=mtable)
        for item in page["Items"]
    }
    want = {item["pk"]["S"]: {k: typed_value(v) for k, v in item.items()} for item in items}
    assert sorted(got) == sorted(want), "the table and the file hold different keys"
    for key, item in want.items():
        assert got[key] == item, f"item {key} differs"
    assert_completed(ledger, run_id, len(items))


def test_killed_with_sigkill_and_resumed_the_table_equals_the_file(
    tmp_path: Path, moto: str, mddb: Any, mtable: str, ledger: Path
) -> None:
    count = 3_000
    dump = plain_dump(tmp_path / "dump.jsonl", count, small_item)
    proc = subprocess.Popen(
        [RIMPORT, "start", str(dump), "--endpoint", moto, "--table", mtable, "--create-table",
         "--key", "pk:S", "--ledger", str(ledger)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.communicate()[1]
    with Ledger(ledger) as book:
        kill_when(proc, book, run_id, count // 4)
        run = book.run(run_id)
        assert run.state == "interrupted" and count // 4 <= run.items_committed < count

    out = rimport("resume", run_id, "--ledger", ledger, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"run {run_id}: completed: {count:,} items read" in out.stderr
    assert_table_equals(mddb, mtable, dump_items(dump))
    assert_completed(ledger, run_id, count)


def test_what_moto_would_store_but_dynamodb_refuses_is_dead_lettered_by_rimport(
    tmp_path: Path, moto: str, mddb: Any, mtable: str, ledger: Path
) -> None:
    """moto takes 39-digit numbers, magnitudes over 9.99E+125, empty sets and repeated set
    members, all of which DynamoDB refuses: rimport's own checks must refuse them first, so
    that a run means the same on every server."""
    refused = {
        "k1": ({"N": "1" * 39}, "BadNumber"),
        "k2": ({"N": "1E+126"}, "BadNumber"),
        "k3": ({"SS": []}, "EmptySet"),
        "k4": ({"SS": ["x", "x"]}, "SetDuplicates"),
        "k5": ({"NS": ["1", "1.0"]}, "SetDuplicates"),
    }
    items = [{"pk": {"S": "k0"}, "v": {"N": "1"}}]
    items += [{"pk": {"S": key}, "v": value} for key, (value, _) in refused.items()]
    items.append({"pk": {"S": "k6"}, "v": {"NS": ["1", "2"]}})
    dump = tmp_path / "typed.jsonl"
    dump.write_text("\n".join(map(json.dumps, items)) + "\n", encoding="utf-8")
    out = rimport("start", dump, "--endpoint", moto, "--table", mtable, "--create-table",
                  "--key", "pk:S", "--ledger", ledger, "--format", "ddb-json")  # fmt: skip
    assert out.returncode == 3, out.stderr
    run_id = out.stdout.splitlines()[0]
    keys = sorted(i["pk"]["S"] for p in mddb.get_paginator("scan").paginate(TableName=mtable)
                  for i in p["Items"])  # fmt: skip
    assert keys == ["k0", "k6"]
    detail = rimport("status", run_id, "--ledger", ledger).stdout
    for index, (_, code) in enumerate(refused.values(), start=1):
        assert f"  {index}  {code}: " in detail
