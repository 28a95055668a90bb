"""A dead letter that a later element with the same key overrides, once that one is
written, is superseded: `retry-failed` must not write it again (it would undo the later
one, and the later of two elements with one key wins), and it is no failure of the run.

Faults are injected into the fake by key and by value, so which element is throttled out
and which goes through is decided, not timed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import scan
from fakes import FakeDynamo
from typer.testing import CliRunner

from resumable_import import (
    Hooks,
    ImportOptions,
    Ledger,
    RetryPolicy,
    RunInterrupted,
    WriteSettings,
    import_file,
    import_requests,
    resume_run,
    retry_failed,
)
from resumable_import.cli import app

FAST = RetryPolicy(
    max_attempts=3, base_delay=0.0001, max_delay=0.001, item_timeout=0.0, max_outage=0.5
)
SMALL = ImportOptions(settings=WriteSettings(batch_size=5, concurrency=1))


def dump_with(path: Path, n: int, repeats: dict[int, str]) -> Path:
    """`n` items k0, k1, ... with `v` their index, but those at `repeats` keyed as it says."""
    path.write_text(json.dumps([{"pk": repeats.get(i, f"k{i}"), "v": i} for i in range(n)]))
    return path


def throttle_until(fake: FakeDynamo, key: str, index: int) -> None:
    """Hand `key` back unprocessed (so it is dead-lettered as retryable) until the item
    with `v` == `index` is sent: that one, and every later one, goes through."""
    fake.unprocessed[key] = 10**9

    def watch(items: list[dict[str, Any]]) -> None:
        if any(i.get("v") == {"N": str(index)} for i in items):
            fake.unprocessed.pop(key, None)

    fake.on_call = watch


def value(fake: FakeDynamo, key: str) -> int | None:
    item = fake.items.get((key,))
    return None if item is None else int(item["v"]["N"])


def cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout + result.stderr


def statuses(ledger: Path, run_id: str) -> list[tuple[int, str, int | None]]:
    with sqlite3.connect(ledger) as db:
        return db.execute(
            "SELECT item_index, status, superseded_by FROM dead_letters WHERE run_id = ?"
            " ORDER BY item_index",
            (run_id,),
        ).fetchall()


def test_retry_failed_does_not_overwrite_a_later_item_with_the_same_key(
    tmp_path: Path, ledger: Path
) -> None:
    fake = FakeDynamo()
    throttle_until(fake, "dup", 10)
    dump = dump_with(tmp_path / "d.json", 20, {5: "dup", 10: "dup"})
    first = import_file(dump, "t", SMALL, ledger=ledger, client=fake, retry=FAST)
    assert value(fake, "dup") == 10
    assert statuses(ledger, first.run_id) == [(5, "superseded", 10)]
    # no failures left: the run completed, and says so
    assert (first.state, first.dead_letters, first.superseded) == ("completed", 0, 1)

    fake.unprocessed.clear()
    fake.on_call = None
    calls = fake.calls
    again = retry_failed(first.run_id, ledger=ledger, client=fake, retry=FAST)
    assert value(fake, "dup") == 10, "the earlier value came back"
    assert fake.calls == calls  # nothing was sent
    assert (again.state, again.dead_letters, again.superseded) == ("completed", 0, 1)

    code, out = cli("status", first.run_id, "--ledger", ledger)
    assert code == 0, out
    assert "dead letters:    0 (1 more superseded by a later item with the same key" in out
    code, out = cli("status", "--json", "--ledger", ledger)
    (shown,) = json.loads(out)
    assert (shown["state"], shown["dead_letters"], shown["superseded_dead_letters"]) == (
        "completed", 0, 1,
    )  # fmt: skip
    code, out = cli("status", first.run_id, "--json", "--ledger", ledger)
    assert json.loads(out)["dead_letter_details"]["first"] == []
    code, out = cli("dead-letters", first.run_id, "--ledger", ledger)
    assert code == 0, out
    assert f"run {first.run_id}: 0 dead letters written to stdout" in out


def test_a_dead_letter_with_no_later_item_of_its_key_is_still_retried(
    tmp_path: Path, ledger: Path
) -> None:
    """The same run, the later item of the key also throttled out: nothing supersedes the
    first dead letter in the run itself, and `retry-failed` writes only the later one."""
    fake = FakeDynamo()
    fake.unprocessed["dup"] = 10**9
    sent: list[int] = []
    dump = dump_with(tmp_path / "d.json", 20, {5: "dup", 10: "dup"})
    first = import_file(dump, "t", SMALL, ledger=ledger, client=fake, retry=FAST)
    assert (first.state, first.dead_letters, first.superseded) == ("completed_with_failures", 2, 0)
    assert value(fake, "dup") is None

    fake.unprocessed.clear()
    fake.on_call = lambda items: sent.extend(int(i["v"]["N"]) for i in items)
    again = retry_failed(first.run_id, ledger=ledger, client=fake, retry=FAST)
    assert sent == [10], "the earlier of two with one key was written too"
    assert value(fake, "dup") == 10
    assert statuses(ledger, first.run_id) == [(5, "superseded", 10), (10, "written", None)]
    assert (again.state, again.dead_letters, again.superseded) == ("completed", 0, 1)


def test_an_earlier_dead_letter_stays_superseded_when_the_later_fails_again(
    tmp_path: Path, ledger: Path
) -> None:
    """Within one replay the later of two wins even when it cannot be written now: the
    earlier is never sent, and only the later remains to be retried."""
    fake = FakeDynamo()
    fake.unprocessed["dup"] = 10**9
    dump = dump_with(tmp_path / "d.json", 20, {5: "dup", 10: "dup"})
    first = import_file(dump, "t", SMALL, ledger=ledger, client=fake, retry=FAST)
    sent: list[int] = []
    fake.on_call = lambda items: sent.extend(int(i["v"]["N"]) for i in items)
    again = retry_failed(first.run_id, ledger=ledger, client=fake, retry=FAST)
    assert set(sent) == {10}
    assert value(fake, "dup") is None
    assert statuses(ledger, first.run_id) == [(5, "superseded", 10), (10, "pending", None)]
    assert (again.state, again.dead_letters) == ("completed_with_failures", 1)


def test_retry_failed_does_not_bring_back_an_item_a_later_delete_removed(
    tmp_path: Path, ledger: Path
) -> None:
    fake = FakeDynamo("tbl")
    entries = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}}}
               for i in range(12)]  # fmt: skip
    entries[3] = {"PutRequest": {"Item": {"pk": {"S": "dup"}, "v": {"N": "3"}}}}
    entries[8] = {"DeleteRequest": {"Key": {"pk": {"S": "dup"}}}}
    path = tmp_path / "requests.json"
    path.write_text(json.dumps({"tbl": entries}))
    fake.unprocessed["dup"] = 10**9

    def watch(items: list[dict[str, Any]]) -> None:  # the delete (a bare key) goes through
        if {"pk": {"S": "dup"}} in items:
            fake.unprocessed.pop("dup", None)

    fake.on_call = watch
    done = import_requests(path, options=SMALL, ledger=ledger, client=fake, retry=FAST)
    (outcome,) = done.files
    first = outcome.result
    assert first is not None, outcome.error
    assert (first.state, first.dead_letters, first.superseded, first.items_deleted) == (
        "completed", 0, 1, 1,
    )  # fmt: skip
    assert statuses(ledger, first.run_id) == [(3, "superseded", 8)]

    fake.on_call = None
    retry_failed(first.run_id, ledger=ledger, client=fake, retry=FAST)
    assert ("dup",) not in fake.items, "the deleted item came back"
    assert len(fake.items) == 10


def test_a_later_put_supersedes_a_dead_lettered_delete(tmp_path: Path, ledger: Path) -> None:
    """The other way round: a delete throttled out, then a put of its key written; the
    retry must not delete the item the put wrote."""
    fake = FakeDynamo("tbl")
    fake.items[("dup",)] = {"pk": {"S": "dup"}, "v": {"N": "-1"}}
    entries = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}}}
               for i in range(12)]  # fmt: skip
    entries[2] = {"DeleteRequest": {"Key": {"pk": {"S": "dup"}}}}
    entries[9] = {"PutRequest": {"Item": {"pk": {"S": "dup"}, "v": {"N": "9"}}}}
    path = tmp_path / "requests.json"
    path.write_text(json.dumps({"tbl": entries}))
    throttle_until(fake, "dup", 9)
    (outcome,) = import_requests(path, options=SMALL, ledger=ledger, client=fake, retry=FAST).files
    assert outcome.result is not None, outcome.error
    assert statuses(ledger, outcome.result.run_id) == [(2, "superseded", 9)]
    fake.on_call = None
    retry_failed(outcome.result.run_id, ledger=ledger, client=fake, retry=FAST)
    assert value(fake, "dup") == 9


@pytest.mark.parametrize("recorded", ["with its key", "before keys were recorded"])
def test_a_resumed_run_loads_the_keys_of_its_dead_letters_from_the_ledger(
    tmp_path: Path, ledger: Path, recorded: str
) -> None:
    """The dead letter comes before the stop, the later item of its key after the resume:
    only the ledger can tell the resumed run about it. A dead letter recorded before
    migration 0009 (no key) has its key worked out from its item."""
    fake = FakeDynamo()
    fake.unprocessed["dup"] = 10**9

    def stop_at_15(items: int, done: int, total: int) -> None:  # as Ctrl-C would
        if items >= 15:
            raise KeyboardInterrupt

    dump = dump_with(tmp_path / "d.json", 20, {5: "dup", 17: "dup"})
    with pytest.raises(RunInterrupted):
        import_file(dump, "t", SMALL, Hooks(progress=stop_at_15), ledger=ledger, client=fake,
                    retry=FAST)  # fmt: skip
    with Ledger(ledger) as book:
        (run,) = book.runs()
    assert (run.state, run.items_committed, run.dead_letters) == ("interrupted", 15, 1)
    if recorded != "with its key":
        with sqlite3.connect(ledger) as db:
            db.execute("UPDATE dead_letters SET item_key = NULL")

    fake.unprocessed.clear()
    result = resume_run(run.id, ledger=ledger, client=fake, retry=FAST)
    assert (result.state, result.dead_letters, result.superseded) == ("completed", 0, 1)
    assert statuses(ledger, run.id) == [(5, "superseded", 17)]
    retry_failed(run.id, ledger=ledger, client=fake, retry=FAST)
    assert value(fake, "dup") == 17


class ThrottlesOneItem:
    """A real client whose BatchWriteItem hands one item (by its `v`) back unprocessed, as
    DynamoDB does under throttling; everything else goes to DynamoDB Local as it is."""

    def __init__(self, client: Any, v: int) -> None:
        self._client = client
        self._v = {"N": str(v)}

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        held = [r for r in requests if r["PutRequest"]["Item"].get("v") == self._v]
        sent = [r for r in requests if r not in held]
        answer = self._client.batch_write_item(RequestItems={table: sent}) if sent else {}
        left = answer.get("UnprocessedItems", {}).get(table, []) + held
        return {**answer, "UnprocessedItems": {table: left} if left else {}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_against_dynamodb_local_the_later_item_stays(
    tmp_path: Path, ledger: Path, ddb: Any, table: str
) -> None:
    dump = dump_with(tmp_path / "d.json", 30, {4: "dup", 21: "dup"})
    client = ThrottlesOneItem(ddb, 4)
    first = import_file(dump, table, SMALL, ledger=ledger, client=client, retry=FAST)
    assert (first.state, first.dead_letters, first.superseded) == ("completed", 0, 1)
    again = retry_failed(first.run_id, ledger=ledger, client=ddb, retry=FAST)
    assert again.superseded == 1
    got = scan(ddb, table)
    assert got["dup"]["v"] == 21
    assert len(got) == 29
