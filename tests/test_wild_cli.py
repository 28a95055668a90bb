"""What stopped a new user on the command line (issue 17): a corrected command refused
because of a run that wrote nothing, a file imported twice, flags where aws cli users reach
for them, and the elapsed time of a finished run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
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


def test_a_file_read_another_way_or_into_a_table_made_since_is_imported_again(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path
) -> None:
    """The skip is for the same bytes read the same way into the same table: a one-line
    wrapper read first as one item is read again as asked (`--items-path`), and a folder
    whose table was deleted and created again since is imported again, not skipped."""
    wrapper = tmp_path / "w.json"
    wrapper.write_text(json.dumps({"pk": "whole", "rows": [{"pk": f"r{i}"} for i in range(5)]}))
    common = ("--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert rimport("start", wrapper, *common).returncode == 0
    rows = rimport("start", wrapper, *common, "--items-path", "rows")
    assert rows.returncode == 0, rows.stderr
    assert "already imported" not in rows.stderr
    keys = {i["pk"]["S"] for i in ddb.scan(TableName=table)["Items"]}
    assert keys == {"whole", *(f"r{i}" for i in range(5))}

    folder = tmp_path / "dumps"
    folder.mkdir()
    write_dump(folder / "t.json", 30)
    into = ("--table", table, "--endpoint", endpoint, "--ledger", ledger)
    assert rimport("start", folder, *into).returncode == 0
    ddb.delete_table(TableName=table)
    ddb.get_waiter("table_not_exists").wait(TableName=table)
    ddb.create_table(
        TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    again = rimport("start", folder, *into)
    assert again.returncode == 0, again.stderr
    assert "skipped" not in again.stdout + again.stderr
    assert_table_equals(ddb, table, dump_items(folder / "t.json"))


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


def _profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile `wild` with the tests' credentials and region, and other credentials in
    the environment: only through the profile do the tests' tables show (DynamoDB Local
    keeps apart each access key's tables)."""
    config = tmp_path / "aws-config"
    config.write_text("[profile wild]\nregion = us-east-1\naws_access_key_id = rimporttests\n"
                      "aws_secret_access_key = rimporttests\n")  # fmt: skip
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someoneelse")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "someoneelse")
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # which would come before the profile's


def test_shared_flags_before_the_command_as_a_shell_alias_puts_them(
    tmp_path: Path, endpoint: str, ddb: Any, table: str, ledger: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _profile(tmp_path, monkeypatch)
    dump = write_dump(tmp_path / "d.json", 80)
    alias = ("--ledger", ledger, "--endpoint-url", endpoint, "--profile", "wild")
    out = rimport(*alias, "start", dump, "--table", table)
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    assert_table_equals(ddb, table, dump_items(dump))
    (run,) = json.loads(rimport(*alias, "status", "--json").stdout)
    assert (run["run_id"], run["region"], run["endpoint"]) == (run_id, "us-east-1", endpoint)
    after = rimport("status", "--ledger", ledger, "--json")
    assert json.loads(after.stdout) == [run]
    for line in (
        rimport(*alias, "validate", dump, "--table", table),
        rimport("validate", dump, "--table", table, *alias),
        rimport(*alias, "resume", run_id),
        rimport(*alias, "retry-failed", run_id),
        rimport(*alias, "dead-letters", run_id, "--out", tmp_path / "dl.jsonl"),
        rimport(*alias, "ledger", "check"),
        rimport("--ledger", ledger, "-q", "status", run_id),
    ):
        assert line.returncode == 0, (line.args, line.stderr)
    nothing = rimport("validate", dump, "--table", table, "--endpoint", endpoint)
    assert nothing.returncode == 2  # without the profile: another account's DynamoDB Local
    assert nothing.stderr.startswith(f"error: table {table!r} does not exist at {endpoint}")


def test_a_missing_profile_is_one_line_and_a_hint(tmp_path: Path, endpoint: str,
                                                  table: str, ledger: Path) -> None:  # fmt: skip
    dump = write_dump(tmp_path / "d.json", 5)
    for args in (("start", dump, "--table", table, "--ledger", ledger),
                 ("validate", dump, "--table", table)):  # fmt: skip
        out = rimport(*args, "--endpoint", endpoint, "--profile", "nosuch")
        assert out.returncode == 2
        assert out.stderr.splitlines() == [
            "error: the AWS profile 'nosuch' given is not configured (in ~/.aws/config or "
            "~/.aws/credentials)",
            "hint: --profile NAME takes one of those `aws configure list-profiles` lists "
            "(`aws configure` sets one up)",
        ]
    assert json.loads(rimport("status", "--json", "--ledger", ledger).stdout) == []


def test_resume_checks_a_given_endpoint_and_status_filters_by_it(
    tmp_path: Path, endpoint: str, table: str, ledger: Path
) -> None:
    dump = write_dump(tmp_path / "d.json", 20)
    out = rimport("start", dump, "--table", table, "--endpoint", endpoint, "--ledger", ledger)
    run_id = out.stdout.strip()
    other = "http://localhost:1"
    for verb in ("resume", "retry-failed"):
        refused = rimport(verb, run_id, "--ledger", ledger, "--endpoint", other)
        assert refused.returncode == 2
        assert refused.stderr.splitlines() == [
            f"error: run {run_id} writes to {endpoint}, not {other}: a run continues where it "
            "started",
            f"hint: leave out --endpoint: the run's own ({endpoint}) is used",
        ]
        region = rimport(verb, run_id, "--ledger", ledger, "--region", "eu-west-3")
        assert region.returncode == 2
        assert region.stderr.splitlines()[0] == (
            f"error: run {run_id} writes to region us-east-1, not eu-west-3: a run continues "
            "where it started"
        )
    shown = rimport("status", "--ledger", ledger, "--endpoint", endpoint)
    assert run_id in shown.stdout
    hidden = rimport("status", "--ledger", ledger, "--endpoint-url", other)
    assert hidden.returncode == 0
    assert hidden.stdout.splitlines() == ["no runs write there"]
    assert hidden.stderr.splitlines() == [f"(1 run writing elsewhere than {other} not shown)"]
