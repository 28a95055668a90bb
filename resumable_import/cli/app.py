"""The `rimport` app itself: its global flags, the translation of every error a user can
cause into one line, a hint and an exit code, and `main`, which the console script runs.

The commands live in their own modules and add themselves to `app`; `cli/__init__.py`
imports them in the order `--help` lists them.
"""

from __future__ import annotations

import gc
import signal
import sys
from dataclasses import dataclass
from importlib.metadata import version
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from resumable_import import RimportError, Stopped

from .hints import in_flags, spelled
from .render import EXIT_ERROR, say


class _Command(TyperCommand):
    """A command whose usage line reads `rimport start [OPTIONS] PATH`: typer writes a
    required argument as `{PATH}`, which reads as a set or a shell brace expansion."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p[:1] == "{" and p[-1:] == "}" else p for p in pieces]


class App(typer.Typer):
    """A typer app whose commands are `_Command`s, whoever adds them."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = App(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Import large JSON dumps into DynamoDB, resumably: a killed import continues "
    "from its last checkpoint, and items DynamoDB refused wait in a ledger for a retry.",
)


# The app's own flags, which `main` also takes after the sub-command; none takes a value.
GLOBAL_FLAGS = ("--debug", "-q", "--quiet", "-v", "--verbose")


@dataclass
class Flags:
    """The app's own flags as its callback set them: read by the commands when they run,
    which is after the callback, never when they are imported."""

    debug: bool = False
    quiet: bool = False
    verbose: bool = False


flags = Flags()


def _print_version(show: bool) -> None:
    if show:
        typer.echo(f"rimport {version('rimport')}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Only errors and results: the run id (stdout) and the one-line outcome; no "
            "progress (unless --progress names a kind), no notices, no informational lines.",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also each event of the run log on stderr: every retry and checkpoint.",
        ),
    ] = False,
) -> None:
    if quiet and verbose:
        say("error: --quiet and --verbose go against each other")
        say("hint: pass one of them")
        raise typer.Exit(2)
    flags.debug, flags.quiet, flags.verbose = debug, quiet, verbose


def guard(work: Any) -> Any:
    """Run `work`, turning the errors a user can cause into one line, a hint and an exit code."""
    try:
        return work()
    except RimportError as e:
        if flags.debug:
            raise
        in_flags(e)
        say("error: " + spelled(e.message))
        if e.hint:
            say("hint: " + spelled(e.hint))
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt as e:
        if flags.debug:
            raise
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        say("interrupted" if signum == signal.SIGINT else f"stopped by signal {signum}")
        raise typer.Exit(128 + signum) from None


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM (docker stop, systemd, CI runners) and SIGHUP (a closed terminal) stop a run
    as Ctrl-C does: checkpoint and state written, one line on how to resume."""
    raise Stopped(signum)


def main() -> None:
    # Everything imported so far lives as long as the process: keep the garbage collector
    # from walking it again and again while millions of items pass through.
    gc.freeze()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_like_ctrl_c)
    try:
        args = _global_flags_first(_command_options_after_command(sys.argv[1:]))
        app(prog_name="rimport", args=args)
    except Exception:
        if flags.debug:
            raise
        import traceback

        say(f"error: unexpected failure: {traceback.format_exc(limit=0).strip().splitlines()[-1]}")
        say("hint: run again with --debug for the full traceback, and report it")
        sys.exit(EXIT_ERROR)


def _global_flags_first(args: list[str]) -> list[str]:
    """`rimport start f.json --debug` as `rimport --debug start f.json`: click takes the
    app's own flags only before the sub-command, and people add them at the end.

    Stops at `--`, and leaves alone what is the value of an option (`--table -q`)."""
    at = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
    tail = args[at:]
    end = tail.index("--") if "--" in tail else len(tail)
    if not any(a in GLOBAL_FLAGS for a in tail[:end]):
        return args
    valued = _options_taking_values()
    moved, kept, value_next = [], [], False
    for arg in tail[:end]:
        if arg in GLOBAL_FLAGS and not value_next:
            moved.append(arg)
            continue
        value_next = not value_next and arg in valued
        kept.append(arg)
    return args[:at] + moved + kept + tail[end:]


# Options of the commands that an alias may share (`alias ri='rimport --ledger X --profile
# P'`): given before the command, each goes to the command if it takes it, and those about
# AWS are dropped for the commands that never talk to it (`ri status`, `ri forget`).
_AWS_OPTIONS = ("--endpoint", "--endpoint-url", "--region", "--profile")


def _command_options_after_command(args: list[str]) -> list[str]:
    """`rimport --ledger X status` as `rimport status --ledger X`: a command's options
    given before it, as a shell alias with shared flags puts them.

    The app's own flags stay where they are; an option the command does not take stays
    too (click then names it), but for the AWS ones, which only the commands that talk to
    AWS take."""
    if not args or not args[0].startswith("-") or args[0] in ("-h", "--help", "--version"):
        return args
    app_flags = (*GLOBAL_FLAGS, "--version", "--install-completion", "--show-completion")
    valued = _options_taking_values()
    before: list[str] = []
    moved: list[tuple[str, ...]] = []
    at = 0
    while at < len(args) and args[at].startswith("-") and args[at] != "--":
        arg, name = args[at], args[at].split("=", 1)[0]
        if name in app_flags or name in ("-h", "--help"):
            before.append(arg)
            at += 1
        elif "=" not in arg and arg in valued and at + 1 < len(args):
            moved.append((arg, args[at + 1]))
            at += 2
        else:
            moved.append((arg,))
            at += 1
    if not moved:
        return args
    command: Any = typer.main.get_command(app)
    words = at
    while words < len(args) and args[words] in getattr(command, "commands", {}):
        command = command.commands[args[words]]
        words += 1
    takes = {o for p in command.params for o in p.opts + p.secondary_opts}
    kept = [
        w for option in moved
        if option[0].split("=", 1)[0] in takes or option[0].split("=", 1)[0] not in _AWS_OPTIONS
        for w in option
    ]  # fmt: skip
    return before + args[at:words] + kept + args[words:]


def _options_taking_values() -> set[str]:
    """The names of every option of every command that takes a value (`--table`, `-t`)."""
    names: set[str] = set()
    todo: list[Any] = [typer.main.get_command(app)]
    while todo:
        command = todo.pop()
        todo.extend(getattr(command, "commands", {}).values())
        for p in command.params:
            if p.param_type_name == "option" and not p.is_flag and not p.count:
                names.update(p.opts + p.secondary_opts)
    return names
