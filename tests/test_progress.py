"""What an operator sees of a run: progress on stderr (bar, log lines, JSON lines), -q and
-v, the callback's figures, and the log file (JSON lines, private, rotated, no values)."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import select
import stat
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import AWS_ENV, RIMPORT, rimport
from fakes import FakeDynamo, client_error

import resumable_import.loop as loop_module
import resumable_import.runlog as runlog_module
from resumable_import import Hooks, KeySpec, RetryPolicy, import_file, validate_file
from resumable_import.cli import meter
from resumable_import.progress import Figures, known

FAST = RetryPolicy(max_attempts=3, base_delay=0.0001, max_delay=0.001, item_timeout=0.0)
MARKER = "zq-marker-7f3a"  # a value no log line may hold


def write_jsonl(path: Path, n: int, *, refused: int | None = None) -> Path:
    lines = []
    for i in range(n):
        item: dict[str, Any] = {"pk": f"k{i}", "v": f"{MARKER}-{i}"}
        if i == refused:
            del item["pk"]  # dead-lettered before it is sent: no key
        lines.append(json.dumps(item))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIMPORT_PROGRESS_INTERVAL", "0")


# -- validate: no DynamoDB needed --------------------------------------------------------


def test_without_a_terminal_progress_is_log_lines(tmp_path: Path, quick: None) -> None:
    dump = write_jsonl(tmp_path / "d.jsonl", 3000)
    out = rimport("validate", dump, "--key", "pk:S")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 2, out.stderr  # every 1,000 items, at an interval of 0
    assert lines[0].startswith("progress: 1,000 items, ")
    assert "items/s" in lines[0] and "ETA" in lines[0]
    assert "0 retries, 0 throttled, 0 dead letters" in lines[0]
    mb = f"{dump.stat().st_size / 1e6:,.1f} MB"
    assert out.stderr.splitlines()[-1].startswith(f"done: 3,000 items, 100.0% ({mb} of {mb}), ")


def test_progress_json_lines_parse_and_end_at_the_whole_size(tmp_path: Path, quick: None) -> None:
    dump = tmp_path / "d.jsonl.gz"
    dump.write_bytes(gzip.compress(write_jsonl(tmp_path / "plain", 2500).read_bytes()))
    out = rimport("validate", dump, "--key", "pk:S", "--progress", "json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stderr.splitlines()]
    assert len(events) >= 3
    for e in events:
        assert e["event"] == "progress"
        for field in ("items", "bytes_done", "bytes_total", "percent", "items_per_s", "eta_s",
                      "retries", "throttled", "dead_letters", "elapsed", "final"):  # fmt: skip
            assert field in e, field
    last = events[-1]
    assert last["final"] and last["items"] == 2500
    assert last["bytes_done"] == last["bytes_total"] == dump.stat().st_size
    assert last["percent"] == 100.0


def test_progress_none_and_quiet_show_nothing_but_the_result(tmp_path: Path, quick: None) -> None:
    dump = write_jsonl(tmp_path / "d.jsonl", 2000)
    for args in (["validate", dump, "--key", "pk:S", "--progress", "none"],
                 ["-q", "validate", dump, "--key", "pk:S"]):  # fmt: skip
        out = rimport(*args)
        assert out.returncode == 0, out.stderr
        assert out.stderr == "", args
        assert "2,000 items" in out.stdout


def test_an_unknown_progress_kind_is_a_usage_error(tmp_path: Path) -> None:
    out = rimport("validate", tmp_path / "d.json", "--key", "pk:S", "--progress", "fancy")
    assert out.returncode == 2
    assert out.stderr.splitlines()[0] == (
        "error: --progress 'fancy' is not one of auto, bar, log, json, none"
    )


def test_quiet_and_verbose_together_are_refused() -> None:
    out = rimport("-q", "-v", "status")
    assert out.returncode == 2
    assert out.stderr.splitlines()[0] == "error: --quiet and --verbose go against each other"


def run_on_a_pty(args: list[str | Path], columns: int) -> tuple[int, str]:
    """Run rimport with stderr on a pseudo-terminal that reports `columns` columns."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**os.environ, "RIMPORT_PROGRESS_INTERVAL": "0"}
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([RIMPORT, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=slave, env=env)  # fmt: skip
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    proc.communicate(timeout=60)
    return proc.returncode, seen.decode(errors="replace")


@pytest.mark.parametrize("columns", [0, 100])
def test_the_bar_on_a_terminal_is_drawn_even_when_it_says_0_columns(
    tmp_path: Path, columns: int
) -> None:
    dump = write_jsonl(tmp_path / "d.jsonl", 3000)
    code, screen = run_on_a_pty(["validate", dump, "--key", "pk:S"], columns)
    assert code == 0, screen
    last = [line for line in screen.replace("\r", "\n").splitlines() if line.strip()][-1]
    assert last.startswith("100%|"), screen
    assert "3,000 items" in last and "items/s" in last
    assert "kB/" in last and "KB" not in last and "KiB" not in last  # SI: 1 kB = 1,000 bytes
    assert len(last) <= (columns or 80)


# -- the figures the library hands out --------------------------------------------------


@pytest.mark.parametrize("layout", ["array", "gzip"])
def test_the_callbacks_last_call_covers_the_whole_file(tmp_path: Path, layout: str) -> None:
    items = [{"pk": f"k{i}", "v": i} for i in range(260)]
    if layout == "array":  # white space after the array: past the last item's end
        dump = tmp_path / "d.json"
        dump.write_text(json.dumps(items, indent=1) + "\n\n   \n")
    else:
        dump = tmp_path / "d.jsonl.gz"
        dump.write_bytes(gzip.compress("".join(json.dumps(i) + "\n" for i in items).encode()))
    calls: list[tuple[int, int, int]] = []
    figures: list[Figures] = []
    import_file(
        dump,
        "t",
        hooks=Hooks(progress=lambda *c: calls.append(c), on_progress=figures.append),
        ledger=tmp_path / "l.db",
        client=FakeDynamo(),
        retry=FAST,
    )
    size = dump.stat().st_size
    assert calls[-1] == (260, size, size)
    if layout == "array":  # the last item ends before the white space: it used to end short
        assert all(done < size for _, done, _ in calls[:-1])
    assert figures[-1].final and figures[-1].bytes_done == figures[-1].bytes_total == size
    assert not any(f.final for f in figures[:-1])
    calls.clear()
    validate_file(dump, (KeySpec.parse("pk:S"),), progress=lambda *c: calls.append(c))
    assert calls[-1] == (260, size, size)


def test_the_figures_count_retries_throttling_and_dead_letters(tmp_path: Path) -> None:
    dump = write_jsonl(tmp_path / "d.jsonl", 200, refused=150)
    fake = FakeDynamo()
    fake.fail_next = [client_error("ProvisionedThroughputExceededException", "slow down")]
    fake.unprocessed = {"k60": 2}
    fake.poison = {"k90"}
    figures: list[Figures] = []
    result = import_file(
        dump,
        "t",
        hooks=Hooks(on_progress=figures.append),
        ledger=tmp_path / "l.db",
        client=fake,
        retry=FAST,
    )
    last = figures[-1]
    assert last.final and last.items == 200
    assert last.throttled == 1
    assert last.retries == 3  # the throttled request, and k60 twice
    assert last.dead_letters == result.dead_letters == 2  # k90 (refused), item 150 (no key)
    assert [f.dead_letters for f in figures] == sorted(f.dead_letters for f in figures)
    assert last.percent == 100.0 and last.eta == 0.0 and last.rate > 0


@pytest.mark.parametrize("total", [None, 0])
def test_unknown_size_has_no_percent_nor_eta(total: int | None) -> None:
    f = Figures(items=10, bytes_done=2_500_000, bytes_total=known(total), elapsed=2.0)
    assert (f.percent, f.eta, f.rate) == (None, None, 5.0)
    assert f.as_dict()["bytes_total"] is None and f.as_dict()["percent"] is None
    lines = meter.open_meter("log")
    assert lines.render(f) == (  # type: ignore[attr-defined]
        "progress: 10 items, 2.5 MB read, 5 items/s, 0 retries, 0 throttled, 0 dead letters"
    )


# -- the log file -----------------------------------------------------------------------


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_log_is_rotated_and_every_file_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runlog_module, "LOG_MAX_BYTES", 3000)
    monkeypatch.setattr(loop_module, "CHECKPOINT_LOG_EVERY", 1)  # a line every batch
    monkeypatch.delenv("RIMPORT_LOG", raising=False)
    os.umask(0o022)
    dump = write_jsonl(tmp_path / "d.jsonl", 1000)
    import_file(dump, "t", ledger=tmp_path / "l.db", client=FakeDynamo(), retry=FAST)
    files = sorted(tmp_path.glob("rimport.log*"))
    assert [f.name for f in files] == ["rimport.log", "rimport.log.1", "rimport.log.2",
                                       "rimport.log.3"]  # fmt: skip
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        assert f.stat().st_size <= 3000 + 1000
        for entry in log_lines(f):
            assert {"time", "run", "event", "level", "message"} <= set(entry)
    assert log_lines(files[0])[-1]["event"] == "finished"


