"""Whole runs through the library API against the fault-injecting fake."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from fakes import FakeDynamo, ShuffledTransport

import resumable_import.loop as loop_module
import resumable_import.run as run_module
from resumable_import import (
    FileChangedError,
    Hooks,
    ImportOptions,
    InputError,
    Ledger,
    RetryPolicy,
    RunBusyError,
    ServiceError,
    UsageError,
    WriteSettings,
    import_file,
    resume_run,
    retry_failed,
    run_status,
)
from resumable_import.cli.hints import spelled

# Budgets of no time at all: a stubborn item gives up after its 3 attempts, and the run
# stops once nothing has answered for half a second.
FAST = RetryPolicy(
    max_attempts=3, base_delay=0.0001, max_delay=0.001, item_timeout=0.0, max_outage=0.5
)
DOWN = (0.0, float("inf"))  # `FakeDynamo.down`: the endpoint unreachable from now on


@pytest.fixture(params=["reader process", "one process"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a run reads its dump: in a second process (the default with two cores)
    or in its own."""
    monkeypatch.setenv("RIMPORT_READER_PROCESS", "1" if request.param == "reader process" else "0")
    return str(request.param)


def write_dump(path: Path, n: int, key=lambda i: f"k{i}") -> Path:
    path.write_text(json.dumps([{"pk": key(i), "v": i} for i in range(n)], indent=1))
    return path


def table_values(fake: FakeDynamo) -> dict[str, int]:
    return {k[0]: int(item["v"]["N"]) for k, item in fake.items.items()}


def test_faults_are_ridden_out_and_only_the_bad_item_is_dead_lettered(
    tmp_path: Path, reading: str
) -> None:
    fake = FakeDynamo()
    fake.fail_next = ["ThrottlingException", "InternalServerError", "connection"]
    fake.unprocessed = {"k30": 2}
    fake.poison = {"k13"}
    dump = write_dump(tmp_path / "d.json", 100)
    result = import_file(dump, "t", ledger=tmp_path / "l.db", client=fake, retry=FAST)
    assert result.state == "completed_with_failures"
    assert (result.items_committed, result.items_written, result.dead_letters) == (100, 99, 1)
    assert table_values(fake) == {f"k{i}": i for i in range(100) if i != 13}
    with Ledger(tmp_path / "l.db") as book:
        (letter,) = book.dead_letters(result.run_id)
    assert (letter.index, letter.code, letter.retryable) == (13, "ValidationException", False)
    assert letter.item == {"pk": {"S": "k13"}, "v": {"N": "13"}}


def test_retry_failed_writes_the_retryable_ones_once_the_fault_clears(tmp_path: Path) -> None:
    fake = FakeDynamo()
    fake.unprocessed = {"k5": 10**6, "k40": 10**6}
    fake.poison = {"k13"}
    dump = write_dump(tmp_path / "d.json", 50)
    ledger = tmp_path / "l.db"
    first = import_file(dump, "t", ledger=ledger, client=fake, retry=FAST)
    assert first.dead_letters == 3
    assert "k5" not in table_values(fake)

    fake.unprocessed.clear()
    again = retry_failed(first.run_id, ledger=ledger, client=fake, retry=FAST)
    assert again.dead_letters == 1
    assert again.items_written == 49
    assert again.state == "completed_with_failures"
    assert table_values(fake) == {f"k{i}": i for i in range(50) if i != 13}
    with Ledger(ledger) as book:
        (left,) = book.dead_letters(first.run_id)
    assert left.index == 13


def test_out_of_order_completion_keeps_the_checkpoint_gapless(
    tmp_path: Path, monkeypatch, reading: str
) -> None:
    fake = FakeDynamo()
    monkeypatch.setattr(run_module, "SyncTransport", ShuffledTransport)
    dump = write_dump(tmp_path / "d.json", 1500)
    seen: list[int] = []

    def progress(items: int, done: int, total: int) -> None:
        written = table_values(fake)
        assert all(f"k{i}" in written for i in range(items)), "checkpoint ran ahead of a write"
        seen.append(items)

    import_file(
        dump,
        "t",
        ImportOptions(settings=WriteSettings(concurrency=8)),
        Hooks(progress=progress),
        ledger=tmp_path / "l.db",
        client=fake,
        retry=FAST,
    )
    assert seen == sorted(seen) and seen[-1] == 1500
    assert len(table_values(fake)) == 1500


def test_items_sharing_a_key_land_in_file_order_under_concurrency(
    tmp_path: Path, monkeypatch, reading: str
) -> None:
    fake = FakeDynamo()
    monkeypatch.setattr(run_module, "SyncTransport", ShuffledTransport)
    dump = write_dump(tmp_path / "d.json", 2000, key=lambda i: f"k{(i * 7) % 60}")
    import_file(
        dump,
        "t",
        ImportOptions(settings=WriteSettings(concurrency=8)),
        ledger=tmp_path / "l.db",
        client=fake,
        retry=FAST,
    )
    last = {}
    for i in range(2000):
        last[f"k{(i * 7) % 60}"] = i
    assert table_values(fake) == last
    # every key's puts arrived in file order, not just the last one
    order: dict[str, list[int]] = {}
    for (pk,) in fake.log:
        order.setdefault(pk, []).append(len(order.get(pk, [])))
    assert all(len(v) >= 30 for v in order.values())


