"""What a user sees: help, one-line errors with hints, exit codes. No DynamoDB needed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import RIMPORT, ROOT, rimport
from typer.testing import CliRunner

import resumable_import
from resumable_import.cli import app

COMMANDS = [
    "start",
    "resume",
    "status",
    "retry-failed",
    "dead-letters",
    "forget",
    "validate",
    "verify",
]


def test_help_lists_every_command() -> None:
    out = rimport("--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s", out.stdout, re.M), command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command: str) -> None:
    out = rimport(command, "--help")
    assert out.returncode == 0 and "Usage:" in out.stdout
    assert f"rimport {command}" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        ([], "rimport [OPTIONS] COMMAND [ARGS]..."),
        (["start"], "rimport start [OPTIONS] PATH"),
        (["validate"], "rimport validate [OPTIONS] PATH"),
        (["resume"], "rimport resume [OPTIONS] RUN_ID"),
        (["status"], "rimport status [OPTIONS] [RUN_ID]"),
        (["ledger", "check"], "rimport ledger check [OPTIONS]"),
    ],
)
def test_h_is_help_and_usage_lines_name_arguments_plainly(args: list[str], usage: str) -> None:
    """In this process: the same app `rimport` runs, without starting one per command."""
    short = CliRunner().invoke(app, [*args, "-h"], prog_name="rimport")
    assert short.exit_code == 0
    assert short.stdout.splitlines()[0] == f"Usage: {usage}"
    assert short.stdout == CliRunner().invoke(app, [*args, "--help"], prog_name="rimport").stdout


def test_version() -> None:
    out = rimport("--version")
    assert out.returncode == 0
    assert out.stdout == f"rimport {version('rimport')}\n"
    assert re.fullmatch(r"rimport \d+\.\d+\.\d+\S*\n", out.stdout)


def test_no_arguments_print_the_help() -> None:
    out = rimport()
    assert "Usage: rimport [OPTIONS] COMMAND" in out.stdout + out.stderr
    assert "--install-completion" in rimport("-h").stdout


def test_shell_completion_completes_commands_and_options() -> None:
    """What the script `--show-completion` prints asks rimport itself for the words."""
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    script = subprocess.run([RIMPORT, "--show-completion", "bash"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert script.returncode == 0
    assert "_RIMPORT_COMPLETE=complete_bash" in script.stdout
    env = {**os.environ, "_RIMPORT_COMPLETE": "complete_bash", "COMP_WORDS": "rimport st",
           "COMP_CWORD": "1"}  # fmt: skip
    out = subprocess.run([RIMPORT], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["start", "status"], out.stderr


@pytest.mark.parametrize(
    "args",
    [["resume", "abcdef12", "--debug"], ["resume", "--debug", "abcdef12"]],
)  # fmt: skip
def test_the_apps_own_flags_are_taken_after_the_command_too(ledger: Path, args: list[str]) -> None:
    out = rimport(*args, "--ledger", ledger)
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "UsageError" in out.stderr


def test_nothing_after_a_double_dash_is_taken_for_a_flag(ledger: Path) -> None:
    out = rimport("resume", "abcdef12", "--ledger", ledger, "--", "--debug")
    assert out.returncode == 2
    assert "unexpected extra argument(s) (--debug)" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_options_value_is_not_taken_for_a_flag(tmp_path: Path, ledger: Path) -> None:
    out = rimport("start", tmp_path / "nope.json", "--table", "--debug", "--ledger", ledger)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "no such file or directory" in out.stderr


def test_the_public_api_is_all_importable() -> None:
    for name in resumable_import.__all__:
        assert getattr(resumable_import, name) is not None


def test_status_of_an_empty_ledger(ledger: Path) -> None:
    assert json.loads(rimport("status", "--json", "--ledger", ledger).stdout) == []
    assert "no runs yet" in rimport("status", "--ledger", ledger).stdout


def test_an_unknown_run_is_one_line_and_a_hint(ledger: Path) -> None:
    out = rimport("resume", "abcdef12", "--ledger", ledger)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"error: no run 'abcdef12' in the ledger {ledger}",
        "hint: `rimport status` lists the runs; pass --ledger if they are in another ledger",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "nope.json: no such file or directory"),
        ("", "nope.json is empty: there are no items to import"),
        ("true", "nope.json starts with 't', not '[' or '{'"),
        ('{\n "data": {"records": [{"pk": "a"}]}}', "holds no array of objects to import"),
    ],
)
def test_a_bad_dump_is_refused_before_a_run_exists(
    tmp_path: Path, ledger: Path, content: str | None, message: str
) -> None:
    dump = tmp_path / "nope.json"
    if content is not None:
        dump.write_text(content)
    out = rimport("start", dump, "--table", "t", "--ledger", ledger)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and message in out.stderr.splitlines()[0]
    assert out.stderr.splitlines()[1].startswith("hint: ")
    assert "Traceback" not in out.stderr
    assert json.loads(rimport("status", "--json", "--ledger", ledger).stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "26"], "Invalid value for '--batch-size'"),
        (["--create-table"], "--create-table needs --key NAME:S|N|B"),
        (["--create-table", "--key", "id:X"], "'id:X' is not a key definition"),
        (["--key", "id:S"], "--key and --sort-key go with --create-table or --dry-run"),
        (["--endpoint", "localhost:8000"], "'localhost:8000' is not an endpoint URL"),
    ],
)
def test_bad_options_are_usage_errors(
    tmp_path: Path, ledger: Path, args: list[str], message: str
) -> None:
    dump = tmp_path / "d.json"
    dump.write_text('[{"pk": "a"}]')
    out = rimport("start", dump, "--table", "t", "--ledger", ledger, *args)
    assert out.returncode == 2
    assert message in out.stderr


def test_debug_shows_the_traceback(ledger: Path) -> None:
    out = rimport("--debug", "resume", "abcdef12", "--ledger", ledger)
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "UsageError" in out.stderr


@pytest.mark.parametrize(
    ("endpoint", "env", "niceness"),
    [
        ("http://localhost:8000", {}, 10),
        ("http://127.0.0.1:8123", {"RIMPORT_NICE": "0"}, 0),
        ("https://dynamodb.eu-west-1.amazonaws.com", {}, 0),
    ],
)
def test_the_command_gives_way_to_a_local_server_only(
    endpoint: str, env: dict[str, str], niceness: int
) -> None:
    """Twice, to show it does not lower itself again; in a child, as it cannot be undone."""
    code = (
        "import os; from resumable_import.cli.importing import _give_way; "
        f"_give_way({endpoint!r}); _give_way({endpoint!r}); print(os.nice(0))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert out.stdout.strip() == str(niceness), out.stderr
