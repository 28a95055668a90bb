"""`verify`'s choices and remedies against DynamoDB Local: the cheaper way chosen and said
before reading (`--dry-run` stops there), a sample, `--repair` (through the run's writer,
its refusals dead letters of the run), several runs and a folder's, `start --verify`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import rimport
from test_verify import elements, imported, write_dump

from resumable_import import Ledger, VerifyOptions, verify_run


def _delete(ddb: Any, table: str, *indexes: int) -> None:
    for i in indexes:
        ddb.delete_item(TableName=table, Key={"pk": {"S": f"k{i}"}})


def _change(ddb: Any, table: str, i: int) -> None:
    ddb.update_item(TableName=table, Key={"pk": {"S": f"k{i}"}}, UpdateExpression="SET s = :v",
                    ExpressionAttributeValues={":v": {"S": "changed"}})  # fmt: skip


def _verifications(ledger: Path) -> int:
    with sqlite3.connect(ledger) as db:
        return int(db.execute("SELECT count(*) FROM verifications").fetchone()[0])


def test_a_dry_run_says_the_plan_and_reads_nothing_of_the_table(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    big = [{"pk": f"k{i}", "s": "x" * 5000} for i in range(40)]  # 2 units each by key
    run_id = imported(write_dump(tmp_path / "d.json", big), table, endpoint, ledger)
    shown = rimport("verify", run_id, "--dry-run", "--json", "--ledger", ledger)
    assert shown.returncode == 0, shown.stderr
    got = json.loads(shown.stdout)
    assert got["dry_run"] and got["read_units"] == 0 and got["items"] == 0
    assert got["plan"]["read_units_by_key"] == 80.0 and got["plan"]["method"] == "scan"
    assert "reading the table by a parallel scan (fewer read units)" in shown.stderr
    assert "verified" not in shown.stderr and _verifications(ledger) == 0

    asked = rimport("verify", run_id, "--dry-run", "--method", "get", "--ledger", ledger)
    assert "reading the table by key (as asked): about 80 read units for 40 items" in (asked.stderr)
    # A table much larger than the dump: by key is the cheaper way.
    for i in range(400):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"other{i}"}, "s": {"S": "y" * 3000}})
    larger = verify_run(run_id, VerifyOptions(dry_run=True), ledger=ledger)
    assert larger.plan is not None and larger.plan["method"] in ("get", "scan")
    assert larger.plan["read_units_by_scan"] >= 60  # at least the dump's own bytes
    extra = verify_run(run_id, VerifyOptions(dry_run=True, extra=True), ledger=ledger)
    assert extra.plan is not None
    assert extra.plan["why"] == "the only way to find extra items" and extra.method == "scan"


def test_a_sample_checks_a_share_of_the_keys_and_says_so(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    run_id = imported(write_dump(tmp_path / "d.json", elements(2000)), table, endpoint, ledger)
    _delete(ddb, table, *range(0, 2000, 10))  # 200 of 2,000 gone
    half = verify_run(run_id, VerifyOptions(sample=0.5, method="get"), ledger=ledger)
    assert 800 < half.items < 1200 and half.sample == 0.5
    assert 50 < half.missing < 150 and half.identical == half.items - half.missing
    whole = verify_run(run_id, ledger=ledger)
    assert (whole.items, whole.missing) == (2000, 200)
    said = rimport("verify", run_id, "--sample", "0.1", "--ledger", ledger)
    assert said.returncode == 3
    assert "(a sample of 10.00% of the keys)" in said.stderr
    last = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert last["verified"]["sample"] == 0.1
    bad = rimport("verify", run_id, "--sample", "0", "--ledger", ledger)
    assert bad.returncode == 2
    assert "error: --sample 0.0: a share of the keys, more than 0 and at most 1" in bad.stderr


class Refusing:
    """DynamoDB Local, but BatchWriteItem refuses the item of one key as invalid (as
    DynamoDB refuses an item too large): a repair's write that cannot succeed."""

    def __init__(self, client: Any, key: str) -> None:
        self._client, self._key = client, key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, Any], **kw: Any) -> Any:
        ((_, requests),) = RequestItems.items()
        if any(r["PutRequest"]["Item"]["pk"] == {"S": self._key} for r in requests):
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Item too large"}},
                "BatchWriteItem",
            )
        return self._client.batch_write_item(RequestItems=RequestItems, **kw)