def test_a_malformed_tail_keeps_what_came_before_and_resumes_once_fixed(
    tmp_path: Path, reading: str
) -> None:
    fake = FakeDynamo()
    ledger = tmp_path / "l.db"
    good = [{"pk": f"k{i}", "v": i} for i in range(60)]
    body = json.dumps(good)[:-1]
    dump = tmp_path / "d.json"
    dump.write_text(body + ', {"pk": "k60", "v": oops}]')
    with pytest.raises(InputError, match=r"invalid JSON .* in item 60") as e:
        import_file(
            dump,
            "t",
            ImportOptions(settings=WriteSettings(batch_size=7)),
            ledger=ledger,
            client=fake,
            retry=FAST,
        )
    assert "fix the file" in (e.value.hint or "")
    (run,) = run_status(ledger=ledger)
    assert (run.state, run.items_committed) == ("failed", 60)
    assert len(fake.items) == 60

    dump.write_text(body + ', {"pk": "k60", "v": 60}, {"pk": "k61", "v": 61}]')
    result = resume_run(run.id, ledger=ledger, client=fake, retry=FAST)
    assert (result.state, result.items_committed) == ("completed", 62)
    assert table_values(fake) == {f"k{i}": i for i in range(62)}


def test_resume_refuses_a_file_that_changed_before_the_checkpoint(tmp_path: Path) -> None:
    fake = FakeDynamo()
    ledger = tmp_path / "l.db"
    dump = write_dump(tmp_path / "d.json", 100)
    fake.on_call = lambda items: setattr(fake, "down", DOWN)  # down after one
    with pytest.raises(ServiceError, match="has not answered for"):
        import_file(
            dump,
            "t",
            ImportOptions(settings=WriteSettings(concurrency=1)),
            ledger=ledger,
            client=fake,
            retry=FAST,
        )
    (run,) = run_status(ledger=ledger)
    assert (run.state, run.items_committed) == ("failed", 25)
    fake.on_call = None
    fake.down = None
    write_dump(dump, 100, key=lambda i: f"other{i}")
    with pytest.raises(FileChangedError, match="has changed since run"):
        resume_run(run.id, ledger=ledger, client=fake, retry=FAST)
    written = table_values(fake)
    assert all(f"k{i}" in written for i in range(25))
    assert not any(k.startswith("other") for k in written), "the changed file was read"


def test_a_run_stopped_by_the_service_resumes_where_it_stopped(tmp_path: Path) -> None:
    fake = FakeDynamo()
    ledger = tmp_path / "l.db"
    dump = write_dump(tmp_path / "d.json", 300)
    calls = {"n": 0}

    def outage(items: list) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            fake.down = DOWN

    fake.on_call = outage
    with pytest.raises(ServiceError):
        import_file(
            dump,
            "t",
            ImportOptions(settings=WriteSettings(concurrency=1)),
            ledger=ledger,
            client=fake,
            retry=FAST,
        )
    (run,) = run_status(ledger=ledger)
    assert run.items_committed == 125  # the five batches that made it before the outage
    fake.on_call = None
    fake.down = None  # the outage is over
    result = resume_run(run.id, ledger=ledger, client=fake, retry=FAST)
    assert result.state == "completed"
    assert table_values(fake) == {f"k{i}": i for i in range(300)}


def test_a_remote_endpoint_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    fake = FakeDynamo()
    dump = write_dump(tmp_path / "d.json", 10)
    with pytest.raises(UsageError, match="refusing to write to https://dynamodb"):
        import_file(
            dump,
            "t",
            ImportOptions(endpoint="https://dynamodb.eu-west-1.amazonaws.com"),
            ledger=tmp_path / "l.db",
            client=fake,
        )
    assert fake.calls == 0
    assert run_status(ledger=tmp_path / "l.db") == []


def test_a_run_held_by_another_owner_cannot_be_resumed(tmp_path: Path) -> None:
    fake = FakeDynamo()
    ledger = tmp_path / "l.db"
    fake.down = DOWN
    with pytest.raises(ServiceError):
        import_file(
            write_dump(tmp_path / "d.json", 60),
            "t",
            ImportOptions(settings=WriteSettings(concurrency=1)),
            ledger=ledger,
            client=fake,
            retry=FAST,
        )
    (run,) = run_status(ledger=ledger)
    with Ledger(ledger) as other, other.lock(run.id):
        assert run_status(run.id, ledger=ledger)[0].state == "failed"
        with pytest.raises(RunBusyError, match="another rimport process"):
            resume_run(run.id, ledger=ledger, client=fake, retry=FAST)


