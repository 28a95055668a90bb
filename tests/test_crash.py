"""Crash safety: SIGKILL a real rimport process mid-run, resume, and compare the table with
the file item by item. Runs with the default concurrency, so batches are in flight when the
process dies."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import make_dump
import pytest
from conftest import (
    RIMPORT,
    assert_table_equals,
    dump_items,
    kill_when,
    rimport,
    wait_for_checkpoint,
)

from resumable_import.ledger import Ledger

ITEMS = 20_000


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dump.write(tmp_path_factory.mktemp("crash") / "dump.json", ITEMS)


def spawn(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [RIMPORT, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip


def start(dump: Path, table: str, endpoint: str, ledger: Path) -> tuple[subprocess.Popen[str], str]:
    """A `rimport start` under way, and the run id it printed first."""
    proc = spawn("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, f"rimport start failed: {proc.communicate()[1]}"
    return proc, run_id


def test_killed_three_times_and_resumed_the_table_equals_the_file(
    big_dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    proc, run_id = start(big_dump, table, endpoint, ledger)
    with Ledger(ledger) as book:
        checkpoints = [kill_when(proc, book, run_id, ITEMS * 15 // 100)]
        assert book.run(run_id).state == "interrupted"
        for fraction in (45, 75):
            proc = spawn("resume", run_id[:6], "--ledger", ledger)
            checkpoints.append(kill_when(proc, book, run_id, ITEMS * fraction // 100))
            assert book.run(run_id).items_committed >= checkpoints[-1]
    assert checkpoints == sorted(checkpoints) and checkpoints[0] > 0

    out = rimport("resume", run_id, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert f"run {run_id}: completed: {ITEMS:,} items read" in out.stderr
    assert_table_equals(ddb, table, dump_items(big_dump))
    with Ledger(ledger) as book:
        run = book.run(run_id)
    assert (run.state, run.items_committed, run.dead_letters) == ("completed", ITEMS, 0)


def test_a_second_resume_of_the_same_run_is_refused(
    big_dump: Path, endpoint: str, table: str, ledger: Path
) -> None:
    proc, run_id = start(big_dump, table, endpoint, ledger)
    with Ledger(ledger) as book:
        at = kill_when(proc, book, run_id, 500)
        first = spawn("resume", run_id, "--ledger", ledger)
        try:
            deadline = time.monotonic() + 120
            while book.run(run_id).items_committed == at:  # the first resume is under way
                if first.poll() is not None:
                    pytest.fail(f"the first resume ended: {first.communicate()[1]}")
                assert time.monotonic() < deadline, "resume stalled"
                time.sleep(0.01)
            second = rimport("resume", run_id, "--ledger", ledger)
            assert second.returncode == 1
            assert f"run {run_id} is being run by another rimport process" in second.stderr
        finally:
            first.kill()
            first.communicate()


def test_resume_refuses_a_file_that_changed(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    dump = make_dump.write(tmp_path / "d.json", 20_000)
    proc, run_id = start(dump, table, endpoint, ledger)
    with Ledger(ledger) as book:
        at = kill_when(proc, book, run_id, 500)
    text = dump.read_text(encoding="utf-8")
    dump.write_text(text.replace("item#000000003", "item#00000000X", 1), encoding="utf-8")
    out = rimport("resume", run_id, "--ledger", ledger)
    assert out.returncode == 2
    assert f"has changed since run {run_id} read it" in out.stderr
    with Ledger(ledger) as book:
        assert book.run(run_id).items_committed == at


def alive(pid: int) -> bool:
    """Running, not gone nor a zombie waiting to be reaped by whoever adopted it."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, read from /proc."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in text:
            found.append(int(status.parent.name))
    return found


@pytest.mark.parametrize(
    ("signum", "code", "reader_process"),
    [(signal.SIGINT, 130, "0"), (signal.SIGTERM, 143, "1"), (signal.SIGHUP, 129, "1")],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_stop_signal_saves_the_checkpoint_and_says_how_to_resume(
    big_dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path,
    signum: int, code: int, reader_process: str, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Ctrl-C, and what docker stop, systemd and CI runners (SIGTERM) or a closed terminal
    (SIGHUP) send: the checkpoint and state are written, one line says how to resume, the
    exit code is the shell's for the signal, and the reader process ends too."""
    monkeypatch.setenv("RIMPORT_READER_PROCESS", reader_process)
    proc, run_id = start(big_dump, table, endpoint, ledger)
    with Ledger(ledger) as book:
        wait_for_checkpoint(proc, book, run_id, 2_000)
        helpers = children(proc.pid)
        assert len(helpers) == (reader_process == "1")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert err.splitlines()[-1] == (
            f"hint: continue with `rimport resume {run_id} --ledger {ledger}`"
        )
        run = book.run(run_id)
        assert run.state == "interrupted" and run.items_committed >= 2_000
    log = (ledger.parent / "rimport.log").read_text(encoding="utf-8")
    assert f"run {run_id}: interrupted at item {run.items_committed}" in log
    assert not [pid for pid in helpers if alive(pid)]
    if signum == signal.SIGTERM:  # and the run goes on from there (once is enough)
        out = rimport("resume", run_id, "--ledger", ledger)
        assert out.returncode == 0, out.stderr
        assert_table_equals(ddb, table, dump_items(big_dump))


def test_killed_with_its_reader_process_the_run_resumes_and_the_reader_is_gone(
    endpoint: str, ddb: Any, table: str, ledger: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("RIMPORT_READER_PROCESS", "1")
    dump = make_dump.write(tmp_path / "d.jsonl", 20_000, "jsonl")
    proc, run_id = start(dump, table, endpoint, ledger)
    with Ledger(ledger) as book:
        deadline = time.monotonic() + 60
        while not (readers := children(proc.pid)):  # its own, not another rimport's
            assert proc.poll() is None and time.monotonic() < deadline, "no reader process"
            time.sleep(0.01)
        kill_when(proc, book, run_id, 6_000)
        assert book.run(run_id).state == "interrupted"
    deadline = time.monotonic() + 10
    while [pid for pid in readers if alive(pid)]:  # pipe closed: it stops at its next write
        assert time.monotonic() < deadline, "the reader process outlived its run"
        time.sleep(0.05)
    out = rimport("resume", run_id, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert_table_equals(ddb, table, dump_items(dump))
