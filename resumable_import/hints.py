"""What to do next, after a run stopped: the commands that resume it, gentler, or start it
over, as `Command`s the CLI spells. Each names the run's own ledger and stream, so that it
works as typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import endpoint as endpoints
from . import ledger as states
from .dynamo import describe_table
from .errors import Arg, Command, KeyAttribute, KeyMistake, RimportError, ServiceError, Text
from .ledger import Run
from .writer import BatchWriter


def after_service_error(run: Run, e: ServiceError, client: Any, gentler: str = "") -> Text:
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
        return Text("what was written to it is gone; import the file again with ", start_over(run))
    return resume_hint(run, e.hint, e.param) + gentler


def resume_hint(run: Run, first: str | None, param: str | None = None) -> Text:
    then = resume_command(run)
    if param == "max_outage":  # waiting longer may be all it takes
        longer = max(2 * (run.settings.max_outage or 300), 60)
        patient = resume_command(run, Arg("max_outage", int(longer) if longer % 1 == 0 else longer))
        return Text(first or "", "; then ", then, ", or ", patient, " to wait longer for it")
    return Text(first, "; then ", then) if first else Text("continue with ", then)


def gentler(run: Run, writer: BatchWriter) -> Text:
    """After DynamoDB throttled the run, the resume that asks less of the table: the
    same run with half the requests in flight (or a WCU cap under the pace it kept up)."""
    if not writer.throttled:
        return Text()
    args = [Arg("concurrency", max(1, run.settings.concurrency // 2))]
    if writer.pace:
        args.append(Arg("max_wcu", max(1, int(writer.pace))))
    return Text(
        f"; DynamoDB throttled {writer.throttled:,} of its requests: ",
        resume_command(run, *args),
        " asks less of the table",
    )


def resume_command(run: Run, *more: Arg) -> Command:
    """Resume the run, and for a run read from a stream, from the same stream."""
    if run.source == "stream":
        more = (Arg("source", run.file), *more)
    return command(run, "resume", run.id, args=more)


def command(run: Run, verb: str, *words: str, args: tuple[Arg, ...] = ()) -> Command:
    """A command about `run`, naming the run's ledger when it is not the default one
    (else the command would not find it)."""
    if other_ledger(run):
        args = (*args, Arg("ledger", run.ledger))
    return Command(verb, words, args)


rimport_command = command  # as the package offers it, where `command` alone is unclear


def start_over(run: Run, table: str | None = None, keys: list[str] | None = None) -> Command:
    """The command that imports the run's file afresh: `start` alone would point back here.
    It names the endpoint and creates the table with the run's key, should it be gone
    (or, given, into another `table` created with `keys`)."""
    args = [Arg("table", table or run.table)]
    if run.endpoint != endpoints.DEFAULT:
        args.append(Arg("endpoint", run.endpoint))
    recorded = run.recorded
    if recorded.allow_remote:
        args.append(Arg("allow_remote", True))
    keys = keys or list(recorded.keys)
    if keys:
        args.append(Arg("create_keys", tuple(keys)))
    if transform := recorded.transform:
        args.append(Arg("transform", transform["spec"]))
    args.append(Arg("new", True))
    return command(run, "start", run.file, args=tuple(args))


def other_table(run: Run, mistake: KeyMistake) -> Text:
    """What to do when the items do not fit the key of the run's table, which already
    existed: a table's key cannot change, and the table is the user's to keep or delete."""
    done = f"nothing was written (run {run.id} stopped at item 0)"
    if not mistake.fitting:
        return Text(f"{done}; check that {run.file} is a dump for table {run.table!r}")
    keys = [spelled(k) for k in mistake.fitting]
    return Text(
        f"{done}; a table's key cannot change: import into a new table keyed "
        f"{', '.join(keys)} with ",
        start_over(run, table="NEW_TABLE", keys=keys),
    )


def spelled(key: KeyAttribute) -> str:
    return f"{key.name}:{key.type}"


def other_ledger(run: Run) -> bool:
    return bool(run.ledger and Path(run.ledger) != states.default_path())
