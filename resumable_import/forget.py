"""Forgetting runs: the ledger keeps every run and its dead letters until told otherwise.

A run is forgotten whole, with all its dead letters, in one transaction, and only while
no process runs it: the ledger takes the run's lock to be sure. Runs that a folder's
`start` would skip as imported are then imported again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import ledger as states
from .errors import RimportError, RunBusyError
from .ledger import Ledger, Run
from .run import using_ledger


@dataclass(frozen=True)
class Forgotten:
    run: Run
    dead_letters: int = 0  # pending ones, gone with it
    error: RimportError | None = None  # why it was not forgotten (another process runs it)


def finished_runs(
    *,
    older_than: timedelta | None = None,
    with_failures: bool = False,
    ledger: str | Path | Ledger | None = None,
) -> list[Run]:
    """Runs that completed (also with dead letters, if `with_failures`) more than
    `older_than` ago: what `forget_runs` may take in bulk. Unfinished runs can still be
    resumed and are never among them."""
    wanted = {states.COMPLETED} | ({states.COMPLETED_WITH_FAILURES} if with_failures else set())
    cutoff = datetime.now(UTC) - (older_than or timedelta(0))
    with using_ledger(ledger) as book:
        return [
            r
            for r in book.runs()
            if r.state in wanted and datetime.fromisoformat(r.finished_at or r.updated_at) <= cutoff
        ]


def forget_runs(
    run_ids: Iterable[str],
    *,
    ledger: str | Path | Ledger | None = None,
    dry_run: bool = False,
) -> list[Forgotten]:
    """Remove these runs (ids or unique prefixes), their dead letters and verifications.
    Every id is looked up before anything is removed, so a mistyped one removes nothing;
    a run another process is running is left alone, with the reason in `error`."""
    with using_ledger(ledger) as book:
        runs = [book.run(run_id) for run_id in dict.fromkeys(run_ids)]
        done = []
        for run in {r.id: r for r in runs}.values():
            if dry_run:
                busy = book.is_locked(run.id)
                done.append(Forgotten(run, run.dead_letters, _busy(run) if busy else None))
                continue
            try:
                done.append(Forgotten(run, book.forget(run.id)))
            except RunBusyError:
                done.append(Forgotten(run, error=_busy(run)))
        return done


def _busy(run: Run) -> RimportError:
    return RunBusyError(f"run {run.id} is being run by another rimport process")