def test_a_gzip_dump_resumes_after_an_outage_and_reports_its_codec(tmp_path: Path) -> None:
    fake = FakeDynamo()
    ledger = tmp_path / "l.db"
    dump = tmp_path / "d.jsonl"  # the name says nothing of the compression
    lines = "".join(json.dumps({"pk": f"k{i}", "v": i}) + "\n" for i in range(300))
    dump.write_bytes(gzip.compress(lines.encode()))
    seen: list[tuple[int, int, int]] = []
    fake.on_call = lambda items: setattr(fake, "down", DOWN) if fake.calls == 4 else None
    with pytest.raises(ServiceError):
        import_file(
            dump,
            "t",
            ImportOptions(settings=WriteSettings(concurrency=1)),
            Hooks(progress=lambda *p: seen.append(p)),
            ledger=ledger,
            client=fake,
            retry=FAST,
        )
    (run,) = run_status(ledger=ledger)
    assert run.shape == "jsonl+gzip"
    assert 0 < run.items_committed < 300
    assert all(done <= total == dump.stat().st_size for _, done, total in seen)
    fake.on_call = None
    fake.down = None
    assert resume_run(run.id, ledger=ledger, client=fake, retry=FAST).state == "completed"
    assert table_values(fake) == {f"k{i}": i for i in range(300)}


def test_lines_appended_while_a_dump_is_read_are_reported_not_taken_in(
    tmp_path: Path, reading: str
) -> None:
    """Reading stops at the size hashed at the start; the growth is reported at the end."""
    path = tmp_path / "growing.jsonl"
    path.write_text("".join(f'{{"pk": "k{i}"}}\n' for i in range(2000)))
    size = path.stat().st_size

    def append(items: int, done: int, total: int) -> None:
        if items == 25:
            with path.open("a") as f:
                f.write("".join(f'{{"pk": "late{i}"}}\n' for i in range(500)))

    fake = FakeDynamo()
    with pytest.raises(FileChangedError) as changed:
        import_file(
            path,
            "t",
            hooks=Hooks(progress=append),
            ledger=tmp_path / "l.db",
            client=fake,
            retry=FAST,
        )
    grown = path.stat().st_size
    assert changed.value.message == (
        f"{path}: the file grew from {size:,} to {grown:,} bytes while it was read; only its "
        f"first {size:,} bytes were imported"
    )
    assert "rimport start" in spelled(changed.value.hint or "")
    assert sorted(fake.items) == sorted((f"k{i}",) for i in range(2000))
    (run,) = run_status(ledger=tmp_path / "l.db")
    assert (run.state, run.items_committed, run.file_size) == ("completed", 2000, size)
    assert run.error is not None and "grew" in run.error


def test_an_unexpected_failure_leaves_the_run_failed_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug must not leave a run `running` (with items written past its checkpoint) that
    every later look would call interrupted: it is recorded as failed, with what it was."""
    real = loop_module._Committer.commit
    calls = []

    def commit_then_break(self, batch, failures, **more) -> None:  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise TypeError("a bug")
        real(self, batch, failures, **more)

    monkeypatch.setattr(loop_module._Committer, "commit", commit_then_break)
    path = write_dump(tmp_path / "d.json", 200)
    with pytest.raises(TypeError):
        import_file(path, "t", ledger=tmp_path / "l.db", client=FakeDynamo(), retry=FAST)
    (run,) = run_status(ledger=tmp_path / "l.db")
    assert (run.state, run.items_committed, run.error) == (
        "failed", 50, "unexpected TypeError: a bug",
    )  # fmt: skip


def test_credentials_that_cannot_be_refreshed_stop_the_run_resumably(tmp_path: Path) -> None:
    """An expired session token or SSO login: the run is failed (not left running), says
    to refresh the credentials, and `resume` continues once they are fresh."""
    from resumable_import.errors import CredentialsError

    fake = FakeDynamo()
    real = fake.batch_write_item
    expired = {"now": False}

    def write(**kw):  # type: ignore[no-untyped-def]
        if fake.calls >= 3 and expired["now"] is False:
            expired["now"] = True
        if expired["now"] is True:
            raise CredentialsError(
                "cannot sign the request: TokenRetrievalError: the SSO token expired",
                "refresh your AWS credentials (aws sso login, ...)",
            )
        return real(**kw)

    fake.batch_write_item = write  # type: ignore[method-assign]
    path = write_dump(tmp_path / "d.json", 200)
    with pytest.raises(CredentialsError) as stopped:
        import_file(path, "t", ledger=tmp_path / "l.db", client=fake, retry=FAST)
    assert "rimport resume" in spelled(stopped.value.hint or "")
    (run,) = run_status(ledger=tmp_path / "l.db")
    assert run.state == "failed" and "TokenRetrievalError" in (run.error or "")
    expired["now"] = None  # fresh credentials
    result = resume_run(run.id, ledger=tmp_path / "l.db", client=fake, retry=FAST)
    assert (result.state, result.items_committed) == ("completed", 200)
    assert len(fake.items) == 200
