"""The operator's side: settings changed on resume, a systematic key mistake stopped before
it dead-letters a whole dump, and library errors in Python's words (the CLI's in flags)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import rimport
from fakes import FakeDynamo, client_error

from resumable_import import (
    ImportOptions,
    KeyMismatchError,
    KeySpec,
    ResumeOptions,
    RetryPolicy,
    ServiceError,
    SettingsChange,
    TableMissingError,
    UsageError,
    WriteSettings,
    import_file,
    resume_run,
    run_status,
    validate_file,
)
from resumable_import.cli.hints import spelled

FAST = RetryPolicy(
    max_attempts=3, base_delay=0.0001, max_delay=0.001, item_timeout=0.0, max_outage=0.5
)


def write_dump(path: Path, n: int, key: Any = lambda i: f"k{i}") -> Path:
    path.write_text(json.dumps([{"pk": key(i), "v": i} for i in range(n)]))
    return path


def stopped_by_an_outage(tmp_path: Path, fake: FakeDynamo, n: int = 300) -> tuple[Path, str]:
    """A run of `n` items that DynamoDB stopped after 5 batches of 25: (its ledger, its id)."""
    ledger = tmp_path / "l.db"
    calls = {"n": 0}

    def outage(items: list[Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            fake.down = (0.0, float("inf"))

    fake.on_call = outage
    with pytest.raises(ServiceError) as stopped:
        import_file(
            write_dump(tmp_path / "d.json", n),
            "t",
            ImportOptions(settings=WriteSettings(concurrency=1)),
            ledger=ledger,
            client=fake,
            retry=FAST,
        )
    assert "--max-outage 600" in spelled(stopped.value.hint), "waiting longer is offered"
    assert "max_outage" in str(stopped.value.hint)
    fake.on_call, fake.down = None, None
    (run,) = run_status(ledger=ledger)
    assert run.items_committed == 125
    return ledger, run.id


# -- settings changed on resume ---------------------------------------------------------


def test_resume_with_a_smaller_batch_uses_it_records_it_and_status_shows_it(
    tmp_path: Path,
) -> None:
    fake = FakeDynamo()
    ledger, run_id = stopped_by_an_outage(tmp_path, fake)
    sizes: list[int] = []
    fake.on_call = lambda items: sizes.append(len(items))
    result = resume_run(
        run_id,
        ResumeOptions(settings=SettingsChange(batch_size=10, concurrency=2)),
        ledger=ledger,
        client=fake,
        retry=FAST,
    )
    assert result.state == "completed" and result.items_written == 300
    assert sizes == [10] * 17 + [5]  # the 175 items after the checkpoint, 10 at a time
    (run,) = run_status(ledger=ledger)
    assert (run.settings.batch_size, run.settings.concurrency) == (10, 2)
    (change,) = run.recorded.changes
    assert change["batch_size"] == [25, 10] and change["concurrency"] == [1, 2]
    assert "max_wcu" not in change, "only what changed is recorded"

    shown = rimport("status", run_id, "--ledger", ledger)
    assert shown.returncode == 0, shown.stderr
    (line,) = [s for s in shown.stdout.splitlines() if s.startswith("settings:")]
    at = change["at"][:16].replace("T", " ")
    assert line.split(None, 1)[1] == (
        f"batch size 10 (25 until resumed at {at} UTC), concurrency 2 (1 until resumed at "
        f"{at} UTC), max WCU -, max outage -, writer processes 1"
    )
    as_json = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert as_json["options"]["changes"] == [change]


def test_resume_refuses_a_setting_out_of_range_in_python_words_and_changes_nothing(
    tmp_path: Path,
) -> None:
    fake = FakeDynamo()
    ledger, run_id = stopped_by_an_outage(tmp_path, fake)
    with pytest.raises(UsageError) as refused:
        resume_run(
            run_id,
            ResumeOptions(settings=SettingsChange(batch_size=26)),
            ledger=ledger,
            client=fake,
        )
    assert refused.value.message == "batch_size must be between 1 and 25, not 26"
    assert refused.value.param == "batch_size"
    (run,) = run_status(ledger=ledger)
    assert run.settings.batch_size == 25 and not run.recorded.changes
    assert run.items_committed == 125

    out = rimport("resume", run_id, "--ledger", ledger, "--concurrency", "0")
    assert out.returncode == 2 and "Invalid value for '--concurrency'" in out.stderr


def test_resume_with_the_same_settings_records_no_change(tmp_path: Path) -> None:
    fake = FakeDynamo()
    ledger, run_id = stopped_by_an_outage(tmp_path, fake)
    resume_run(
        run_id,
        ResumeOptions(settings=SettingsChange(batch_size=25)),
        ledger=ledger,
        client=fake,
        retry=FAST,
    )
    (run,) = run_status(ledger=ledger)
    assert run.state == "completed" and not run.recorded.changes


def test_a_throttled_run_that_stops_names_the_resume_that_asks_less(tmp_path: Path) -> None:
    fake = FakeDynamo()
    fake.capacity = 1.0  # the first request is throttled whole
    fake.fail_next = [None, client_error("AccessDeniedException", status=400)]  # type: ignore[list-item]
    with pytest.raises(ServiceError) as stopped:
        import_file(
            write_dump(tmp_path / "d.json", 100),
            "t",
            ImportOptions(settings=WriteSettings(concurrency=4)),
            ledger=tmp_path / "l.db",
            client=fake,
            retry=FAST,
        )
    (run,) = run_status(ledger=tmp_path / "l.db")
    assert "DynamoDB throttled 1 of its requests: " in str(stopped.value.hint)
    assert f"`rimport resume {run.id} --concurrency 2" in spelled(stopped.value.hint)


# -- a key mistake shared by the first items --------------------------------------------


def test_a_table_keyed_otherwise_stops_the_run_before_anything_is_sent(tmp_path: Path) -> None:
    fake = FakeDynamo()  # its key pk is a string
    dump = write_dump(tmp_path / "numbers.json", 500, key=lambda i: i)
    ledger = tmp_path / "l.db"
    with pytest.raises(KeyMismatchError) as stopped:
        import_file(dump, "t", ledger=ledger, client=fake)
    e = stopped.value
    assert e.message == (
        "key attribute 'pk' is a number in each of the first 100 items, but the key is pk:S"
    )
    assert e.exit_code == 2
    assert "--table NEW_TABLE --create-table --key pk:N" in spelled(e.hint)
    assert fake.calls == 0
    (run,) = run_status(ledger=ledger)
    assert (run.state, run.items_committed, run.dead_letters) == ("failed", 0, 0)
    assert run.error == e.message
    with pytest.raises(KeyMismatchError):  # and so does resuming it
        resume_run(run.id, ledger=ledger, client=fake)
    assert fake.calls == 0


def test_a_few_bad_keys_at_the_start_of_a_good_dump_are_dead_lettered(tmp_path: Path) -> None:
    fake = FakeDynamo()
    dump = write_dump(tmp_path / "d.json", 300, key=lambda i: i if i < 60 else f"k{i}")
    result = import_file(dump, "t", ledger=tmp_path / "l.db", client=fake)
    assert (result.items_written, result.dead_letters) == (240, 60)


def test_a_key_of_the_wrong_type_is_refused_before_the_table_is_created(tmp_path: Path) -> None:
    fake = FakeDynamo()  # has no create_table: calling it would fail the test
    dump = write_dump(tmp_path / "d.json", 30)
    ledger = tmp_path / "l.db"
    with pytest.raises(KeyMismatchError) as refused:
        import_file(
            dump,
            "new",
            ImportOptions(create_keys=(KeySpec("pk", "N"),)),
            ledger=ledger,
            client=fake,
        )
    e = refused.value
    assert (
        e.message == "key attribute 'pk' is a string in each of the 30 items, but the key is pk:N"
    )
    assert e.hint == "the table was not created; pass create_keys=(KeySpec('pk', 'S'),)"
    assert "--" not in e.message + e.hint
    assert run_status(ledger=ledger) == []


def test_a_missing_key_attribute_is_named_with_the_attributes_there_are(tmp_path: Path) -> None:
    dump = tmp_path / "d.jsonl"
    dump.write_text("".join(json.dumps({"id": i, "name": "x"}) + "\n" for i in range(200)))
    with pytest.raises(KeyMismatchError) as refused:
        validate_file(dump, (KeySpec("pk", "S"),))
    assert refused.value.message == (
        "key attribute 'pk' is missing from each of the first 100 items (the first has id, name)"
    )
    assert refused.value.mistake.fitting is None


# -- library errors in Python's words, the CLI's in flags --------------------------------


def test_a_missing_table_is_told_in_python_to_a_caller(tmp_path: Path) -> None:
    """The command says it in flags: see test_dynamodb_local's missing table."""
    with pytest.raises(TableMissingError) as missing:
        import_file(
            write_dump(tmp_path / "d.json", 3),
            "nope",
            ledger=tmp_path / "l.db",
            client=FakeDynamo(),
        )
    e = missing.value
    assert e.message == "table 'nope' does not exist at http://localhost:8000"
    assert "create_keys=(KeySpec('NAME', 'S'),)" in str(e.hint)
    assert "--" not in e.message + str(e.hint)


