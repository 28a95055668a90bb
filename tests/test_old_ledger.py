"""A ledger written before the run's options became values (`tests/data/`, made by
`make_old_ledger.py`) still resumes, and `status` still shows it as it did."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from conftest import assert_table_equals, dump_items, rimport

from resumable_import import WriteSettings, resume_run
from resumable_import.dynamo import describe_table
from resumable_import.ledger import Ledger

DATA = Path(__file__).resolve().parent / "data"
RUN = "a6cee2e2ba01"


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    """The old ledger and its dump, copied where a test may change them."""
    (tmp_path / "state").mkdir()
    ledger = tmp_path / "state" / "old-ledger.sqlite"
    shutil.copyfile(DATA / "old-ledger.sqlite", ledger)
    dump = tmp_path / "old-run.jsonl"
    shutil.copyfile(DATA / "old-run.jsonl", dump)
    return ledger, dump


def test_status_shows_an_old_ledger_as_it_did(tmp_path: Path) -> None:
    ledger, _ = _copy(tmp_path)
    shown = rimport("status", "--json", "--ledger", ledger)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == json.loads((DATA / "old-status.json").read_text())
    text = rimport("status", RUN, "--ledger", ledger)
    assert text.returncode == 0, text.stderr
    assert text.stdout == (DATA / "old-status.txt").read_text()


def test_an_old_ledger_resumes_to_the_end(
    tmp_path: Path, ddb: Any, endpoint: str, table: str
) -> None:
    """The run stopped at item 6 of 20 with the fake; here its table is a DynamoDB Local
    one that holds what the run wrote before its checkpoint, as its own table did, marked
    so that writing them again would show."""
    ledger, dump = _copy(tmp_path)
    items = dump_items(dump)
    before = [{**item, "before_resume": True} for item in items[:6]]
    wire = TypeSerializer()
    for item in before:
        ddb.put_item(TableName=table, Item={k: wire.serialize(v) for k, v in item.items()})
    info = describe_table(ddb, table)
    assert info is not None
    with sqlite3.connect(ledger) as db:  # this machine's paths, endpoint and table
        db.execute(
            "UPDATE runs SET file = ?, endpoint = ?, table_name = ?, table_identity = ?",
            (str(dump), endpoint, table, info.identity),
        )
    result = resume_run(RUN, ledger=ledger, client=ddb)
    assert result.state == "completed"
    assert result.items_committed == len(items) == 20
    assert_table_equals(ddb, table, before + items[6:])
    with Ledger(ledger) as book:
        run = book.run(RUN)
    assert run.settings == WriteSettings(batch_size=2, concurrency=1, max_wcu=500, max_outage=60)
    assert run.recorded.keys == ("pk:S",) and not run.recorded.allow_remote
    assert run.options == {"batch_size": 2, "concurrency": 1, "max_wcu": 500,
                           "allow_remote": False, "max_outage": 60, "keys": ["pk:S"]}  # fmt: skip
    shown = rimport("status", "--json", "--ledger", ledger)
    assert shown.returncode == 0, shown.stderr
    (after,) = json.loads(shown.stdout)
    (before,) = json.loads((DATA / "old-status.json").read_text())
    assert list(after) == list(before)
    assert after["options"] == before["options"]
