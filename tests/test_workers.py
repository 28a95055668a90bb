"""`--workers N`: writer processes, items routed by key, against DynamoDB Local. Each
process is stopped for real (SIGKILL, SIGTERM, Ctrl-C to its process group), and the table
compared with the dump item by item after `resume`; the dump repeats keys, so the later
item of a key must win whichever process wrote it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_table_equals, dump_items, kill_when, rimport, wait_for_checkpoint
from faultproxy import FaultProxy, Faults
from test_contract import finish, wire
from test_crash import RIMPORT, alive, children, spawn

from resumable_import.ledger import Ledger
from resumable_import.workers import ProcessWriter, WriterSpec
from resumable_import.writer import RetryPolicy

ITEMS = 20_000


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Items whose keys repeat, far apart and close together."""
    rng = random.Random(11)
    path = tmp_path_factory.mktemp("workers") / "dump.jsonl"
    with path.open("w") as f:
        for i in range(ITEMS):
            f.write(json.dumps({"pk": f"k{rng.randrange(12_000):05d}", "n": i,
                                "pad": "x" * rng.randrange(10, 300)}) + "\n")  # fmt: skip
    return path


def writers_of(pid: int, count: int) -> list[int]:
    """The writer processes of the rimport `pid` (not its resource tracker), once all
    `count` have started."""
    deadline = time.monotonic() + 60
    while True:
        found = [
            c for c in children(pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        if len(found) == count:
            return found
        assert time.monotonic() < deadline, f"{len(found)} writer processes, not {count}"
        time.sleep(0.01)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone since it was listed
        return b""


def gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 15
    while [pid for pid in pids if alive(pid)]:
        assert time.monotonic() < deadline, "a writer process outlived its run"
        time.sleep(0.05)


def start(dump: Path, table: str, endpoint: str, ledger: Path, workers: int) -> Any:
    proc = spawn("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger,
                 "--workers", str(workers), "--progress", "none")  # fmt: skip
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.communicate()[1]
    return proc, run_id


def test_a_writer_process_killed_stops_the_run_naming_it_and_resume_completes(
    dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    proc, run_id = start(dump, table, endpoint, ledger, 2)
    victim = writers_of(proc.pid, 2)[1]
    with Ledger(ledger) as book:
        wait_for_checkpoint(proc, book, run_id, ITEMS // 5)
        signal_at = book.run(run_id).items_committed
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        run = book.run(run_id)
    assert proc.returncode == 1
    assert f"(pid {victim}) was killed by signal 9" in err and "writer process" in err
    assert f"rimport resume {run_id}" in err
    assert run.state == "failed" and run.items_committed >= signal_at
    out = rimport("resume", run_id, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert_table_equals(ddb, table, dump_items(dump))
    st = json.loads(rimport("status", run_id, "--json", "--ledger", ledger).stdout)
    assert (st["state"], st["items_committed"], st["dead_letters"]) == ("completed", ITEMS, 0)


def in_a_terminal(*args: str | Path) -> subprocess.Popen[str]:
    """rimport in a process group of its own, as a shell's foreground job: Ctrl-C there
    sends SIGINT to every process of the group, the writer processes too."""
    return subprocess.Popen(
        [RIMPORT, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ.copy(), start_new_session=True,
    )  # fmt: skip


def test_stopped_interrupted_then_killed_resume_with_other_workers_equals_the_file(
    dump: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    proc, run_id = start(dump, table, endpoint, ledger, 2)
    writers = writers_of(proc.pid, 2)
    with Ledger(ledger) as book:
        wait_for_checkpoint(proc, book, run_id, ITEMS // 5)
        proc.send_signal(signal.SIGTERM)  # as a scheduler stops a job
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143 and "stopped by signal 15" in err
        assert book.run(run_id).state == "interrupted"
        gone(writers)
        stopped_at = book.run(run_id).items_committed
        # Ctrl-C in a terminal: SIGINT to the run and to its writers at once.
        proc = in_a_terminal("resume", run_id, "--ledger", ledger, "--progress", "none")
        writers = writers_of(proc.pid, 2)
        wait_for_checkpoint(proc, book, run_id, stopped_at + ITEMS // 5)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "interrupted" in err, err
        assert f"rimport resume {run_id}" in err
        run = book.run(run_id)
        assert run.state == "interrupted" and run.items_committed > stopped_at
        gone(writers)
        stopped_at = run.items_committed
        proc = spawn("resume", run_id, "--ledger", ledger, "--progress", "none")
        writers = writers_of(proc.pid, 2)
        assert kill_when(proc, book, run_id, stopped_at + ITEMS // 5) > stopped_at
        assert book.run(run_id).state == "interrupted"
    gone(writers)  # the run's end of their pipes closed with it
    out = rimport("resume", run_id, "--workers", "3", "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    assert_table_equals(ddb, table, dump_items(dump))
    shown = rimport("status", run_id, "--ledger", ledger).stdout
    assert "writer processes 3 (2 until resumed at " in shown


def test_a_throttle_seen_by_one_writer_process_slows_the_other(
    endpoint: str, ddb: Any, table: str
) -> None:
    """Only the requests holding the key `hot` are throttled, and that key goes to one
    process; the other is told to slow down all the same (its pace is set)."""
    policy = RetryPolicy(base_delay=0.001, max_delay=0.05)
    with FaultProxy(endpoint, Faults(throttle_with=b'"hot"', throttle_times=3)) as proxy:
        spec = WriterSpec(proxy.url, "us-east-1", None, table, ("pk",), policy, 4, None, False)
        writer = ProcessWriter(2, spec)
        try:
            first = [{"pk": {"S": "hot"}}] + [{"pk": {"S": f"a{i}"}} for i in range(24)]
            finish(writer, writer.submit(*wire(first)))
            assert writer.paces.count(None) == 1  # the throttled one paced, the other told
            later = [{"pk": {"S": f"b{i}"}} for i in range(50)]
            jobs = [writer.submit(*wire(later[i : i + 25])) for i in (0, 25)]
            finish(writer, *jobs)
            assert [j.failures for j in jobs] == [[], []]
            assert (writer.throttled, proxy.stats["throttled"]) == (3, 3)
            assert writer.paces.count(None) == 0
        finally:
            writer.close()
    stored = {i["pk"]["S"] for i in ddb.scan(TableName=table)["Items"]}
    assert stored == {i["pk"]["S"] for i in first + later}
