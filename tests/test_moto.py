"""The CLI against a second DynamoDB implementation, moto in server mode: a run killed with
SIGKILL resumes to the same table, and what moto would store but DynamoDB refuses is refused by
rimport first. What lands in the table, and what the writer is told, is proved on moto as on
DynamoDB Local and the fake by `test_contract.py`: rimport relies on the API, not on one
server's behaviour."""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import make_dump
import pytest
from conftest import RIMPORT, assert_table_equals, dump_items, kill_when, rimport

from resumable_import.ledger import Ledger

_tables = iter(range(10**6))


@pytest.fixture
def mtable() -> str:
    """A fresh table name: rimport creates the table itself with `--create-table`."""
    return f"moto-{next(_tables)}"


def assert_completed(ledger: Path, run_id: str, count: int) -> None:
    out = rimport("status", run_id, "--json", "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    got = [st[k] for k in ("run_id", "state", "items_committed", "items_written", "dead_letters")]
    assert got == [run_id, "completed", count, count, 0] and st["error"] is None


def small_item(i: int, rng: random.Random) -> dict[str, Any]:
    """An item whose content only tells it from the others, for the crash test."""
    return {"pk": f"item#{i:06d}", "n": i, "title": rng.choice(make_dump.WORDS)}


def plain_dump(path: Path, count: int, item: Callable[[int, random.Random], Any]) -> Path:
    """`count` items as a JSON array, or as JSON Lines for a `.jsonl` path."""
    rng = random.Random(3)
    lines = [make_dump.encode(item(i, rng)) for i in range(count)]
    text = "\n".join(lines) if path.suffix == ".jsonl" else "[\n" + ",\n".join(lines) + "\n]"
    path.write_text(text + "\n", encoding="utf-8")
    return path


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
