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


def test_a_backup_names_how_its_missing_table_is_made_and_keeps_its_own_key(
    ddb: Any, endpoint: str, ledger: Path, tmp_path: Path
) -> None:
    """Without --create-table, the hint is --create-table alone (the backup says the key);
    a --key other than schema.json's is refused: a partition key alone would let items
    that share it overwrite each other, with exit 0."""
    name = f"bk-key-{next(_names)}"
    dump = tmp_path / "dump"
    write_backup(dump, name, orders(9), indexed_schema(), per_page=4)
    missing = rimport("start", dump, "--endpoint", endpoint, "--ledger", ledger)
    assert missing.returncode == 2, missing.stderr
    assert "pass --create-table alone" in missing.stderr
    assert "--key" not in missing.stderr.split("does not exist")[1]
    other = rimport("start", dump, "--create-table", "--key", "user:S", "--endpoint", endpoint,
                    "--ledger", ledger)  # fmt: skip
    assert other.returncode == 2
    assert f"keys table {name!r} by user:S, n:N; --key would create it keyed otherwise" in (
        other.stderr
    )
    assert "hint: leave out --key: --create-table alone creates each table" in other.stderr
    assert name not in ddb.list_tables()["TableNames"]
    done = rimport("start", dump, "--create-table", "--endpoint", endpoint, "--ledger", ledger)
    assert done.returncode == 0, done.stderr
    assert by_user_and_n(ddb, name) == {(i["user"], i["n"]): i for i in orders(9)}


# -- one-line wrappers, GetItem's answer, a page of a scan ------------------------------


def geojson(n: int) -> dict[str, Any]:
    """A USGS feed as it is served: one line, the features among other keys."""
    return {
        "type": "FeatureCollection",
        "metadata": {"generated": 1700000000000, "title": "USGS All Earthquakes", "count": n},
        "features": [{"type": "Feature", "id": f"ak{i:04d}",
                      "properties": {"mag": Decimal(f"{i % 5}.{i % 10}"), "place": f"{i} km N",
                                     "tsunami": 0, "alert": None},
                      "geometry": {"type": "Point", "coordinates": [Decimal("-150.5"), 61, 12]}}
                     for i in range(n)],
        "bbox": [-179.9, -60.1, -3.1, 179.9, 71.2, 600.3],
    }  # fmt: skip


def _pk_table(ddb: Any, name: str, key: str) -> str:
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")  # fmt: skip
    return name


def test_a_one_line_feed_is_read_where_its_items_have_the_key(
    ddb: Any, endpoint: str, ledger: Path, tmp_path: Path
) -> None:
    feed = tmp_path / "quakes.json"
    feed.write_text(json.dumps(geojson(40), default=str, separators=(",", ":")))
    feed.chmod(0o600)
    name = f"quakes-{next(_names)}"
    out = rimport("start", feed, "--table", name, "--create-table", "--key", "id:S",
                  "--endpoint", endpoint, "--ledger", ledger)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "reading the array under 'features' (--items-path features) instead" in out.stderr
    pages = ddb.get_paginator("scan").paginate(TableName=name)
    got = {i["id"]["S"]: {k: _from.deserialize(v) for k, v in i.items()}
           for p in pages for i in p["Items"]}  # fmt: skip
    want = json.loads(feed.read_text(), parse_float=Decimal)["features"]
    assert sorted(got) == sorted(f["id"] for f in want)
    for f in want:
        assert got[f["id"]] == f

    # An existing table: the same reading; validate reads so too.
    again = _pk_table(ddb, f"quakes-{next(_names)}", "id")
    checked = rimport("validate", feed, "--table", again, "--endpoint", endpoint)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    out = rimport("start", feed, "--table", again, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert ddb.scan(TableName=again, Select="COUNT")["Count"] == 40


def test_two_readings_with_the_key_are_refused_naming_each(
    ddb: Any, endpoint: str, ledger: Path, tmp_path: Path
) -> None:
    both = tmp_path / "both.json"
    both.write_text(json.dumps({"kind": "x", "a": [{"id": "1"}], "b": [{"id": "2"}]}))
    name = _pk_table(ddb, f"both-{next(_names)}", "id")
    out = rimport("start", both, "--table", name, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 2, out.stderr
    assert "--items-path a" in out.stderr and "--items-path b" in out.stderr
    assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 0


def test_get_items_answer_is_one_typed_item(
    ddb: Any, endpoint: str, ledger: Path, tmp_path: Path
) -> None:
    item = {"id": {"S": "g1"}, "n": {"N": "10.5"},
            "mixedList": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"x": {"BOOL": True}}},
                                {"NULL": True}, {"B": "AAEC"}]},
            "set": {"SS": ["p", "q"]}}  # fmt: skip
    answer = tmp_path / "item.json"
    answer.write_text(json.dumps({"Item": item}, indent=4))
    name = _pk_table(ddb, f"one-{next(_names)}", "id")
    checked = rimport("validate", answer, "--table", name, "--endpoint", endpoint)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "items-path" not in checked.stdout + checked.stderr
    out = rimport("start", answer, "--table", name, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert "reading it as that one item" in out.stderr
    assert ddb.get_item(TableName=name, Key={"id": {"S": "g1"}})["Item"] == {
        **item, "mixedList": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"x": {"BOOL": True}}},
                                    {"NULL": True}, {"B": b"\x00\x01\x02"}]},
    }  # fmt: skip


def test_a_schema_file_is_not_taken_for_items(tmp_path: Path, endpoint: str) -> None:
    write_backup(tmp_path / "dump", "schemas", people(3), simple_schema())
    out = rimport("validate", tmp_path / "dump" / "schemas" / "schema.json", "--key", "pk:S")
    assert out.returncode == 2
    assert "describes a table" in out.stderr and "items-path" not in out.stderr
    assert f"rimport start {tmp_path / 'dump' / 'schemas'}" in out.stderr


def test_one_page_of_a_scan_says_so(
    ddb: Any, endpoint: str, ledger: Path, tmp_path: Path, table: str
) -> None:
    items = people(9)
    for marker, value in (("LastEvaluatedKey", typed({"pk": "p008"})), ("NextToken", "eyJ4")):
        page = tmp_path / f"page-{marker}.json"
        body = {"Items": [typed(i) for i in items], "Count": 9, "ScannedCount": 9, marker: value}
        page.write_text(json.dumps(body, indent=2, default=_json))
        out = rimport("start", page, "--table", table, "--format", "ddb-json", "--endpoint",
                      endpoint, "--ledger", ledger)  # fmt: skip
        assert out.returncode == 0, out.stderr
        said = [line for line in out.stderr.splitlines() if "one page" in line]
        assert len(said) == 1 and f"(it has {marker})" in said[0], out.stderr
        assert "the rest of the table is not in this file" in said[0]
        assert_items_equal(scan(ddb, table), items)
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps({"Items": [typed(i) for i in items], "Count": 9}, default=_json))
    out = rimport("start", whole, "--table", table, "--format", "ddb-json", "--endpoint",
                  endpoint, "--ledger", ledger)  # fmt: skip
    assert out.returncode == 0 and "one page" not in out.stderr, out.stderr
