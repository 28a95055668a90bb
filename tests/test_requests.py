"""BatchWriteItem request files (AWS's developer-guide sample data shape): puts and
deletes in file order, each table a run, against DynamoDB Local; unprocessed deletes
against the fake."""

from __future__ import annotations

import json
import os
from itertools import count
from pathlib import Path
from typing import Any

from conftest import kill_when, rimport
from fakes import FakeDynamo
from test_crash import spawn

from resumable_import.ledger import Ledger
from resumable_import.reader import Dump
from resumable_import.transport import SyncTransport
from resumable_import.writer import RetryPolicy, Writer

_names = count()


def _put(n: int, title: str) -> dict[str, Any]:
    item = {"Id": {"N": str(n)}, "Title": {"S": title}, "Tags": {"SS": ["a", "b"]}}
    return {"PutRequest": {"Item": {**item, "Price": {"N": "1.5"}}}}


def _delete(n: int) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": {"Id": {"N": str(n)}}}}


def _write(path: Path, tables: dict[str, list[dict[str, Any]]]) -> Path:
    path.write_text(json.dumps(tables, indent=4))
    os.chmod(path, 0o600)
    return path


def _replay(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the table must hold: the requests applied one by one, independently of rimport."""
    table: dict[str, dict[str, Any]] = {}
    for e in entries:
        if "PutRequest" in e:
            item = e["PutRequest"]["Item"]
            table[item["Id"]["N"]] = item
        else:
            table.pop(e["DeleteRequest"]["Key"]["Id"]["N"], None)
    return table


def _scan(ddb: Any, table: str) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if "SS" in item.get("Tags", {}):
                item["Tags"]["SS"] = sorted(item["Tags"]["SS"])
            items[item["Id"]["N"]] = item
    return items


# Eight requests, as ProductCatalog.json has eight: a put then a delete of one key (101
# must end deleted), a delete then a put of another (103 must end present).
CATALOG = [
    _put(101, "Book 101"), _put(102, "Book 102"), _delete(101), _delete(103),
    _put(103, "Book 103"), _put(104, "Bicycle"), _put(105, "Bicycle 2"), _delete(999),
]  # fmt: skip


def test_auto_reads_a_request_file_as_its_table(tmp_path: Path) -> None:
    dump = Dump.open(_write(tmp_path / "ProductCatalog.json", {"ProductCatalog": CATALOG}))
    assert str(dump.shape) == "table:ProductCatalog" and dump.items_as == "request-items"
    assert [raw.value for raw in dump.items()] == CATALOG


def test_a_request_file_is_written_and_deleted_in_order(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    table = f"ProductCatalog{next(_names)}"
    path = _write(tmp_path / "ProductCatalog.json", {table: CATALOG})
    done = rimport("start", path, "--create-table", "--key", "Id:N", "--endpoint", endpoint,
                   "--ledger", ledger)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _scan(ddb, table) == _replay(CATALOG)
    assert set(_scan(ddb, table)) == {"102", "103", "104", "105"}
    status = rimport("status", "--json", "--ledger", ledger)
    (run,) = json.loads(status.stdout)
    assert (run["items_committed"], run["items_written"], run["items_deleted"]) == (8, 5, 3)
    text = rimport("status", run["run_id"], "--ledger", ledger).stdout
    assert "items deleted" in text and "3" in text.split("items deleted")[1].splitlines()[0]
    again = rimport("start", path, "--endpoint", endpoint, "--ledger", ledger)
    assert again.returncode == 0 and "skipped" in again.stdout + again.stderr


def test_each_table_of_a_file_is_a_run_of_its_own(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    n = next(_names)
    forum, thread = f"Forum{n}", f"Thread{n}"
    tables = {forum: [_put(1, "DynamoDB"), _put(2, "S3"), _delete(2)],
              thread: [_delete(7), _put(7, "a thread"), _put(8, "another")]}  # fmt: skip
    path = _write(tmp_path / "Forum.json", tables)
    refused = rimport("start", path, "--table", "Other", "--endpoint", endpoint,
                      "--ledger", ledger)  # fmt: skip
    assert refused.returncode == 2 and "holds write requests for 2 tables" in refused.stderr
    done = rimport("start", path, "--create-table", "--key", "Id:N", "--endpoint", endpoint,
                   "--ledger", ledger)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name, entries in tables.items():
        assert _scan(ddb, name) == _replay(entries)
    runs = json.loads(rimport("status", "--json", "--ledger", ledger).stdout)
    assert sorted((r["table"], r["items_deleted"]) for r in runs) == [(forum, 1), (thread, 1)]


def test_table_renames_a_one_table_file(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    table = f"Renamed{next(_names)}"
    path = _write(tmp_path / "ProductCatalog.json", {"ProductCatalog": CATALOG})
    done = rimport("start", path, "--table", table, "--create-table", "--key", "Id:N",
                   "--endpoint", endpoint, "--ledger", ledger)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _scan(ddb, table) == _replay(CATALOG)


def test_a_corrected_command_on_a_request_file_is_not_refused(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    """Read first with the wrong format, the run writes nothing; the corrected command
    imports the file as requests, saying what became of that run, not resuming it."""
    table = f"Books{next(_names)}"
    ddb.create_table(
        TableName=table, KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    path = _write(tmp_path / "ProductCatalog.json", {"ProductCatalog": CATALOG})
    args = ("--table", table, "--endpoint", endpoint, "--ledger", ledger)
    wrong = rimport("start", path, "--format", "json", *args)
    assert wrong.returncode == 2, wrong.stderr
    done = rimport("start", path, *args)
    assert done.returncode == 0, done.stderr
    assert "stopped before writing anything" in done.stderr
    assert _scan(ddb, table) == _replay(CATALOG)


def test_dead_letters_of_a_request_file_go_out_as_one_and_back_in(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    """A put refused before sending (its key a string, the table's a number) goes out as
    a request file of the run's table; fixed, `start` of that file writes it."""
    table = f"Fixed{next(_names)}"
    bad_put = {"PutRequest": {"Item": {"Id": {"S": "106"}, "Title": {"S": "Book 106"}}}}
    entries = [*CATALOG[:3], bad_put, _put(107, "Book 107")]
    path = _write(tmp_path / "ProductCatalog.json", {table: entries})
    done = rimport("start", path, "--create-table", "--key", "Id:N", "--endpoint", endpoint,
                   "--ledger", ledger)  # fmt: skip
    assert done.returncode == 3, done.stderr  # dead letters
    (run,) = json.loads(rimport("status", "--json", "--ledger", ledger).stdout)
    out = tmp_path / "dead.json"
    exported = rimport("dead-letters", run["run_id"], "--out", out, "--ledger", ledger)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text()) == {table: [bad_put]}
    assert f"`rimport start {out} --endpoint {endpoint}" in exported.stderr
    refused = rimport("dead-letters", run["run_id"], "--format", "jsonl", "--ledger", ledger)
    assert refused.returncode == 2 and "write requests, not items" in refused.stderr
    fixed = json.loads(out.read_text())
    fixed[table][0]["PutRequest"]["Item"]["Id"] = {"N": "106"}
    out.write_text(json.dumps(fixed))
    again = rimport("start", out, "--endpoint", endpoint, "--ledger", ledger)
    assert again.returncode == 0, again.stderr
    want = _replay([*CATALOG[:3], fixed[table][0], _put(107, "Book 107")])
    assert _scan(ddb, table) == want


def test_killed_and_resumed_a_request_file_ends_as_the_file_says(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    table = f"Big{next(_names)}"
    entries: list[dict[str, Any]] = []
    for n in range(30_000):  # every key put, a third deleted later, some put again after
        entries.append(_put(n % 12_000, f"v{n}"))
        if n % 3 == 0:
            entries.append(_delete((n * 7) % 12_000))
    path = _write(tmp_path / "big.json", {table: entries})
    proc = spawn("start", path, "--create-table", "--key", "Id:N", "--endpoint", endpoint,
                 "--ledger", ledger, "--batch-size", "5")  # fmt: skip
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.communicate()[1]
    with Ledger(ledger) as book:
        at = kill_when(proc, book, run_id, 5_000)
        assert 0 < at < len(entries)
    done = rimport("start", path, "--endpoint", endpoint, "--ledger", ledger)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout + done.stderr
    assert _scan(ddb, table) == _replay(entries)


def test_deletes_handed_back_unprocessed_are_sent_again() -> None:
    fake = FakeDynamo("t")
    fake.items[("1",)] = {"pk": {"S": "1"}}
    fake.items[("2",)] = {"pk": {"S": "2"}}
    fake.unprocessed["2"] = 2  # the delete of 2 comes back twice, then goes through
    writer = Writer(SyncTransport(fake), "t", ("pk",), RetryPolicy(base_delay=0), entries=True)
    entries = [b'{"DeleteRequest":{"Key":{"pk":{"S":"2"}}}}',
               b'{"PutRequest":{"Item":{"pk":{"S":"3"}}}}']  # fmt: skip
    assert writer.write(entries, [("2",), ("3",)]) == []
    assert set(fake.items) == {("1",), ("3",)}
    assert fake.calls == 3


def test_a_request_file_run_is_verified_deletes_included_and_repaired(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    """verify reads the file's puts and deletes in order: a key deleted last is right
    absent, and wrong present; `--repair` puts and deletes again, each as the file did."""
    table = f"ProductCatalog{next(_names)}"
    entries = [*CATALOG, _put(200, "put, deleted, put"), _delete(200), _put(200, "last")]
    path = _write(tmp_path / "ProductCatalog.json", {table: entries})
    done = rimport("start", path, "--create-table", "--key", "Id:N", "--endpoint", endpoint,
                   "--ledger", ledger)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(rimport("status", "--json", "--ledger", ledger).stdout)
    gone = ["101", "999"]  # deleted last
    assert not set(gone) & set(_replay(entries)) and "200" in _replay(entries)
    for method in ("get", "scan"):
        same = rimport("verify", run["run_id"], "--method", method, "--json", "--ledger", ledger)
        assert same.returncode == 0, same.stderr
        assert json.loads(same.stdout)["identical"] == len(_replay(entries)) + len(gone)

    put_back = {"Id": {"N": gone[0]}, "Title": {"S": "back"}}  # behind rimport's back
    ddb.put_item(TableName=table, Item=put_back)
    ddb.delete_item(TableName=table, Key={"Id": {"N": "200"}})
    ddb.update_item(TableName=table, Key={"Id": {"N": "102"}}, UpdateExpression="SET Title = :t",
                    ExpressionAttributeValues={":t": {"S": "changed"}})  # fmt: skip
    for method in ("get", "scan"):
        found = rimport("verify", run["run_id"], "--method", method, "--json", "--ledger", ledger)
        assert found.returncode == 3, found.stderr
        answer = json.loads(found.stdout)
        assert (answer["missing"], answer["different"]) == (1, 2), answer
        kept = [d for d in answer["differences"] if d["not_deleted"]]
        assert [d["key"] for d in kept] == [{"Id": {"N": gone[0]}}], answer["differences"]
    text = rimport("verify", run["run_id"], "--ledger", ledger).stderr
    assert f"(Id={gone[0]}): still in the table, though the file deletes it" in text
    mended = rimport("verify", run["run_id"], "--repair", "--json", "--ledger", ledger)
    assert mended.returncode == 0, mended.stderr
    assert json.loads(mended.stdout)["repaired"] == 3
    assert _scan(ddb, table) == _replay(entries)
