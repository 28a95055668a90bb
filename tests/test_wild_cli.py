"""What stopped a new user on the command line (issue 17): a corrected command refused
because of a run that wrote nothing, a file imported twice, flags where aws cli users reach
for them, and the elapsed time of a finished run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conftest import assert_table_equals, dump_items, rimport


def write_dump(path: Path, n: int, key: str = "pk") -> Path:
    path.write_text(json.dumps([{key: f"k{i}", "n": i, "s": "x" * (i % 7)} for i in range(n)]))
    return path


def test_a_corrected_command_is_not_refused_by_a_run_that_wrote_nothing(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", 300, key="id")
    common = ("--table", table, "--endpoint", endpoint, "--ledger", ledger)
    wrong = rimport("start", dump, *common)
    assert wrong.returncode == 2
    old = wrong.stdout.strip()
    assert "key attribute 'pk' is missing" in wrong.stderr
    (tmp_path / "fix.py").write_text("def fix(item):\n    item['pk'] = item.pop('id')\n"
                                     "    return item\n")  # fmt: skip
    fixed = rimport("start", dump, *common, "--transform", f"{tmp_path / 'fix.py'}:fix")
    assert fixed.returncode == 0, fixed.stderr
    new = fixed.stdout.strip()
    assert new != old
    assert (
        f"run {old} stopped before writing anything (failed at item 0); starting anew "
        f"(run {old} stays in the ledger as it stopped)"
    ) in fixed.stderr.splitlines()
    expected = [{"pk": i.pop("id"), **i} for i in dump_items(dump)]
    assert_table_equals(ddb, table, expected)
    runs = {
        r["run_id"]: r for r in json.loads(rimport("status", "--json", "--ledger", ledger).stdout)
    }
    assert runs[old]["state"] == "failed"  # as it stopped: status does not lie
    assert runs[new]["state"] == "completed"


def test_a_folder_run_that_wrote_nothing_starts_anew_with_corrected_options(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    folder = tmp_path / "dumps"
    folder.mkdir()
    dump = write_dump(folder / f"{table}.json", 120, key="id")
    common = ("--endpoint", endpoint, "--ledger", ledger)
    wrong = rimport("start", folder, *common)
    assert wrong.returncode == 2
    old = wrong.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{12}", old), wrong.stderr
    (tmp_path / "fix.py").write_text("def fix(item):\n    item['pk'] = item.pop('id')\n"
                                     "    return item\n")  # fmt: skip
    fixed = rimport("start", folder, *common, "--transform", f"{tmp_path / 'fix.py'}:fix")
    assert fixed.returncode == 0, fixed.stderr
    assert (
        f"run {old} stopped before writing anything (failed at item 0); starting anew "
        f"(run {old} stays in the ledger as it stopped)"
    ) in fixed.stderr.splitlines()
    assert re.search(rf"{table}.json -> {table}: imported: run \w+ completed", fixed.stderr)
    assert_table_equals(ddb, table, [{"pk": i.pop("id"), **i} for i in dump_items(dump)])


def test_a_file_imported_already_is_not_imported_again_without_new(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", 50)
    common = ("--table", table, "--endpoint", endpoint, "--ledger", ledger)
    first = rimport("start", dump, *common)
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.strip()
    (done,) = json.loads(rimport("status", "--json", "--ledger", ledger).stdout)
    again = rimport("start", dump, *common)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == run_id
    assert again.stderr.splitlines() == [
        f"{dump}: already imported into table {table} by run {run_id}, completed at "
        f"{done['finished_at'].replace('T', ' ').replace('+00:00', ' UTC')} (50 items); not "
        "imported again (--new imports it again)"
    ]
    assert len(json.loads(rimport("status", "--json", "--ledger", ledger).stdout)) == 1
    anew = rimport("start", dump, *common, "--new")
    assert anew.returncode == 0, anew.stderr
    assert anew.stdout.strip() != run_id
    assert_table_equals(ddb, table, dump_items(dump))


def test_status_of_a_finished_run_shows_its_real_elapsed_time(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", 2000)
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    took = float(re.search(r" in ([\d.]+)s", out.stderr).group(1))  # type: ignore[union-attr]
    shown = rimport("status", run_id, "--ledger", ledger).stdout
    (line,) = [x for x in shown.splitlines() if x.startswith("elapsed:")]
    assert "running" not in line
    m = re.fullmatch(r"elapsed:\s+([\d.]+)s \(from start to finish, pauses not counted\)", line)
    assert m, line
    assert abs(float(m.group(1)) - took) < 1.5
