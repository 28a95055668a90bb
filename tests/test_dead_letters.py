"""What an operator does with a run's dead letters: take them out to a file, fix and load
them again (`dead-letters`), see why (`status`, `retry-failed`), and forget old runs.

Runs are made through the library against the fake, so most of these need no DynamoDB,
and the commands run in this process with the arguments a user types. One test goes
through DynamoDB Local with the installed `rimport`, start to finish.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import rimport, scan
from fakes import FakeDynamo
from typer.testing import CliRunner

from resumable_import import ImportOptions, Ledger, RetryPolicy, import_file
from resumable_import.attributes import to_item
from resumable_import.cli import app
from resumable_import.items import plain_json
from resumable_import.options import Recorded
from resumable_import.reader import Dump

FAST = RetryPolicy(
    max_attempts=3, base_delay=0.0001, max_delay=0.001, item_timeout=0.0, max_outage=0.5
)


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str | Path) -> Done:
    """The command in this process (as `rimport` runs it, but without starting Python and
    importing botocore again for each of the dozens of calls here)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    return Done(result.exit_code, result.stdout, result.stderr)


def deep(levels: int) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": "deep"}
    inner = item
    for _ in range(levels):
        inner["x"] = {}
        inner = inner["x"]
    return item


# Every way an item ends up dead-lettered from a plain dump: refused by rimport's checks
# (kept as the element it was) or by DynamoDB (kept as the item sent).
REFUSED = {
    3: {"pk": 3, "price": Decimal("1.50"), "big": 12345678901234567890123456789,
        "s": "é\u2028\"\\", "n": None, "b": True, "l": [1, "a", {"q": Decimal("0.1")}]},
    5: {"no_key": 1},
    7: deep(40),
    9: {"pk": ""},
    13: {"pk": "k13", "v": 13, "f": Decimal("2.50")},  # poisoned: DynamoDB refuses it
    30: 17,  # not an object
}  # fmt: skip


def refused_dump(tmp_path: Path) -> Path:
    elements: list[Any] = [{"pk": f"k{i}", "v": i} for i in range(31)]
    for index, value in REFUSED.items():
        elements[index] = value
    dump = tmp_path / "d.json"
    dump.write_text("[" + ",\n".join(plain_json(e) for e in elements) + "]")
    return dump


def run_with_dead_letters(tmp_path: Path, ledger: Path) -> str:
    fake = FakeDynamo()
    fake.poison = {"k13"}
    result = import_file(refused_dump(tmp_path), "t", ledger=ledger, client=fake, retry=FAST)
    assert (result.dead_letters, result.retryable) == (len(REFUSED), 0)
    return result.run_id


def read_back(path: Path, fmt: str) -> list[Any]:
    return [raw.value for raw in Dump.open(path, fmt).items()]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "ddb-json"])
def test_dead_letters_read_back_as_the_items_they_were(
    tmp_path: Path, ledger: Path, fmt: str
) -> None:
    run_id = run_with_dead_letters(tmp_path, ledger)
    out = tmp_path / f"fix.{fmt}"
    done = cli("dead-letters", run_id, "--out", out, "--format", fmt, "--ledger", ledger)
    got = read_back(out, "jsonl" if fmt == "jsonl" else fmt)
    if fmt == "ddb-json":  # the element nested too deep cannot be converted without decoding
        assert done.returncode == 3, done.stderr
        assert "left out 1 item: nested too deep" in done.stderr
        want = [to_item(v) if isinstance(v, dict) else v for i, v in REFUSED.items() if i != 7]
        # DynamoDB JSON keeps a number as its text: 1.50 stays 1.50, as it was sent
        assert got[0]["price"] == {"N": "1.50"}
    else:
        assert done.returncode == 0, done.stderr
        want = list(REFUSED.values())
    assert got == want
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"{len(want)} dead letters written to {out} ({fmt})" in done.stderr
    reader_fmt = " --format ddb-json" if fmt == "ddb-json" else ""
    assert f"`rimport start {out} --table t{reader_fmt} --ledger {ledger}`" in done.stderr


def test_typed_dead_letters_keep_binary_and_sets_in_ddb_json_only(
    tmp_path: Path, ledger: Path
) -> None:
    items = [{"pk": {"S": f"k{i}"}, "b": {"B": "AAE="}, "ss": {"SS": ["x", "y"]}} for i in range(4)]
    items[2]["pk"] = {"N": "2"}  # wrong key type: refused before sending
    dump = tmp_path / "d.jsonl"
    dump.write_text("".join(json.dumps(i) + "\n" for i in items))
    fake = FakeDynamo()
    fake.poison = {"k1"}
    result = import_file(
        dump, "t", ImportOptions(format="ddb-json"), ledger=ledger, client=fake, retry=FAST
    )
    assert result.dead_letters == 2
    default = cli("dead-letters", result.run_id, "--ledger", ledger)  # ddb-json, as read
    assert default.returncode == 0, default.stderr
    assert [json.loads(line) for line in default.stdout.splitlines()] == [items[1], items[2]]
    plain = cli("dead-letters", result.run_id, "--format", "jsonl", "--ledger", ledger)
    assert plain.returncode == 3 and plain.stdout == ""
    assert "left out 2 items: binary or sets, which plain JSON cannot hold" in plain.stderr


