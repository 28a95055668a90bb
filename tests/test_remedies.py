"""Remedies are data the CLI spells, and every command it spells is one it accepts.

The library says what to do as `Arg`s and `Command`s (issue 16, part 4); `cli.hints`
spells them as flags and `rimport ...` lines. Here each remedy the library builds about
a run, in every variant a run can have (a stream, another ledger, a remote endpoint, a
sort key, a transform), is spelled and parsed by the real command, as a user's shell
would hand it over; and every argument the library names has a flag.
"""

from __future__ import annotations

import ast
import dataclasses
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

import resumable_import
from resumable_import import Arg, Command, Text
from resumable_import.cli import app
from resumable_import.cli.hints import OPTION_FLAGS, spelled
from resumable_import.export import fix_commands
from resumable_import.hints import gentler, resume_command, resume_hint, start_over
from resumable_import.ledger import Ledger, Run
from resumable_import.options import Recorded, WriteSettings

PACKAGE = Path(resumable_import.__file__).resolve().parent


def _runs(tmp_path: Path) -> list[Run]:
    with Ledger(tmp_path / "other" / "ledger.sqlite") as book:
        run = book.create_run(
            file=str(tmp_path / "my dump.json"), file_size=10, file_hash="sha256:x",
            table="t", endpoint="http://localhost:8000", region="us-east-1", format="auto",
            shape="array", options=Recorded(WriteSettings(concurrency=8, max_outage=60)),
        )  # fmt: skip
    recorded = Recorded(
        WriteSettings(), allow_remote=True, keys=("pk:S", "sk:N"),
        transform={"spec": "fix.py:clean", "sha256": "x"},
    ).record()  # fmt: skip
    return [
        run,
        dataclasses.replace(run, source="stream", file="standard input"),
        dataclasses.replace(
            run, endpoint="https://dynamodb.eu-west-1.amazonaws.com", options=recorded
        ),
    ]


class _Throttled:
    throttled = 12
    pace = 140.0


def _remedies(run: Run) -> list[Text | Command]:
    return [
        start_over(run),
        start_over(run, table="NEW_TABLE", keys=["id:N"]),
        resume_command(run),
        resume_hint(run, "the endpoint is away", "max_outage"),
        gentler(run, _Throttled()),  # type: ignore[arg-type]
        *fix_commands(run),
        *fix_commands(run, "out.json", "ddb-json"),
    ]


def _commands(remedy: Text | Command) -> list[Command]:
    parts = remedy.parts if isinstance(remedy, Text) else (remedy,)
    return [p for p in parts if isinstance(p, Command)]


def _parse(line: str) -> None:
    """Hand `line` (as the shell splits it) to the real command, which checks every
    argument and option; nothing runs."""
    words = shlex.split(line)
    assert words[0] == "rimport", line
    command: Any = typer.main.get_command(app)
    args = words[1:]
    while hasattr(command, "get_command"):  # a group (typer bundles its own click)
        name, *args = args
        command = command.get_command(command.context_class(command), name)
        assert command is not None, f"no command {name!r}: {line}"
    command.make_context("rimport", args)  # raises on any argument it does not take


def test_every_command_a_remedy_names_is_one_the_cli_accepts(tmp_path: Path) -> None:
    seen = 0
    for run in _runs(tmp_path):
        for remedy in _remedies(run):
            for c in _commands(remedy):
                line = spelled(Text(c)).strip("`")
                assert "=" not in line.replace("--from", ""), line  # no Python words
                _parse(line)
                seen += 1
    assert seen >= 27


@pytest.mark.parametrize(
    ("text", "cli", "python"),
    [
        (Text("use ", Arg("format", "ddb-json"), " (or auto)"), "use --format ddb-json (or auto)",
         "use format='ddb-json' (or auto)"),
        (Text(Arg("pattern", "*.txt")), "--pattern '*.txt'", "pattern='*.txt'"),
        (Text("pass ", Arg("new", True)), "pass --new", "pass new=True"),
        (Text(Command("resume", ("ab12",), (Arg("source", "-"),))),
         "`rimport resume ab12 --from -`", "`resume_run('ab12', source='-')`"),
        (Text(Command("ledger check", (), (Arg("ledger", "my l.db"),))),
         "`rimport ledger check --ledger 'my l.db'`", "`check_ledger(ledger='my l.db')`"),
        (Text(Arg("create_keys", ("pk:S", "sk:N"))), "--create-table --key pk:S --sort-key sk:N",
         "create_keys=('pk:S', 'sk:N')"),
    ],
)  # fmt: skip
def test_a_remedy_reads_in_flags_here_and_in_python_words_to_a_caller(
    text: Text, cli: str, python: str
) -> None:
    assert spelled(text) == cli
    assert str(text) == python
    assert spelled(Text("a ", text) + "; b") == f"a {cli}; b"  # joined, the parts stay


def test_every_argument_the_library_names_has_a_flag() -> None:
    named = {
        node.args[0].value
        for path in PACKAGE.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "Arg"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert named, "no Arg found: the walk is broken"
    assert named - {"create_keys"} <= set(OPTION_FLAGS), named - set(OPTION_FLAGS)
