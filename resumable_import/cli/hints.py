"""Remedies in this command's words: the library's errors name its arguments as a Python
caller writes them (`batch_size`, `create_keys=`); here they become flags."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from resumable_import import (
    Arg,
    Command,
    KeyMismatchError,
    RimportError,
    Run,
    TableMissingError,
    Text,
    rimport_command,
)

# The library's arguments (its options' fields) as the commands' flags say them.
OPTION_FLAGS = {
    "format": "--format", "items_path": "--items-path", "new": "--new",
    "allow_remote": "--allow-remote", "endpoint": "--endpoint", "region": "--region",
    "table": "--table", "transform": "--transform", "ledger": "--ledger", "source": "--from",
    "batch_size": "--batch-size", "concurrency": "--concurrency", "max_wcu": "--max-wcu",
    "max_outage": "--max-outage", "workers": "--workers", "pattern": "--pattern",
    "force": "--force", "out": "--out",
    "key": "--key", "sort_key": "--sort-key", "create_table": "--create-table",
    "profile": "--profile", "method": "--method", "extra": "--extra", "sample": "--sample",
    "dry_run": "--dry-run", "repair": "--repair", "via": "--via", "via_objects": "--via-objects",
    "tier": "--performance-tier", "compression": "--via-compression",
}  # fmt: skip


def spelled(text: Any) -> str:
    """Library text in this command's words: each Arg as its flag, each Command as the
    `rimport ...` line to type, quoted for the shell."""
    if isinstance(text, Arg | Command):
        text = Text(text)
    if not isinstance(text, Text):
        return str(text)
    return "".join(
        " ".join(map(shlex.quote, _words(p))) if isinstance(p, Arg)
        else _command(p) if isinstance(p, Command)
        else p
        for p in text.parts
    )  # fmt: skip


def command(run: Run, verb: str, *words: str) -> str:
    """A command about `run` as typed here, naming its ledger when it is not the default."""
    return _command(rimport_command(run, verb, *words))


def _command(c: Command) -> str:
    words = ["rimport", *c.verb.split(), *c.words, *(w for a in c.args for w in _words(a))]
    return "`" + " ".join(map(shlex.quote, words)) + "`"


def _words(a: Arg) -> list[str]:
    if a.name == "create_keys":  # the partition key, then the sort key if any
        keys = [k if isinstance(k, str) else f"{k.name}:{k.type}" for k in a.value or ()]
        return ["--create-table", "--key", keys[0], *(["--sort-key", keys[1]] if keys[1:] else [])]
    flag = OPTION_FLAGS[a.name]
    if a.value is None or a.value is True:
        return [flag]
    return [flag, str(a.value)]


# Arguments of the library as its errors spell them, and the flags that say them here.
_FLAGS = {
    "batch_size": "--batch-size", "concurrency": "--concurrency", "max_wcu": "--max-wcu",
    "max_outage": "--max-outage", "workers": "--workers",
    "create_keys": "--create-table --key", "new=True": "--new",
    "allow_remote=True": "--allow-remote", "region=NAME": "--region REGION",
}  # fmt: skip


def in_flags(e: RimportError) -> RimportError:
    """Say a library error in this command's words: its flags where the library names its
    arguments (`batch_size` -> `--batch-size`), and keys as `--key NAME:TYPE`."""
    if isinstance(e, TableMissingError) and e.param in ("create_keys", "keys"):
        e.hint = (
            "create it, or pass --create-table --key NAME:S [--sort-key NAME:S]"
            if e.param == "create_keys"
            else "pass the key it will have: --key NAME:S|N|B [--sort-key NAME:S|N|B]"
        )
    elif isinstance(e, KeyMismatchError) and e.stage != "run":  # a run's hint is a command
        fitting = e.mistake.fitting
        flags = " ".join(
            f"{flag} {k.name}:{k.type}"
            for flag, k in zip(("--key", "--sort-key"), fitting or (), strict=False)
        )
        if e.stage == "create":
            e.hint = "the table was not created; " + (
                f"pass {flags}" if fitting else "name in --key an attribute the items have"
            )
        else:
            e.hint = (
                f"the items fit {flags}"
                if fitting
                else ("check --key against an attribute the items have, or that this is the dump")
            )
    elif e.param in _FLAGS:
        flag = _FLAGS[e.param]
        e.message = _replaced(e.message, e.param, flag)
        e.hint = e.hint and _replaced(e.hint, e.param, flag)
    return e


def _replaced(text: str, old: str, new: str) -> str:
    """`str.replace` on the words of `text`, keeping its Args and Commands."""
    if not isinstance(text, Text):
        return text.replace(old, new)
    return Text(*(p.replace(old, new) if isinstance(p, str) else p for p in text.parts))


def ledger_check_command(ledger: Path | None) -> str:
    return "`rimport ledger check" + (f" --ledger {ledger}`" if ledger else "`")
