"""A dynamodump backup: which table folders it has, their pages in order, and the table
each `schema.json` describes.

dynamodump (a public tool that backs tables up as files) writes, for each table,
`<dump>/<table>/schema.json` (the table as DescribeTable gives it, under `Table`) and
`<dump>/<table>/data/0001.json`, `0002.json`, ..., each one page of a scan as the API
answered it: `{"Items": [...DynamoDB JSON...], "Count": n, "ScannedCount": n,
"LastEvaluatedKey": {...}}`. Every page but the last names where the next begins, which
here says nothing: the next page is the next file.

A backup is recognised at three places: the dump folder itself (each of its folders that
holds a `schema.json` is a table), one table's folder, and that table's `data` folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Arg, Command, InputError, Text, UsageError
from .keys import KeySpec

SCHEMA, DATA = "schema.json", "data"
ITEMS = "Items"  # where each page holds its items: read so, a page is one page of many
FORMAT = "ddb-json"  # what the items are: a scan's answer, typed


@dataclass(frozen=True)
class TableSchema:
    """A table as its backup's schema.json describes it: its key, and what creating it
    again takes (key schema, attribute types, indexes)."""

    keys: tuple[KeySpec, ...]  # partition key first
    description: dict[str, Any]  # the DescribeTable `Table` object


@dataclass(frozen=True)
class TableFolder:
    table: str  # the table it goes into
    pages: list[Path]  # data/0001.json, ... in order
    schema: TableSchema | None


def table_folders(folder: Path) -> list[Path] | None:
    """The table folders of a backup at `folder`, in order; None if it is not one."""
    if (folder / SCHEMA).is_file():
        return [folder]
    if folder.name == DATA and (folder.parent / SCHEMA).is_file():
        return [folder.parent]
    found = sorted(d for d in folder.iterdir() if d.is_dir() and (d / SCHEMA).is_file())
    return found or None


def read_backup(folder: Path, table: str | None, fmt: str) -> list[TableFolder]:
    """Each table folder of the backup at `folder`, with its pages and its schema.

    `table` renames the table of a one-table backup; a backup of several goes into the
    tables it names."""
    folders = table_folders(folder) or []
    if fmt not in ("auto", FORMAT):
        raise UsageError(
            Text(
                f"{folder} is a dynamodump backup, whose pages hold DynamoDB JSON, read as ",
                Arg("format", FORMAT),
                f", not as {fmt}",
            ),
            Text("leave out ", Arg("format")),
        )
    if table is not None and len(folders) > 1:
        names = ", ".join(d.name for d in folders)
        raise UsageError(
            Text(
                f"{folder} is a dynamodump backup of {len(folders)} tables ({names}): each "
                "goes into the table it is named after, not all into ",
                Arg("table", table),
            ),
            Text(
                "leave out ",
                Arg("table"),
                ", or import one table's folder, e.g. ",
                Command("start", (str(folders[0]),), (Arg("table", table),)),
            ),
        )
    out = []
    for d in folders:
        pages = sorted(
            (p for p in (d / DATA).glob("*.json") if p.is_file() and not p.name.startswith(".")),
            key=_page_order,
        )
        out.append(TableFolder(table or d.name, pages, read_schema(d / SCHEMA)))
    if not any(t.pages for t in out):
        raise InputError(
            f"{folder}: a dynamodump backup with no pages ({DATA}/0001.json, ...) to import",
            "back up the table with its data, not only its schema",
        )
    return out


def _page_order(page: Path) -> tuple[int, str]:
    """0001.json before 0002.json, and 9999.json before 10000.json."""
    return (int(page.stem) if page.stem.isdigit() else 1 << 62, page.name)


def read_schema(path: Path) -> TableSchema:
    """The table schema.json describes: `{"Table": {...}}` as DescribeTable answers, or the
    `Table` object alone."""
    problem = "it is not a table's description (KeySchema, AttributeDefinitions)"
    try:
        described = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        described, problem = None, f"cannot read it ({e})"
    if isinstance(described, dict) and isinstance(described.get("Table"), dict):
        described = described["Table"]
    try:
        if not isinstance(described, dict):
            raise TypeError
        types = {a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]}
        schema = sorted(described["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        keys = tuple(KeySpec(k["AttributeName"], types[k["AttributeName"]]) for k in schema)
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"{path}: {problem}", "copy the backup's schema.json again, as dynamodump wrote it"
        ) from None
    return TableSchema(keys, described)


def create_request(name: str, table: dict[str, Any]) -> dict[str, Any]:
    """CreateTable's arguments for a table like `table` (a DescribeTable `Table`): its key
    schema, attribute types and indexes, on-demand. What DescribeTable adds about the
    table as it stood (sizes, statuses, ARNs, provisioned capacity) is left out."""
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = [
            {k: index[k] for k in ("IndexName", "KeySchema", "Projection") if k in index}
            for index in table.get(kind) or ()
        ]
        if indexes:
            request[kind] = indexes
    return request
