"""The ledger: migrations, run lookup, checkpoints with dead letters, and ownership."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resumable_import import ledger as ledger_module
from resumable_import.errors import LedgerError, RunBusyError, UsageError
from resumable_import.ledger import DeadLetter, Ledger
from resumable_import.options import Recorded, WriteSettings


def new_run(book: Ledger, **overrides: object):
    fields = dict(file="/d.json", file_size=10, file_hash="sha256:x", table="t",
                  endpoint="http://localhost:8000", region="us-east-1", format="auto",
                  shape="array", options=Recorded(WriteSettings(concurrency=1)))  # fmt: skip
    fields.update(overrides)
    return book.create_run(**fields)  # type: ignore[arg-type]


def test_a_new_ledger_has_every_migration_applied_and_recorded(tmp_path: Path) -> None:
    with Ledger(tmp_path / "a" / "l.db") as book:
        assert book.schema_version == max(n for n, _ in ledger_module.migrations())
    db = sqlite3.connect(tmp_path / "a" / "l.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "dead_letters"} <= tables
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_a_later_migration_is_applied_once_in_order(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "l.db"
    Ledger(path).close()
    shipped = ledger_module.migrations()
    assert [n for n, _ in shipped] == list(range(1, len(shipped) + 1))  # numbered, no gaps
    nxt = len(shipped) + 1
    steps = [*shipped, (nxt, "ALTER TABLE runs ADD COLUMN note TEXT;\n")]
    monkeypatch.setattr(ledger_module, "migrations", lambda: steps)
    with Ledger(path) as book:
        assert book.schema_version == nxt
        book._db.execute("UPDATE runs SET note = 'x'")  # the new column exists
    with Ledger(path) as book:  # reopening does not apply it again (it would fail)
        assert book.schema_version == nxt


def test_a_ledger_from_a_newer_rimport_is_refused_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(LedgerError, match="schema version 99, newer than"):
        Ledger(path)


def test_runs_are_found_by_any_unique_prefix(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as book:
        run = new_run(book)
        assert len(run.id) >= 8
        assert book.run(run.id[:3]).id == run.id
        with pytest.raises(UsageError, match="no run 'ffffffffffffffff'"):
            book.run("f" * 16)
        with pytest.raises(UsageError, match="not a run id"):
            book.run("x; drop")


def test_a_commit_moves_the_checkpoint_together_with_its_dead_letters(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as book:
        run = new_run(book)
        letter = DeadLetter(3, {"pk": {"S": "a"}}, "ValidationException", "too big", 1, False)
        book.commit(run.id, items_committed=25, byte_offset=900, written=24, dead=[letter])
        got = book.run(run.id)
        assert (got.items_committed, got.byte_offset, got.items_written, got.dead_letters) == (
            25, 900, 24, 1,
        )  # fmt: skip
        (stored,) = book.dead_letters(run.id)
        assert (stored.index, stored.item, stored.code) == (
            3,
            {"pk": {"S": "a"}},
            "ValidationException",
        )
        assert book.dead_letters(run.id, retryable_only=True) == []


HOLDER = """
import sys, time
from resumable_import.ledger import Ledger
book = Ledger(sys.argv[1])
with book.lock(sys.argv[2]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_looking_at_a_run_never_makes_taking_it_fail(tmp_path: Path) -> None:
    """`status` tests a run's lock by taking it for a moment; a `resume` starting at that
    moment must still get the run (it once failed with 'being run by another process')."""
    path = tmp_path / "l.db"
    with Ledger(path) as book:
        run = new_run(book)
        with book.lock(run.id):  # the lock file exists before anyone looks
            pass
    looking = subprocess.Popen(
        [sys.executable, "-c", LOOKER, str(path), run.id], stdout=subprocess.PIPE, text=True
    )
    try:
        assert looking.stdout is not None and looking.stdout.readline() == "looking\n"
        with Ledger(path) as book:
            for _ in range(3000):  # without patience, about 1 in 60 failed here
                with book.lock(run.id):
                    pass
    finally:
        looking.kill()
        looking.wait()
        looking.stdout.close()  # type: ignore[union-attr]


LOOKER = """
import sys
from resumable_import.ledger import Ledger
with Ledger(sys.argv[1]) as book:
    print("looking", flush=True)
    while True:
        book.is_locked(sys.argv[2])
"""


def test_a_running_run_whose_process_died_shows_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as book:
        run = new_run(book)
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), run.id],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        with Ledger(path) as book:
            assert book.run(run.id).state == "running"
            with pytest.raises(RunBusyError), book.lock(run.id):
                pass
        child.send_signal(signal.SIGKILL)
        child.wait()
        time.sleep(0.05)
        with Ledger(path) as book:
            assert book.run(run.id).state == "interrupted"
            with book.lock(run.id):
                assert book.run(run.id).state == "running"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]


def test_ctrl_c_landing_just_after_a_commit_stays_a_ctrl_c(tmp_path: Path) -> None:
    """The interrupt may arrive after COMMIT returned but before the transaction block
    ends: there is nothing to roll back, and the user must still see an interruption."""

    class InterruptAfterCommit:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __getattr__(self, name: str) -> object:
            return getattr(self.db, name)

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            cursor = self.db.execute(sql, *args)
            if sql == "COMMIT":
                raise KeyboardInterrupt
            return cursor

    with Ledger(tmp_path / "l.db") as book:
        run = new_run(book)
        real = book._db
        book._db = InterruptAfterCommit(real)  # type: ignore[assignment]
        with pytest.raises(KeyboardInterrupt):
            book.commit(run.id, items_committed=25, byte_offset=900, written=25, dead=[])
        book._db = real
        assert book.run(run.id).items_committed == 25
