"""Items refused before sending, in bulk and in extremes: memory stays flat, the checkpoint
moves, the log and `status` stay short, and nesting of any depth is a dead letter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import RIMPORT, assert_table_equals, rimport

from resumable_import.ledger import Ledger

REFUSED = 100_000


# The measured process is started by a small Python of its own: a child forked from this
# test process would count the test process's pages in its peak, as the kernel keeps the
# larger of the peaks before and after exec.
_LAUNCH = (
    "import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:]); "
    "_, status, usage = os.wait4(child.pid, 0); "
    "print(f'peak-rss-kb {usage.ru_maxrss}', file=sys.stderr); "
    "sys.exit(os.waitstatus_to_exitcode(status))"
)


def run_measured(*args: str | Path) -> tuple[int, str, str, int]:
    """(exit code, stdout, stderr, peak RSS in MB) of a rimport command."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, RIMPORT, *map(str, args)],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip
    *err, last = done.stderr.splitlines()
    assert last.startswith("peak-rss-kb "), done.stderr
    return done.returncode, done.stdout, "\n".join(err), int(last.split()[1]) // 1024


def test_a_dump_of_refused_items_stays_small_in_memory_ledger_log_and_status(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    dump = tmp_path / "empty-objects.json"
    # One item refused for another reason first: refused all alike, the first items would
    # stop the run as a key mistake before it dead-letters the lot (see test_tuning).
    dump.write_text('[{"pk": 1},' + ",".join(["{}"] * REFUSED) + "]", encoding="utf-8")
    code, out, err, peak = run_measured(
        "start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger
    )
    assert code == 3, err
    run_id = out.strip()
    # Before refused items counted toward a batch, they piled up in one: 2 GB for 1,000,000.
    assert peak < 120, f"peak RSS {peak} MB"
    with Ledger(ledger) as book:
        run = book.run(run_id)
        assert (run.items_committed, run.items_written, run.dead_letters) == (
            REFUSED + 1, 0, REFUSED + 1,
        )  # fmt: skip
    log = (ledger.parent / "rimport.log").read_text(encoding="utf-8").splitlines()
    assert len(log) < 60, "the log summarises dead letters per checkpoint"
    assert any("dead-lettered since the last line: MissingKey 2,500" in line for line in log)
    status = rimport("status", run_id, "--ledger", ledger)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert "  MissingKey                                 100,000  not retryable" in lines
    more = f"  ... and {REFUSED + 1 - 20:,} more: `rimport dead-letters {run_id} --with-reasons"
    assert any(line.startswith(more) for line in lines)
    assert len(lines) < 50


def deep(depth: int, pk: str) -> str:
    return f'{{"pk": "{pk}", "x": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("layout", ["json", "jsonl"])
def test_nesting_of_any_depth_is_a_too_deep_dead_letter_with_its_text_kept(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path, layout: str
) -> None:
    good = [{"pk": f"g{i}", "n": i} for i in range(60)]
    texts = [json.dumps(g) for g in good[:30]]
    texts += [deep(100_000, "d1"), deep(1_000, "d2"), deep(33, "d3")]
    texts += [json.dumps(g) for g in good[30:]]
    dump = tmp_path / f"deep.{layout}"
    body = "\n".join(texts) if layout == "jsonl" else "[" + ",\n".join(texts) + "]"
    dump.write_text(body, encoding="utf-8")

    checked = rimport("validate", dump, "--key", "pk:S")
    assert checked.returncode == 3, checked.stderr
    assert "  TooDeep                  3" in checked.stdout.splitlines()

    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 3, out.stderr
    assert_table_equals(ddb, table, good)
    with Ledger(ledger) as book:
        run = book.run(out.stdout.strip())
        letters = book.dead_letters(run.id)
    assert run.state == "completed_with_failures" and run.items_committed == 63
    assert [(d.index, d.code, d.retryable) for d in letters] == [
        (30, "TooDeep", False), (31, "TooDeep", False), (32, "TooDeep", False),
    ]  # fmt: skip
    assert letters[0].item["$json"] == deep(100_000, "d1")  # as it stands in the file
    assert [d.item["$json"].replace(" ", "") for d in letters[1:]] == [
        deep(1_000, "d2").replace(" ", ""),  # as in the file, or decoded and written again
        deep(33, "d3").replace(" ", ""),
    ]