def test_a_run_through_the_cli_logs_json_events_without_values_or_secrets(
    tmp_path: Path, endpoint: str, table: str, ledger: Path, quick: None
) -> None:
    dump = write_jsonl(tmp_path / "d.jsonl", 300, refused=200)
    out = rimport("-v", "start", dump, "--table", table, "--endpoint", endpoint,
                  "--ledger", ledger, "--progress", "json")  # fmt: skip
    assert out.returncode == 3, out.stderr
    run_id = out.stdout.strip()
    events = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert events and events[-1]["final"] and events[-1]["run"] == run_id
    assert events[-1]["items"] == 300 and events[-1]["dead_letters"] == 1
    assert events[-1]["bytes_done"] == events[-1]["bytes_total"] == dump.stat().st_size
    said = out.stderr.splitlines()
    assert f"run {run_id}: started {dump} -> table {table} at {endpoint}, from item 0 (byte 0)" in (
        said
    ), "-v shows the log's events"

    log = ledger.with_name("rimport.log")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    entries = log_lines(log)
    assert entries[0]["event"] == "started"
    assert entries[-1]["event"] == "finished"
    assert entries[-1] | {"dead_letters": 1, "items": 300, "written": 299} == entries[-1]
    assert all(e["run"] == run_id for e in entries)
    text = log.read_text(encoding="utf-8")
    assert MARKER not in text  # not the written items, not the dead-lettered one
    assert AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in text

    quiet = rimport("-q", "start", dump, "--table", table, "--endpoint", endpoint,
                    "--ledger", ledger, "--new")  # fmt: skip
    assert quiet.returncode == 3
    assert quiet.stdout.strip() != run_id
    assert quiet.stderr.splitlines()[0].startswith(f"run {quiet.stdout.strip()}: completed")
