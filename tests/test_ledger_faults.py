"""The ledger's own faults, as a user meets them through the CLI: files private to the
user, read-only files and folders, a folder in the way, a damaged file, a full disk."""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import RIMPORT, rimport
from fakes import FakeDynamo

from resumable_import import Hooks
from resumable_import.cli.hints import spelled
from resumable_import.errors import LedgerError
from resumable_import.ledger import DeadLetter, Ledger
from resumable_import.options import Recorded, WriteSettings
from resumable_import.run import import_file, resume_run

_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2


def _as_a_user() -> None:
    """In the child, before exec: root gives up overriding file permissions, so that a
    read-only file is read-only to the rimport it runs (as it is to any other user)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def rimport_as_user(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RIMPORT, *map(str, args)], capture_output=True, text=True, timeout=120,
        env=os.environ.copy(), preexec_fn=_as_a_user,
    )  # fmt: skip


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def new_run(book: Ledger, table: str = "t") -> Any:
    return book.create_run(
        file="/d.json", file_size=10, file_hash="sha256:x", table=table,
        endpoint="http://localhost:8000", region="us-east-1", format="auto", shape="array",
        options=Recorded(WriteSettings(concurrency=1)),
    )  # fmt: skip


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(f'{{"pk": "k{i}", "v": {i}}}\n' for i in range(300)), "utf-8")
    return path


def test_the_ledger_its_wal_its_locks_and_the_log_are_private(
    tmp_path: Path, dump: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = os.umask(0o022)
    try:
        ledger = tmp_path / "state" / "rimport" / "ledger.sqlite"
        monkeypatch.delenv("RIMPORT_LOG", raising=False)
        seen: dict[str, int] = {}

        def look(items: int, done: int, total: int) -> None:  # while the run is open
            for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm", "rimport.log"):
                seen[name] = mode(ledger.parent / name)
            (lock,) = (ledger.parent / "ledger.sqlite.locks").iterdir()
            seen["lock"], seen["locks"] = mode(lock), mode(lock.parent)

        import_file(dump, "t", hooks=Hooks(progress=look), ledger=ledger, client=FakeDynamo())
    finally:
        os.umask(old)
    assert mode(ledger.parent) == 0o700
    assert seen == {
        "ledger.sqlite": 0o600, "ledger.sqlite-wal": 0o600, "ledger.sqlite-shm": 0o600,
        "rimport.log": 0o600, "lock": 0o600, "locks": 0o700,
    }  # fmt: skip


def test_a_ledger_an_older_rimport_left_readable_to_all_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    path.chmod(0o644)
    Ledger(path).close()
    assert mode(path) == 0o600


def test_a_read_only_ledger_is_still_shown_and_refuses_new_runs_in_one_line(
    tmp_path: Path, dump: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    with Ledger(ledger) as book:
        run = new_run(book)
    ledger.chmod(0o400)
    shown = rimport_as_user("status", "--ledger", ledger)
    assert shown.returncode == 0, shown.stderr
    assert run.id in shown.stdout
    out = rimport_as_user("start", dump, "--table", "t", "--ledger", ledger)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"error: the ledger {ledger} is read-only (attempt to write a readonly database)",
        "hint: make it and its folder writable (chmod u+w), or pass --ledger PATH (or set "
        "RIMPORT_LEDGER) to use another file",
    ]


def test_a_ledger_folder_that_cannot_be_created_is_one_line(tmp_path: Path, dump: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = rimport_as_user("start", dump, "--table", "t", "--ledger", locked / "sub" / "l.sqlite")
    assert out.returncode == 1
    assert out.stderr.splitlines()[0] == (
        f"error: cannot create the ledger's folder {locked / 'sub'}: permission denied"
    )
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for ledger, why in ((blocker / "l.sqlite", "a file is in the way"),
                        (blocker / "sub" / "l.sqlite", "not a directory")):  # fmt: skip
        out = rimport("start", dump, "--table", "t", "--ledger", ledger)
        assert out.returncode == 1
        assert out.stderr.splitlines()[0] == (
            f"error: cannot create the ledger's folder {ledger.parent}: {why}"
        )
        assert out.stderr.splitlines()[1].startswith("hint: pass --ledger PATH")


def test_a_damaged_ledger_shows_what_it_can_and_takes_no_new_run(
    tmp_path: Path, dump: Path
) -> None:
    ledger = tmp_path / "l.sqlite"
    with Ledger(ledger) as book:
        damaged = new_run(book, "a")
        for n in range(0, 4000, 25):  # pages of dead letters, and an index over them
            letters = [DeadLetter(n + i, {"pk": {"S": "x" * 300}}, "C", "m", 0, False)
                       for i in range(25)]  # fmt: skip
            book.commit(damaged.id, items_committed=n + 25, byte_offset=n, written=0,
                        dead=letters)  # fmt: skip
        index_root = book._db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'dead_letters_by_run'"
        ).fetchone()[0]
        page = book._db.execute("PRAGMA page_size").fetchone()[0]
    with open(ledger, "r+b") as f:  # the root of the index that counts dead letters
        f.seek((index_root - 1) * page)
        f.write(b"\xa5" * page)

    out = rimport("status", "--ledger", ledger)
    assert out.returncode == 1
    assert damaged.id in out.stdout  # its row is still read
    assert out.stderr.splitlines() == [
        f"error: the ledger is damaged: 1 run cannot be read in full ({damaged.id})",
        f"hint: `rimport ledger check --ledger {ledger}` says more",
    ]
    check = rimport("ledger", "check", "--ledger", ledger)
    assert check.returncode == 1
    assert check.stdout.splitlines()[0] == f"{ledger}: damaged"
    start = rimport("start", dump, "--table", "t", "--ledger", ledger)
    assert start.returncode == 1
    assert start.stderr.startswith(f"error: the ledger {ledger} is damaged (")
    assert "no new run is recorded in it" in start.stderr
    with Ledger(ledger) as book:
        assert [r.id for r in book.runs()] == [damaged.id]


def test_a_sound_ledger_checks_out(tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    with Ledger(ledger) as book:
        new_run(book)
    out = rimport("ledger", "check", "--ledger", ledger)
    assert (out.returncode, out.stdout) == (0, f"{ledger}: sound, 1 run\n")


def test_a_full_disk_stops_the_run_resumably_and_nothing_is_lost(tmp_path: Path) -> None:
    """SQLite's page limit stands in for a full disk: the same SQLITE_FULL at a commit."""
    path = tmp_path / "refused.jsonl"  # all but one dead-lettered: the ledger grows fast
    path.write_text("".join(f'{{"{"pk" if i == 0 else "id"}": "{i}", "pad": "{"x" * 200}"}}\n'
                            for i in range(3000)))  # fmt: skip
    fake = FakeDynamo()
    book = Ledger(tmp_path / "l.sqlite")

    def fill_the_disk(items: int, done: int, total: int) -> None:
        if items == 25:
            pages = book._db.execute("PRAGMA page_count").fetchone()[0]
            book._db.execute(f"PRAGMA max_page_count = {pages + 20}")

    with pytest.raises(LedgerError) as full:
        import_file(path, "t", hooks=Hooks(progress=fill_the_disk), ledger=book, client=fake)
    assert "database or disk is full (is the disk full?)" in full.value.message
    assert full.value.hint is not None
    assert full.value.hint.startswith("free some space on that disk; what was committed")
    assert "rimport resume" in spelled(full.value.hint)
    (run,) = book.runs()
    assert run.state in ("failed", "interrupted") and 0 < run.items_committed < 3000
    assert run.dead_letters == run.items_committed - 1  # the checkpoint and its dead letters agree
    book._db.execute("PRAGMA max_page_count = 1073741823")
    result = resume_run(run.id, ledger=book, client=fake)
    assert (result.state, result.items_committed, result.dead_letters) == (
        "completed_with_failures", 3000, 2999,
    )  # fmt: skip
    assert [d.index for page in book.pages_of_dead_letters(run.id) for d in page] == list(
        range(1, 3000)
    )
    book.close()
