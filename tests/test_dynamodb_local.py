"""The CLI against a real DynamoDB Local: what it refuses and how it says so, and the table it
creates. What lands in the table, the same on every backend, is `test_contract.py`'s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import make_dump
from conftest import assert_table_equals, rimport, scan


def status(ledger: Path, run_id: str) -> dict[str, Any]:
    out = rimport("status", run_id, "--json", "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_bad_items_are_dead_lettered_and_the_rest_written(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    items = [{"pk": f"k{i}", "v": i} for i in range(60)]
    items[7] = {"pk": "k7", "blob": "x" * 410_000}  # over DynamoDB's 400 KB item limit
    items[33] = {"no_key": True}
    items[50] = {"pk": 5}  # the key has the wrong type
    dump = tmp_path / "d.json"
    dump.write_text(json.dumps(items[:45])[:-1] + ", 17, " + json.dumps(items[45:])[1:])
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 3, out.stderr
    run_id = out.stdout.splitlines()[0]
    assert "4 dead-lettered" in out.stderr
    assert "none of them can succeed by retrying" in out.stderr  # all refused for the item
    assert f"rimport dead-letters {run_id}" in out.stderr
    good = [it for i, it in enumerate(items) if i not in (7, 33, 50)]
    assert_table_equals(ddb, table, good)
    st = status(ledger, run_id)
    assert (st["state"], st["items_committed"], st["dead_letters"]) == (
        "completed_with_failures",
        61,
        4,
    )
    detail = rimport("status", run_id, "--ledger", ledger).stdout
    for index, code in ((7, "ItemTooLarge"), (33, "MissingKey"), (45, "NotAnObject"),
                        (51, "KeyType")):  # fmt: skip
        assert f"  {index}  {code}: " in detail
    again = rimport("retry-failed", run_id, "--ledger", ledger)
    assert again.returncode == 3
    assert f"none of run {run_id}'s 4 dead letters can succeed by retrying: " in again.stderr
    assert "1 KeyType (not retryable)" in again.stderr
    nothing = rimport("retry-failed", "--ledger", ledger)
    assert (nothing.returncode, nothing.stderr) == (0, "no run has dead letters worth retrying\n")


def test_a_missing_table_is_a_clear_error(tmp_path: Path, endpoint: str, ledger: Path) -> None:
    dump = make_dump.write(tmp_path / "d.json", 3)
    out = rimport("start", dump, "--table", "no-such-table", "--endpoint", endpoint,
                  "--ledger", ledger)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"error: table 'no-such-table' does not exist at {endpoint}",
        "hint: create it, or pass --create-table --key NAME:S [--sort-key NAME:S]",
    ]


def test_create_table_makes_the_table_with_the_given_keys(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    dump = make_dump.write(tmp_path / "d.json", 50)
    out = rimport("start", dump, "--table", "made-here", "--endpoint", endpoint, "--ledger", ledger,
                  "--create-table", "--key", "pk:S", "--sort-key", "n:N")  # fmt: skip
    assert out.returncode == 0, out.stderr
    schema = ddb.describe_table(TableName="made-here")["Table"]["KeySchema"]
    assert [(k["AttributeName"], k["KeyType"]) for k in schema] == [("pk", "HASH"), ("n", "RANGE")]
    assert len(scan(ddb, "made-here")) == 50


def test_a_remote_endpoint_is_refused_before_anything_happens(tmp_path: Path, ledger: Path) -> None:
    dump = make_dump.write(tmp_path / "d.json", 3)
    out = rimport("start", dump, "--table", "t", "--endpoint", "https://dynamodb.us-east-1.amazonaws.com",
                  "--ledger", ledger)  # fmt: skip
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines()[0].startswith(
        "error: refusing to write to https://dynamodb.us-east-1.amazonaws.com"
    )
    assert "--allow-remote" in out.stderr
    assert rimport("status", "--json", "--ledger", ledger).stdout.strip() == "[]"