def test_repair_writes_what_differs_and_a_refusal_becomes_a_dead_letter(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    items = [*elements(100), {"pk": "k4", "s": "later", "n": 2}]  # k4's later element wins
    run_id = imported(write_dump(tmp_path / "d.json", items), table, endpoint, ledger)
    _delete(ddb, table, 4, 10, 20)
    _change(ddb, table, 30)
    found = verify_run(run_id, VerifyOptions(repair=True, method="get"), ledger=ledger,
                       client=Refusing(ddb, "k20"))  # fmt: skip
    assert (found.missing, found.different, found.repaired, found.unrepaired) == (3, 1, 3, 1)
    assert not found.ok
    k4 = ddb.get_item(TableName=table, Key={"pk": {"S": "k4"}}, ConsistentRead=True)["Item"]
    assert k4["s"] == {"S": "later"} and k4["n"] == {"N": "2"}
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "k30"}})["Item"]["s"] == {"S": "v30"}
    with Ledger(ledger) as book:
        (letter,) = book.dead_letters(run_id)
        run = book.run(run_id)
    assert (letter.index, letter.code, letter.retryable) == (20, "ValidationException", False)
    assert run.items_written == 101  # a repair's writes are not new items of the dump

    again = rimport("verify", run_id, "--ledger", ledger)  # the refused one: a dead letter now
    assert again.returncode == 0, again.stderr
    assert "99 items: 99 identical, 0 missing, 0 different, 1 dead letter expected missing" in (
        again.stderr
    )
    status = rimport("status", run_id, "--ledger", ledger).stdout
    assert "repaired 3 items, 1 still not as the dump has them" not in status  # the last one
    assert "99 identical" in status


def test_several_runs_and_a_folder_are_verified_each(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    folder = tmp_path / "dump"
    folder.mkdir()
    write_dump(folder / "a.json", elements(20))
    write_dump(folder / "b.json", [{"pk": f"b{i}", "s": "x"} for i in range(15)])
    started = rimport("start", folder, "--table", table, "--endpoint", endpoint,
                      "--ledger", ledger)  # fmt: skip
    assert started.returncode == 0, started.stderr
    ids = started.stdout.split()
    assert len(ids) == 2
    _delete(ddb, table, 3)
    both = rimport("verify", folder, "--json", "--progress", "none", "--ledger", ledger)
    assert both.returncode == 3, both.stderr
    results = [json.loads(line) for line in both.stdout.splitlines()]
    assert sorted((r["items"], r["missing"]) for r in results) == [(15, 0), (20, 1)]
    one = rimport("verify", ids[0][:6], ids[1], "--ledger", ledger)
    assert one.stderr.count("verified ") == 2
    unknown = rimport("verify", ids[0], "nosuchrun", "--ledger", ledger)
    assert unknown.returncode == 2 and "nosuchrun" in unknown.stderr


def test_start_verify_reads_the_table_back_after_the_import(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", elements(50))
    done = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--verify",
                   "--ledger", ledger)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "verified 50 items: 50 identical, 0 missing, 0 different" in done.stderr
    assert _verifications(ledger) == 1
    piped = rimport("start", "-", "--table", table, "--endpoint", endpoint, "--verify",
                    "--ledger", ledger)  # fmt: skip
    assert piped.returncode == 2
    assert "a stream cannot be read again" in piped.stderr


@pytest.mark.parametrize("method", ["get", "scan"])
def test_repair_is_verified_by_either_method(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path, method: str
) -> None:
    run_id = imported(write_dump(tmp_path / "d.json", elements(60)), table, endpoint, ledger)
    _delete(ddb, table, 1, 59)
    mended = verify_run(run_id, VerifyOptions(method=method, repair=True), ledger=ledger)
    assert (mended.missing, mended.repaired, mended.unrepaired, mended.ok) == (2, 2, 0, True)
    assert verify_run(run_id, ledger=ledger).identical == 60