def test_reasons_go_beside_the_items_and_the_file_is_never_overwritten(
    tmp_path: Path, ledger: Path
) -> None:
    run_id = run_with_dead_letters(tmp_path, ledger)
    out = tmp_path / "fix.jsonl"
    first = cli("dead-letters", run_id, "-o", out, "--with-reasons", "--ledger", ledger)
    assert first.returncode == 0, first.stderr
    reasons = [json.loads(line) for line in Path(f"{out}.reasons.jsonl").read_text().splitlines()]
    assert [(r["index"], r["code"], r["line"]) for r in reasons] == [
        (3, "KeyType", 1), (5, "MissingKey", 2), (7, "TooDeep", 3), (9, "EmptyKey", 4),
        (13, "ValidationException", 5), (30, "NotAnObject", 6),
    ]  # fmt: skip
    assert reasons[4]["attempts"] > 0 and reasons[4]["retryable"] is False
    assert stat.S_IMODE(Path(f"{out}.reasons.jsonl").stat().st_mode) == 0o600

    before = out.read_text()
    again = cli("dead-letters", run_id, "-o", out, "--reason", "keytype", "--ledger", ledger)
    assert again.returncode == 2 and f"error: {out} exists already" in again.stderr
    assert out.read_text() == before and not list(tmp_path.glob(".fix.jsonl.*"))
    forced = cli(
        "dead-letters", run_id, "-o", out, "--reason", "keytype", "--reason", "EmptyKey",
        "--force", "--ledger", ledger,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert read_back(out, "jsonl") == [REFUSED[3], REFUSED[9]]
    unknown = cli("dead-letters", run_id, "--reason", "Throttling", "--ledger", ledger)
    assert unknown.returncode == 2
    assert "has no pending dead letter of reason 'Throttling' (it has: EmptyKey, " in unknown.stderr


def test_status_and_retry_failed_say_why_and_what_to_do(tmp_path: Path, ledger: Path) -> None:
    run_id = run_with_dead_letters(tmp_path, ledger)
    st = json.loads(cli("status", run_id, "--json", "--ledger", ledger).stdout)
    details = st["dead_letter_details"]
    assert {(r["code"], r["count"], r["retryable"]) for r in details["by_reason"]} == {
        ("KeyType", 1, False), ("MissingKey", 1, False), ("TooDeep", 1, False),
        ("EmptyKey", 1, False), ("ValidationException", 1, False), ("NotAnObject", 1, False),
    }  # fmt: skip
    assert [d["index"] for d in details["first"]] == list(REFUSED)
    assert set(details["first"][0]) == {"index", "code", "message", "attempts", "retryable"}
    assert details["first_limit"] == 20
    assert details["all"].startswith(f"rimport dead-letters {run_id} --with-reasons --out FILE")
    assert st["elapsed_seconds"] >= 0 and "items_per_second" in st

    retry = cli("retry-failed", run_id, "--ledger", ledger)
    assert retry.returncode == 3
    lines = retry.stderr.splitlines()
    assert lines[0].startswith(f"none of run {run_id}'s 6 dead letters can succeed by retrying: ")
    assert "1 KeyType (not retryable), " in lines[0]
    assert lines[1].startswith(
        f"fix them with `rimport dead-letters {run_id} --out dead-letters-{run_id}.jsonl"
    )
    assert "retry-failed" not in retry.stderr.split("\n", 1)[1]


def test_the_status_of_many_dead_letters_names_the_command_for_the_rest(
    tmp_path: Path, ledger: Path
) -> None:
    dump = tmp_path / "d.jsonl"  # one good item first: a dump of only bad keys stops early
    dump.write_text('{"pk": "a"}\n' + "".join(json.dumps({"pk": i}) + "\n" for i in range(50)))
    run_id = import_file(dump, "t", ledger=ledger, client=FakeDynamo(), retry=FAST).run_id
    shown = cli("status", run_id, "--ledger", ledger)
    assert f"  ... and 30 more: `rimport dead-letters {run_id} --with-reasons --out FILE" in (
        shown.stdout
    )
    assert "elapsed:" in shown.stdout and "rate:" in shown.stdout
    table = cli("status", "--ledger", ledger).stdout.splitlines()
    assert table[0].split() == ["RUN", "STATE", "TABLE", "ITEMS", "WRITTEN", "DEAD", "DONE",
                                "ELAPSED", "RATE", "ENDPOINT", "FILE"]  # fmt: skip
    assert table[1].split()[-2:] == ["localhost:8000", "d.jsonl"]


def test_forget_removes_runs_with_their_dead_letters_but_never_a_running_one(
    tmp_path: Path, ledger: Path
) -> None:
    run_id = run_with_dead_letters(tmp_path, ledger)
    (tmp_path / "clean.jsonl").write_text('{"pk": "a"}\n')
    clean = import_file(tmp_path / "clean.jsonl", "t", ledger=ledger, client=FakeDynamo())
    with Ledger(ledger) as book, book.lock(run_id):
        busy = cli("forget", run_id, "--ledger", ledger)
    assert busy.returncode == 1
    assert f"error: run {run_id} is being run by another rimport process" in busy.stderr
    usage = cli("forget", "--older-than", "30d", "--ledger", ledger)
    assert usage.returncode == 2
    assert cli("forget", "--completed", "--older-than", "3w", "--ledger", ledger).returncode == 2

    # Nothing finished 30 days ago; then make both runs 31 days old.
    none = cli("forget", "--completed", "--older-than", "30d", "--ledger", ledger)
    assert (none.returncode, none.stderr) == (0, "no run to forget (none finished that long ago)\n")
    with sqlite3.connect(ledger) as db:
        db.execute("UPDATE runs SET finished_at = '2000-01-01T00:00:00+00:00'")
    old = cli("forget", "--completed", "--older-than", "30d", "--ledger", ledger)
    assert old.returncode == 0, old.stderr
    assert f"forgot run {clean.run_id}: completed" in old.stderr
    assert run_id not in old.stderr  # completed with failures: only with --with-failures
    dry = cli("forget", "--completed", "--with-failures", "--dry-run", "--ledger", ledger)
    assert f"would forget run {run_id}: completed_with_failures" in dry.stderr
    gone = cli("forget", run_id[:6], "--ledger", ledger)
    assert gone.returncode == 0, gone.stderr
    assert f"forgot run {run_id}: completed_with_failures, d.json -> t" in gone.stderr
    assert "with its 6 dead letters" in gone.stderr
    assert json.loads(cli("status", "--json", "--ledger", ledger).stdout) == []
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
    assert not (ledger.parent / "ledger.sqlite.locks" / f"{run_id}.lock").exists()


def test_items_refused_for_their_key_type_are_fixed_and_loaded_again(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    """The table's key is a string and all but the first of the dump's are numbers: they
    are refused, none can succeed by retrying, and the way out is to fix them and load them
    again. (Had the first 100 items all been wrong, the run would have stopped at once.)"""
    dump = tmp_path / "d.jsonl"
    first = json.dumps({"pk": "first", "v": -1}) + "\n"
    dump.write_text(first + "".join(json.dumps({"pk": i, "v": i}) + "\n" for i in range(40)))
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 3, out.stderr
    run_id = out.stdout.splitlines()[0]
    assert "none of them can succeed by retrying" in out.stderr
    assert "retry-failed" not in out.stderr
    assert f"`rimport dead-letters {run_id} --out dead-letters-{run_id}.jsonl" in out.stderr

    fix = tmp_path / "fix.jsonl"
    export = rimport("dead-letters", run_id, "--out", fix, "--ledger", ledger)
    assert export.returncode == 0, export.stderr
    items = [json.loads(line) for line in fix.read_text().splitlines()]
    assert items == [{"pk": i, "v": i} for i in range(40)]
    fix.write_text("".join(json.dumps({**i, "pk": str(i["pk"])}) + "\n" for i in items))
    load = rimport("start", fix, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert load.returncode == 0, load.stderr
    expected = {str(i): {"pk": str(i), "v": i} for i in range(40)}
    assert scan(ddb, table) == {**expected, "first": {"pk": "first", "v": -1}}


def test_elapsed_time_and_rate_count_the_stints_not_the_pauses(
    tmp_path: Path, ledger: Path
) -> None:
    with Ledger(ledger) as book:
        run = book.create_run(
            file=str(tmp_path / "d.json"), file_size=1, file_hash="sha256:0", table="t",
            endpoint="http://user:secret@localhost:8000", region="r", format="auto",
            shape="array", options=Recorded(),
        )  # fmt: skip

        def stint(seconds: int, items: int, then: str) -> None:
            """A stint of `seconds` that commits `items`, ended by `then` (or by a crash)."""
            book.set_state(run.id, "running")
            with sqlite3.connect(ledger) as db:
                db.execute(
                    "UPDATE runs SET running_since = datetime(running_since, ?),"
                    " started_at = datetime(started_at, '-3 days')",
                    (f"-{seconds} seconds",),
                )
            book.commit(run.id, items_committed=items, byte_offset=0, written=items, dead=[])
            with sqlite3.connect(ledger) as db:  # its last checkpoint, `seconds` in
                db.execute("UPDATE runs SET updated_at = datetime(running_since, ?)",
                           (f"+{seconds} seconds",))  # fmt: skip
            if then != "crash":
                book.set_state(run.id, then)

        stint(100, 1000, "interrupted")
        stint(50, 1500, "crash")  # the process died: resumed three days later
        stint(50, 3000, "completed")
    st = json.loads(cli("status", run.id, "--json", "--ledger", ledger).stdout)
    assert 199 <= st["elapsed_seconds"] <= 202  # not the three days since its start
    assert st["items_per_second"] == pytest.approx(15, abs=0.2)
    row = cli("status", "--ledger", ledger).stdout.splitlines()[1].split()
    assert row[7] in ("3m19s", "3m20s", "3m21s")  # the stints' seconds, give or take one
    assert row[8:10] == ["15/s", "***@localhost:8000"]
