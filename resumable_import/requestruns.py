"""A BatchWriteItem request file imported: each of its tables as a run of its own, into
the table it names, as a folder's files are (`folder.import_folder`).

Started again, the same call skips the tables whose run completed on the same bytes and
resumes the unfinished ones, so a crash or a stop anywhere costs nothing written twice.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import (
    Arg,
    Command,
    InputError,
    RunBusyError,
    RunInterrupted,
    TableError,
    Text,
    UsageError,
)
from .folder import TABLE_NAME, Entry, FileOutcome, FolderResult, Plan
from .hooks import Hooks
from .ledger import Ledger
from .loop import finished, stopped_before_writing
from .options import ImportOptions, ResumeOptions
from .requestitems import FORMAT, is_request_file, tables_in
from .run import import_file, resume_run, using_ledger
from .sources import Location
from .writer import RetryPolicy


def request_tables(path: str | Path, fmt: str = "auto") -> list[str] | None:
    """The tables of a BatchWriteItem request file, in file order; None when `path` is not
    one (by `fmt`, or for `auto` by its first entry)."""
    if fmt not in ("auto", FORMAT):
        return None
    where = Location(path)
    if fmt == "auto" and not is_request_file(where):
        return None
    if where.kind != "file":
        raise InputError(
            f"{where}: a BatchWriteItem request file is read from a file, not a stream",
            "save it to a file and import that",
        )
    return tables_in(where)


def import_requests(
    path: str | Path,
    table: str | None = None,
    options: ImportOptions = ImportOptions(),
    hooks: Hooks = Hooks(),
    *,
    ledger: str | Path | Ledger | None = None,
    client: Any = None,
    retry: RetryPolicy | None = None,
) -> FolderResult:
    """Import each table of a request file into the table it names, or a one-table file
    into `table`: puts written and deletes performed in file order, each table a run.

    A table whose last run completed on the same bytes is skipped, an unfinished one
    resumed (`options.new` starts each afresh). `options.create_keys` applies to each
    table. A table that cannot be imported is reported and the others still are; a
    DynamoDB failure or Ctrl-C stops them all."""
    names = request_tables(path, FORMAT) or []
    if options.transform is not None:
        raise UsageError(
            Text(Arg("transform"), " does not go with a BatchWriteItem request file: its "
                 "entries are requests to write or delete, not items"),
        )  # fmt: skip
    if table is not None and len(names) > 1:
        raise UsageError(
            Text(
                f"{path} holds write requests for {len(names)} tables ({', '.join(names)}); ",
                Arg("table"), " renames the table of a file that holds one",
            ),
            Text("leave out ", Arg("table"), " to import each into the table it names: ",
                 Command("start", (str(path),))),
        )  # fmt: skip
    for name in names:
        if table is None and not TABLE_NAME.fullmatch(name):
            raise UsageError(
                f"{path}: {name!r} is not a valid table name",
                Text("name the table with ", Arg("table")),
            )
    plan = Plan(Path(path), [Entry(Path(path), table or n) for n in names], FORMAT)
    outcome = FolderResult(plan)
    file = str(Path(path).resolve())
    with using_ledger(ledger) as book:
        for entry, name in zip(plan.entries, names, strict=True):
            if hooks.on_file and len(names) > 1:
                hooks.on_file(entry)
            done = FileOutcome(entry, "failed")
            outcome.files.append(done)
            each = replace(options, format=FORMAT, items_path=name)
            try:
                last = None if options.new else book.latest_run(file, entry.table)
                if last and not finished(last) and not stopped_before_writing(last):
                    again = ResumeOptions(profile=options.profile)
                    done.result = resume_run(last.id, again, hooks, ledger=book, client=client,
                                             retry=retry)  # fmt: skip
                    done.action = "resumed"
                else:  # a table imported already (read alike, same table) is skipped there
                    done.result = import_file(path, entry.table, each, hooks, ledger=book,
                                              client=client, retry=retry)  # fmt: skip
                    done.action = "skipped" if done.result.imported_before else "imported"
            except (InputError, TableError, RunBusyError) as e:
                done.error = e
            except RunInterrupted as e:
                e.hint = Text("run the same ", Command("start", (str(path),)), " again to continue")
                raise
    return outcome
