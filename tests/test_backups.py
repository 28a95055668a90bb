"""Dumps from the wild: dynamodump backups (a folder per table: schema.json and data pages),
imported into the tables they describe and compared with their pages item by item."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from conftest import assert_items_equal, rimport, scan

from resumable_import.folder import plan

_names = count()
_to, _from = TypeSerializer(), TypeDeserializer()


def typed(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _to.serialize(v) for k, v in item.items()}


def write_backup(dump: Path, table: str, items: list[dict[str, Any]], schema: dict[str, Any],
                 per_page: int = 7) -> None:  # fmt: skip
    """A table's backup as dynamodump writes it: schema.json is DescribeTable's answer,
    each data page a scan's answer (indented), every page but the last with its
    LastEvaluatedKey."""
    (dump / table / "data").mkdir(parents=True)
    described = {"Table": {**schema, "TableName": table, "TableStatus": "ACTIVE",
                           "ItemCount": len(items), "TableSizeBytes": 1234,
                           "TableArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}",
                           "ProvisionedThroughput": {"NumberOfDecreasesToday": 0,
                                                     "ReadCapacityUnits": 5,
                                                     "WriteCapacityUnits": 5}}}  # fmt: skip
    (dump / table / "schema.json").write_text(json.dumps(described, indent=4))
    pages = [items[i : i + per_page] for i in range(0, len(items), per_page)]
    key_names = [k["AttributeName"] for k in schema["KeySchema"]]
    for n, page in enumerate(pages, 1):
        body: dict[str, Any] = {"Items": [typed(i) for i in page], "Count": len(page),
                                "ScannedCount": len(page)}  # fmt: skip
        if n < len(pages):
            body["LastEvaluatedKey"] = typed({k: page[-1][k] for k in key_names})
        body["ResponseMetadata"] = {"HTTPStatusCode": 200, "RetryAttempts": 0}
        path = dump / table / "data" / f"{n:04d}.json"
        path.write_text(json.dumps(body, indent=4, default=_json))
        path.chmod(0o600)


def _json(value: Any) -> Any:
    """As botocore writes them in JSON: binary as base64, numbers as their digits."""
    if isinstance(value, Binary):
        value = value.value
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return str(value)


def simple_schema() -> dict[str, Any]:
    return {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}  # fmt: skip


def indexed_schema() -> dict[str, Any]:
    """A partition and sort key, a global and a local secondary index, as DescribeTable
    gives them (with the statuses and sizes CreateTable does not take)."""
    return {
        "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"},
                      {"AttributeName": "n", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "user", "AttributeType": "S"},
                                 {"AttributeName": "n", "AttributeType": "N"},
                                 {"AttributeName": "city", "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": "by-city", "IndexStatus": "ACTIVE", "IndexSizeBytes": 0, "ItemCount": 0,
            "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
            "IndexArn": "arn:aws:dynamodb:us-east-1:000000000000:table/x/index/by-city",
        }],
        "LocalSecondaryIndexes": [{
            "IndexName": "by-user-city", "IndexSizeBytes": 0, "ItemCount": 0,
            "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"},
                          {"AttributeName": "city", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
    }  # fmt: skip


def people(n: int) -> list[dict[str, Any]]:
    return [{"pk": f"p{i:03d}", "name": f"Zoë {i}", "age": Decimal(i), "tags": {"a", f"t{i}"},
             "blob": Binary(bytes([i % 256]) * 3), "nested": {"list": [i, "x", None, True]},
             "empty": ""} for i in range(n)]  # fmt: skip


def orders(n: int) -> list[dict[str, Any]]:
    return [{"user": f"u{i % 4}", "n": Decimal(i), "city": ["Oslo", "Lima"][i % 2],
             "total": Decimal(f"{i}.25")} for i in range(n)]  # fmt: skip


def by_user_and_n(ddb: Any, table: str) -> dict[tuple[str, Decimal], dict[str, Any]]:
    pages = ddb.get_paginator("scan").paginate(TableName=table)
    items = [{k: _from.deserialize(v) for k, v in i.items()} for p in pages for i in p["Items"]]
    return {(i["user"], i["n"]): i for i in items}


def test_a_dynamodump_backup_goes_into_the_tables_it_describes(
    ddb: Any, endpoint: str, ledger: Path, tmp_path: Path
) -> None:
    suffix = next(_names)
    first, second = f"bk-people-{suffix}", f"bk-orders-{suffix}"
    dump = tmp_path / "dump"
    write_backup(dump, first, people(30), simple_schema())
    write_backup(dump, second, orders(17), indexed_schema(), per_page=5)
    todo = plan(dump, None, None)
    assert [(e.path.name, e.table) for e in todo.entries][3:6] == [
        ("0004.json", second),
        ("0001.json", first),
        ("0002.json", first),
    ]  # tables by name, each table's pages in order
    assert len(todo.entries) == 5 + 4 and todo.fmt == "ddb-json"

    checked = rimport("validate", dump, "--endpoint", endpoint)  # no table yet: the schema's key
    assert checked.returncode == 0, checked.stderr
    assert "unreadable" not in checked.stdout and "schema.json" not in checked.stdout

    out = rimport("start", dump, "--create-table", "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert "one page" not in out.stderr  # a backup's pages are not partial: the rest follows
    assert_items_equal(scan(ddb, first), people(30))
    got = by_user_and_n(ddb, second)
    assert got == {(i["user"], i["n"]): i for i in orders(17)}

    described = ddb.describe_table(TableName=second)["Table"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in described["KeySchema"]] == ["user", "n"]
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == ["by-city"]
    assert [i["IndexName"] for i in described["LocalSecondaryIndexes"]] == ["by-user-city"]
    oslo = ddb.query(TableName=second, IndexName="by-city",
                     KeyConditionExpression="city = :c",
                     ExpressionAttributeValues={":c": {"S": "Oslo"}})  # fmt: skip
    assert oslo["Count"] == 9

    again = rimport("start", dump, "--endpoint", endpoint, "--ledger", ledger)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("skipped") >= 9 or "9 of 9" in again.stderr, again.stderr


def test_one_table_of_a_backup_by_its_folder_or_its_data_folder(
    ddb: Any, endpoint: str, ledger: Path, tmp_path: Path
) -> None:
    name = f"bk-one-{next(_names)}"
    dump = tmp_path / "dump"
    write_backup(dump, name, people(12), simple_schema(), per_page=5)
    assert {e.table for e in plan(dump / name / "data", None, None).entries} == {name}
    checked = rimport("validate", dump / name, "--endpoint", endpoint)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    out = rimport("start", dump / name / "data", "--create-table", "--endpoint", endpoint,
                  "--ledger", ledger)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert_items_equal(scan(ddb, name), people(12))
    renamed = f"{name}-copy"
    out = rimport("start", dump / name, "--table", renamed, "--create-table", "--endpoint",
                  endpoint, "--ledger", ledger)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert_items_equal(scan(ddb, renamed), people(12))


def test_create_table_without_a_key_is_only_for_a_backup(
    endpoint: str, ledger: Path, tmp_path: Path
) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "abc.json").write_text('[{"pk": "a"}]')
    out = rimport("start", tmp_path / "plain", "--create-table", "--endpoint", endpoint,
                  "--ledger", ledger)  # fmt: skip
    assert out.returncode == 2
    assert "--create-table needs --key (only a dynamodump backup" in out.stderr
