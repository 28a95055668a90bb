"""A run writes to one table: a table deleted, or deleted and created again, under the same
name is refused on resume and retry-failed, and every hint's command works as written."""

from __future__ import annotations

import re
import shlex
import threading
from pathlib import Path
from typing import Any

import make_dump
import pytest
from conftest import assert_table_equals, dump_items, rimport

from resumable_import import Hooks, ImportOptions, RunInterrupted, import_file
from resumable_import.cli.hints import spelled
from resumable_import.dynamo import connect, ensure_table, resolve_endpoint
from resumable_import.keys import KeySpec
from resumable_import.ledger import Ledger

ITEMS = 3_000


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dump.write(tmp_path_factory.mktemp("identity") / "d.json", ITEMS)


def interrupted_run(dump: Path, table: str, endpoint: str, ledger: Path) -> str:
    """A run that wrote some batches and was interrupted: its id."""
    started: list[str] = []

    def stop_after_some(items: int, done: int, total: int) -> None:
        if items >= 500:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        import_file(
            dump,
            table,
            ImportOptions(endpoint=endpoint),
            Hooks(progress=stop_after_some, on_start=lambda run: started.append(run.id)),
            ledger=ledger,
        )
    return started[0]


def recreate(ddb: Any, table: str) -> None:
    ddb.delete_table(TableName=table)
    ddb.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1})
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def commands(hint: str) -> list[list[str]]:
    """The rimport commands a hint tells the user to run."""
    return [shlex.split(c) for c in re.findall(r"`(rimport [^`]+)`", hint)]


def test_resume_refuses_a_table_created_anew_and_its_hint_imports_the_whole_file(
    dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    run_id = interrupted_run(dump, table, endpoint, ledger)
    recreate(ddb, table)
    out = rimport("resume", run_id, "--ledger", ledger)
    assert out.returncode == 2, out.stderr
    error, hint = out.stderr.splitlines()
    with Ledger(ledger) as book:
        written = book.run(run_id).items_written
    assert error == (
        f"error: table {table!r} at {endpoint} was deleted and created again since run "
        f"{run_id} wrote to it: the {written:,} items it wrote before its checkpoint are not in it"
    )
    (again,) = commands(hint)
    assert again == [
        "rimport", "start", str(dump), "--table", table, "--endpoint", endpoint,
        "--create-table", "--key", "pk:S", "--new", "--ledger", str(ledger),
    ]  # fmt: skip
    fresh = rimport(*again[1:])
    assert fresh.returncode == 0, fresh.stderr
    assert_table_equals(ddb, table, dump_items(dump))


def test_resume_refuses_a_deleted_table_and_its_hint_creates_it(
    dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    run_id = interrupted_run(dump, table, endpoint, ledger)
    ddb.delete_table(TableName=table)
    out = rimport("resume", run_id, "--ledger", ledger)
    assert out.returncode == 2
    assert f"table {table!r} at {endpoint} no longer exists since run {run_id} started" in (
        out.stderr
    )
    (again,) = commands(out.stderr.splitlines()[-1])
    fresh = rimport(*again[1:])
    assert fresh.returncode == 0, fresh.stderr
    assert_table_equals(ddb, table, dump_items(dump))


def test_a_table_deleted_mid_run_is_named_and_resume_is_not_suggested(
    dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    def delete_it(items: int, done: int, total: int) -> None:
        if items >= 500 and not deleted.is_set():
            deleted.set()
            ddb.delete_table(TableName=table)

    deleted = threading.Event()
    with pytest.raises(Exception) as stopped:
        import_file(
            dump, table, ImportOptions(endpoint=endpoint), Hooks(progress=delete_it), ledger=ledger
        )
    assert f"(table {table!r} no longer exists)" in stopped.value.message  # type: ignore[attr-defined]
    hint = spelled(stopped.value.hint)  # type: ignore[attr-defined]
    assert "rimport resume" not in hint
    (again,) = commands(hint)
    fresh = rimport(*again[1:])
    assert fresh.returncode == 0, fresh.stderr
    assert_table_equals(ddb, table, dump_items(dump))


def test_an_interrupted_run_resumes_into_its_own_table(
    dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    run_id = interrupted_run(dump, table, endpoint, ledger)
    out = rimport("resume", run_id, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert_table_equals(ddb, table, dump_items(dump))


def test_two_creates_of_one_new_table_at_once_both_go_on(endpoint: str, ddb: Any) -> None:
    """The second of two `--create-table`s meets ResourceInUseException: it waits for the
    table to be ACTIVE instead of failing."""
    name = "created-twice"
    keys = (KeySpec("pk", "S"),)
    both_looked = threading.Barrier(2)

    class LookThenWait:  # both describe the table (missing) before either creates it
        def __init__(self, client: Any) -> None:
            self._client, self._first = client, True

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def describe_table(self, **kw: Any) -> Any:
            try:
                return self._client.describe_table(**kw)
            finally:
                if self._first:
                    self._first = False
                    both_looked.wait(timeout=30)

    where = resolve_endpoint(endpoint)
    found: list[Any] = []

    def create() -> None:
        found.append(ensure_table(LookThenWait(connect(where, None).client), name, keys, where))

    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(found) == 2 and found[0].identity == found[1].identity
    assert ddb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
