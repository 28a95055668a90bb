"""What to do next, after a run stopped: the commands that resume it, gentler, or start it
over. Each names the run's own ledger and stream, so that it works as typed.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from . import endpoint as endpoints
from . import ledger as states
from .dynamo import describe_table
from .errors import KeyAttribute, KeyMistake, RimportError, ServiceError
from .ledger import Run
from .writer import BatchWriter


def after_service_error(run: Run, e: ServiceError, client: Any, gentler: str = "") -> str:
    """The hint for a run that DynamoDB stopped: resume (`gentler` after throttling),
    unless its table is gone or was created anew, where resuming would skip the items the
    old table took with it."""
    try:
        info = describe_table(client, run.table)
    except RimportError:  # the endpoint itself is away: resuming later is right
        return resume_hint(run, e.hint, e.param) + gentler
    if info is None or (run.table_identity and info.identity != run.table_identity):
        what = "no longer exists" if info is None else "was created anew"
        e.message += f" (table {run.table!r} {what})"
        return f"what was written to it is gone; import the file again with {start_over(run)}"
    return resume_hint(run, e.hint, e.param) + gentler


def resume_hint(run: Run, first: str | None, param: str | None = None) -> str:
    then = resume_command(run)
    if param == "max_outage":  # waiting longer may be all it takes
        longer = max(2 * (run.settings.max_outage or 300), 60)
        patient = resume_command(run, "--max-outage", f"{longer:g}")
        return f"{first}; then {then}, or {patient} to wait longer for it"
    return f"{first}; then {then}" if first else f"continue with {then}"


def gentler(run: Run, writer: BatchWriter) -> str:
    """After DynamoDB throttled the run, the resume that asks less of the table: the
    same run with half the requests in flight (or a WCU cap under the pace it kept up)."""
    if not writer.throttled:
        return ""
    words = ["--concurrency", str(max(1, run.settings.concurrency // 2))]
    if writer.pace:
        words += ["--max-wcu", f"{max(1, int(writer.pace)):d}"]
    return (
        f"; DynamoDB throttled {writer.throttled:,} of its requests: "
        f"{resume_command(run, *words)} "
        "asks less of the table"
    )


def resume_command(run: Run, *more: str) -> str:
    """`rimport resume ID`, and for a run read from a stream, `--from` the same stream."""
    if run.source == "stream":
        more = ("--from", run.file, *more)
    return command(run, "resume", run.id, *more)


def command(run: Run, *words: str) -> str:
    """A command about `run` for the user to type, quoted for the shell, naming the
    run's ledger when it is not the default one (else the command would not find it)."""
    if run.ledger and Path(run.ledger) != states.default_path():
        words = (*words, "--ledger", run.ledger)
    return "`" + " ".join(shlex.quote(w) for w in ("rimport", *words)) + "`"


rimport_command = command  # as the package offers it, where `command` alone is unclear


def start_over(run: Run, table: str | None = None, keys: list[str] | None = None) -> str:
    """The command that imports the run's file afresh: `start` alone would point back here.
    It names the endpoint and creates the table with the run's key, should it be gone
    (or, given, into another `table` created with `keys`)."""
    words = ["start", run.file, "--table", table or run.table]
    if run.endpoint != endpoints.DEFAULT:
        words += ["--endpoint", run.endpoint]
    recorded = run.recorded
    if recorded.allow_remote:
        words.append("--allow-remote")
    keys = keys or list(recorded.keys)
    if keys:
        words += ["--create-table", "--key", keys[0]]
        words += ["--sort-key", keys[1]] if len(keys) > 1 else []
    if transform := recorded.transform:
        words += ["--transform", transform["spec"]]
    return command(run, *words, "--new")


def other_table(run: Run, mistake: KeyMistake) -> str:
    """What to do when the items do not fit the key of the run's table, which already
    existed: a table's key cannot change, and the table is the user's to keep or delete."""
    done = f"nothing was written (run {run.id} stopped at item 0)"
    if not mistake.fitting:
        return f"{done}; check that {run.file} is a dump for table {run.table!r}"
    keys = [spelled(k) for k in mistake.fitting]
    return (
        f"{done}; a table's key cannot change: import into a new table keyed "
        f"{', '.join(keys)} with {start_over(run, table='NEW_TABLE', keys=keys)}"
    )


def spelled(key: KeyAttribute) -> str:
    return f"{key.name}:{key.type}"


def other_ledger(run: Run) -> bool:
    return bool(run.ledger and Path(run.ledger) != states.default_path())