def test_an_unfinished_run_is_told_in_python_and_on_the_command_line_in_flags(
    tmp_path: Path,
) -> None:
    fake = FakeDynamo()
    ledger, _ = stopped_by_an_outage(tmp_path, fake)
    with pytest.raises(UsageError) as refused:
        import_file(tmp_path / "d.json", "t", ledger=ledger, client=fake)
    assert str(refused.value.hint).endswith("or pass new=True to start over")
    out = rimport("start", tmp_path / "d.json", "--table", "t", "--ledger", ledger)
    assert out.returncode == 2
    assert out.stderr.splitlines()[1].endswith("or pass --new to start over")


def test_the_cli_refuses_a_wrong_key_type_and_creates_no_table(
    tmp_path: Path, endpoint: str, ddb: Any, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", 1000)
    out = rimport("start", dump, "--table", "fresh-wrong-key", "--create-table", "--key",
                  "pk:N", "--endpoint", endpoint, "--ledger", ledger)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "error: key attribute 'pk' is a string in each of the first 100 items, but the key is pk:N",
        "hint: the table was not created; pass --key pk:S",
    ]
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        ddb.describe_table(TableName="fresh-wrong-key")
    assert json.loads(rimport("status", "--json", "--ledger", ledger).stdout) == []

    checked = rimport("validate", dump, "--key", "pk:N")
    assert checked.returncode == 2
    assert checked.stderr.splitlines()[-2:] == [
        "error: key attribute 'pk' is a string in each of the first 100 items, but the key is pk:N",
        "hint: the items fit --key pk:S",
    ]


def test_the_cli_stops_a_run_into_a_table_keyed_otherwise(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", 1000, key=lambda i: i)
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 2
    error, hint = out.stderr.splitlines()[-2:]
    assert error == (
        "error: key attribute 'pk' is a number in each of the first 100 items, but the key is pk:S"
    )
    assert hint.startswith("hint: nothing was written (run ")
    assert "--table NEW_TABLE" in hint and "--create-table --key pk:N" in hint
    assert ddb.scan(TableName=table)["Count"] == 0
    (run,) = json.loads(rimport("status", "--json", "--ledger", ledger).stdout)
    assert (run["state"], run["items_committed"], run["dead_letters"]) == ("failed", 0, 0)
