"""Remedies in this command's words: the library's errors name its arguments as a Python
caller writes them (`batch_size`, `create_keys=`); here they become flags."""

from __future__ import annotations

from pathlib import Path

from resumable_import import KeyMismatchError, RimportError, TableMissingError

# Arguments of the library as its errors spell them, and the flags that say them here.
_FLAGS = {
    "batch_size": "--batch-size", "concurrency": "--concurrency", "max_wcu": "--max-wcu",
    "max_outage": "--max-outage", "create_keys": "--create-table --key", "new=True": "--new",
    "allow_remote=True": "--allow-remote", "region=NAME": "--region REGION",
}  # fmt: skip


def in_flags(e: RimportError) -> RimportError:
    """Say a library error in this command's words: its flags where the library names its
    arguments (`batch_size` -> `--batch-size`), and keys as `--key NAME:TYPE`."""
    if isinstance(e, TableMissingError):
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
        e.message = e.message.replace(e.param, flag)
        e.hint = e.hint and e.hint.replace(e.param, flag)
    return e


def ledger_check_command(ledger: Path | None) -> str:
    return "`rimport ledger check" + (f" --ledger {ledger}`" if ledger else "`")
