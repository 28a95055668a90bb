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
from resumable_import.keys import canonical
from resumable_import.ledger import Ledger
from resumable_import.loop import sent_key

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


def test_an_old_ledgers_dead_letters_gain_keys_and_can_be_superseded(tmp_path: Path) -> None:
    """A retryable dead letter recorded by a rimport before migration 0009 has no key: the
    upgrade leaves it pending, and its key is worked out from its item (and kept) when a
    run needs it, so a later item with that key supersedes it as it would a new one."""
    ledger, _ = _copy(tmp_path)
    item = {"pk": {"S": "k3"}, "v": {"N": "3"}}
    with sqlite3.connect(ledger) as db:  # as the old rimport wrote it, at schema 6
        assert db.execute("PRAGMA user_version").fetchone()[0] == 6
        db.execute(
            "INSERT INTO dead_letters (run_id, item_index, item, error_code, error_message,"
            " attempts, retryable, created_at, updated_at) VALUES (?, 3, ?, 'Unprocessed',"
            " 'throttled', 3, 1, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
            (RUN, json.dumps(item)),
        )
    key = canonical(("k3",))
    with Ledger(ledger) as book:
        assert book.schema_version >= 9
        assert book.run(RUN).dead_letters == 1
        assert book.retryable_keys(RUN, sent_key(False, ("pk",))) == {key}
        run = book.run(RUN)
        moot = book.commit(RUN, items_committed=run.items_committed + 1,
                           byte_offset=run.byte_offset, written=1, dead=[],
                           superseded=[(key, 9)])  # fmt: skip
        assert moot == 1
        run = book.run(RUN)
        assert (run.dead_letters, run.superseded_dead_letters) == (0, 1)
        assert book.dead_letters(RUN) == []
    with sqlite3.connect(ledger) as db:
        assert db.execute(
            "SELECT status, superseded_by, item_key FROM dead_letters"
        ).fetchall() == [("superseded", 9, key)]
