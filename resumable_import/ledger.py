"""The SQLite ledger: the only record of what a run has done, and the only module with SQL.

The schema lives in numbered files in `migrations/`, applied in order inside one
transaction each and recorded in `PRAGMA user_version`. A ledger written by a newer rimport
is refused rather than rewritten.

Whether a run is alive is not written anywhere (`locks.py`); what the ledger holds is read
as values (`records.py`), its files are its user's alone (`ledgerfiles.py`), and what
SQLite or the file system says (read-only, a full disk, a damaged file) leaves as a
LedgerError naming the file and what to do. `--via`'s records: `stagingdb.py`.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .deadletters import COUNTS_OF_RUN, UNCOUNTED, DeadLetters, KeyOf
from .errors import Arg, Command, LedgerError, RunBusyError, Text, UsageError
from .ledgerfiles import (
    check_version,
    damaged_hint,
    default_path,
    migrations,
    open_read_only,
    private_file,
    private_folder,
    sqlite_error,
    statements,
)
from .locks import RunLocks
from .options import Recorded, WriteSettings
from .records import (
    COMPLETED,
    COMPLETED_WITH_FAILURES,
    FAILED,
    INTERRUPTED,
    RUNNING,
    DeadLetter,
    Run,
    Verification,
)
from .stagingdb import Staging

__all__ = [
    "COMPLETED", "COMPLETED_WITH_FAILURES", "FAILED", "INTERRUPTED", "RUNNING", "DeadLetter",
    "Ledger", "Run", "default_path", "private_file",
]  # fmt: skip

T = TypeVar("T")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    def __init__(self, path: str | Path | None = None, *, readonly: bool = False) -> None:
        """Open (creating and migrating) the ledger; `readonly` opens it for reading only,
        which is how `status` still reads a ledger it may not write."""
        self.path = Path(path) if path else default_path()
        self._locks = RunLocks(self.path.with_name(self.path.name + ".locks"))
        self.unreadable: list[str] = []  # runs `runs()` found but could not read
        self.readonly = readonly
        if not readonly:
            private_folder(self.path.parent)
            private_file(self.path)
        try:
            if readonly:
                self._db = open_read_only(self.path)
            else:
                self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.isolation_level = None
            self._db.row_factory = sqlite3.Row
            self._letters = DeadLetters(self._db, self._guarded, self._transaction)  # their SQL
            self.staging = Staging(self._db, self._guarded, self._transaction)
            self._db.execute("PRAGMA busy_timeout = 10000")
            if readonly:
                check_version(self._db, self.path, migrations()[-1][0], read_only=True)
                return
            self._db.execute("PRAGMA journal_mode = WAL")
            # NORMAL loses at most the last commits on power loss (a few idempotent puts).
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.Error as e:
            raise sqlite_error(self.path, e, "open") from None
        for suffix in ("-wal", "-shm"):  # SQLite gives them the ledger's mode; an older
            private_file(Path(f"{self.path}{suffix}"), create=False)  # rimport did not

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction("BEGIN IMMEDIATE"):
            version = check_version(self._db, self.path, migrations()[-1][0])
            for number, sql in migrations():
                if number > version:
                    for statement in statements(sql):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {number}")

    @contextlib.contextmanager
    def _transaction(self, begin: str = "BEGIN") -> Iterator[None]:
        """One transaction; rolled back on any exception, Ctrl-C included, even one that
        lands just after COMMIT (then there is nothing left to roll back)."""
        try:
            self._db.execute(begin)
            yield
            self._db.execute("COMMIT")
        except BaseException as e:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise sqlite_error(self.path, e, "write to") from None
            raise

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # -- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        *,
        file: str,
        file_size: int,
        file_hash: str,
        table: str,
        endpoint: str,
        region: str,
        format: str,
        shape: str,
        options: Recorded,
        block_hashes: list[str] | None = None,
        folder: str | None = None,
        table_identity: str | None = None,
        source: str | None = None,
    ) -> Run:
        """Record a new run (`ready_for_runs` first tells whether it can be)."""
        now = _now()
        run_id = secrets.token_hex(6)
        with self._transaction():
            self._db.execute(
                "INSERT INTO runs (id, file, file_size, file_hash, table_name, endpoint, region,"
                " format, shape, options, state, started_at, updated_at, block_hashes, folder,"
                " table_identity, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, file, file_size, file_hash, table, endpoint, region, format, shape,
                 json.dumps(options.record()), RUNNING, now, now,
                 json.dumps(block_hashes) if block_hashes else None, folder, table_identity,
                 source),
            )  # fmt: skip
        return self.run(run_id)

    def run(self, prefix: str) -> Run:
        """The run whose id is, or starts with, `prefix`."""
        if not re.fullmatch(r"[0-9a-f]{1,32}", prefix):
            raise UsageError(
                f"{prefix!r} is not a run id", Text(Command("status"), " lists the runs")
            )
        rows = self._select(" WHERE r.id LIKE ? ORDER BY r.started_at", (prefix + "%",))
        if not rows:
            raise UsageError(
                f"no run {prefix!r} in the ledger {self.path}",
                Text(
                    Command("status"),
                    " lists the runs; pass ",
                    Arg("ledger"),
                    " if they are in another ledger",
                ),
            )
        if len(rows) > 1:
            raise UsageError(
                f"{prefix!r} matches {len(rows)} runs", "give more characters of the run id"
            )
        return self._run(rows[0])

    def runs(self) -> list[Run]:
        """Every run, oldest first. In a damaged ledger, every run whose row can still be
        read, so that `status` shows what it can: the ids of those that cannot be read in
        full go to `unreadable`, and a run whose dead letters cannot be counted has
        `dead_letters` -1."""
        self.unreadable = []
        try:
            return [self._run(r) for r in self._select(" ORDER BY r.started_at, r.rowid")]
        except LedgerError:
            ids = self._guarded(lambda: self._db.execute("SELECT id FROM runs").fetchall())
        found = []
        for (run_id,) in ids:
            try:
                found.append(self.run(run_id))
                continue
            except LedgerError:
                self.unreadable.append(run_id)
            with contextlib.suppress(LedgerError):
                row = self._guarded(
                    lambda r=run_id: self._db.execute(_SELECT_DAMAGED, (r,)).fetchone()
                )
                found.append(self._run(row))
        return sorted(found, key=lambda r: r.started_at)

    def latest_run(self, file: str, table: str) -> Run | None:
        """The most recent run of this file (absolute path) into this table, if any."""
        rows = self._select(
            " WHERE r.file = ? AND r.table_name = ? ORDER BY r.started_at DESC, r.rowid DESC"
            " LIMIT 1",
            (file, table),
        )
        return self._run(rows[0]) if rows else None

    def _select(self, where: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._guarded(lambda: self._db.execute(_SELECT_RUNS + where, args).fetchall())

    def _run(self, row: sqlite3.Row) -> Run:
        d = dict(row)
        d["table"] = d.pop("table_name")
        d["options"] = json.loads(d["options"])
        d["block_hashes"] = json.loads(d["block_hashes"]) if d["block_hashes"] else None
        d["verified"] = _verification(d["verified"])
        run = Run(**d, ledger=str(self.path))
        if run.state == RUNNING and not self.is_locked(run.id):
            run.state = INTERRUPTED
        return run

    def commit(
        self,
        run_id: str,
        *,
        items_committed: int,
        byte_offset: int,
        written: int,
        dead: list[DeadLetter],
        checkpoint_hash: str | None = None,
        deleted: int = 0,
        superseded: list[tuple[bytes, int]] | None = None,
    ) -> int:
        """Record a batch DynamoDB acknowledged: its dead letters, the new checkpoint (for a
        stream, with its text's hash), `written` items put, `deleted` keys deleted; and mark
        superseded the retryable dead letters before each of its written items (key, index)
        in `superseded` (`retryable_keys`), returning how many."""
        now = _now()
        with self._transaction():
            if dead:
                self._letters.add(run_id, dead, now)
            self._db.execute(  # a stream's hash of its text so far; a file has none
                "UPDATE runs SET items_committed = ?, byte_offset = ?,"
                " items_written = items_written + ?, items_deleted = items_deleted + ?,"
                " updated_at = ?, checkpoint_hash = COALESCE(?, checkpoint_hash) WHERE id = ?",
                (items_committed, byte_offset, written, deleted, now, checkpoint_hash, run_id),
            )
            return self._letters.supersede(run_id, superseded, now) if superseded else 0

    def set_state(
        self,
        run_id: str,
        state: str,
        *,
        error: str | None = None,
        prefix_hash: str | None = None,
    ) -> None:
        now = _now()
        finished = now if state in (COMPLETED, COMPLETED_WITH_FAILURES) else None
        # The stint that ends here counts: to now, or for one whose process died (a run
        # started again while its last stint is open), to its last checkpoint.
        stint_end = "updated_at" if state == RUNNING else "?"
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET state = ?, error = ?, prefix_hash = ?, updated_at = ?,"
                " finished_at = ?, active_seconds = active_seconds + CASE WHEN running_since"
                f" IS NULL THEN 0 ELSE max(0, julianday({stint_end}) - julianday(running_since))"
                " * 86400 END, running_since = ? WHERE id = ?",
                (state, error, prefix_hash, now, finished,
                 *(() if state == RUNNING else (now,)),
                 now if state == RUNNING else None, run_id),
            )  # fmt: skip

    def set_file(self, run_id: str, size: int, file_hash: str, block_hashes: list[str]) -> None:
        """The dump was fixed after the checkpoint; the run goes on with the new file."""
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET file_size = ?, file_hash = ?, block_hashes = ?, updated_at = ?"
                " WHERE id = ?",
                (size, file_hash, json.dumps(block_hashes), _now(), run_id),
            )

    def change_settings(self, run: Run, settings: WriteSettings) -> dict[str, list[Any]]:
        """New write settings for the rest of a run. Those that change ({name: [from, to]},
        returned) join the run's history under `changes`, stamped with the time, for
        `status` to show; when none does, nothing is written."""
        recorded = run.recorded
        was = recorded.settings
        changed = {
            name: [getattr(was, name), getattr(settings, name)]
            for name in WriteSettings.names()
            if getattr(was, name) != getattr(settings, name)
        }
        if not changed:
            return changed
        history = (*recorded.changes, {"at": _now(), **changed})
        options = replace(recorded, settings=settings, changes=history).record()
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET options = ?, updated_at = ? WHERE id = ?",
                (json.dumps(options), _now(), run.id),
            )
        return changed

    def set_table_identity(self, run_id: str, identity: str) -> None:
        """For a run recorded before identities were: the table it finds now is its table."""
        with self._transaction():
            self._db.execute("UPDATE runs SET table_identity = ? WHERE id = ?", (identity, run_id))

    # -- dead letters ---------------------------------------------------------------------

    def dead_letters(
        self,
        run_id: str,
        *,
        retryable_only: bool = False,
        limit: int | None = None,
        after: tuple[int, int] = (-1, -1),
        codes: Collection[str] | None = None,
        retryable: bool | None = None,
    ) -> list[DeadLetter]:
        """The run's pending dead letters in file order: at most `limit` of them, those
        after the one at (item index, id) `after` (a page; `status` never loads them all).
        `codes` keeps those of these error codes; `retryable` those that are (or are not)."""
        retryable = True if retryable_only else retryable
        return self._letters.page(
            run_id, limit=limit, after=after, codes=codes, retryable=retryable
        )

    def pages_of_dead_letters(
        self,
        run_id: str,
        *,
        retryable_only: bool = False,
        size: int = 1000,
        codes: Collection[str] | None = None,
        retryable: bool | None = None,
    ) -> Iterator[list[DeadLetter]]:
        """All of the run's pending dead letters (those `dead_letters` keeps), `size` at a
        time, in file order."""
        return self._letters.pages(
            run_id, size=size, codes=codes, retryable=True if retryable_only else retryable
        )

    def dead_letter_counts(self, run_id: str) -> dict[str, Counter[str]]:
        """Pending dead letters by error code, apart for the retryable and the others."""
        return self._letters.counts(run_id)

    def retryable_keys(self, run_id: str, key_of: KeyOf) -> set[bytes]:
        """Canonical keys of its retryable pending dead letters: for `commit`'s `superseded`."""
        return self._letters.retryable_keys(run_id, key_of)

    def supersede_repeats(self, run_id: str, key_of: KeyOf) -> int:
        """Of its retryable pending dead letters of one key the last supersedes the others."""
        return self._letters.supersede_repeats(run_id, key_of, _now())

    def add_dead_letters(self, run_id: str, dead: list[DeadLetter]) -> None:
        """Record items that failed outside a batch of the run's file (a repair's writes):
        the checkpoint and the counts stay as they are."""
        now = _now()
        with self._transaction():
            self._letters.add(run_id, dead, now)
            self._db.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (now, run_id))

    def settle(self, run_id: str, written: list[Any], failed: list[Any], deleted: int = 0) -> None:
        """Record a retry: `written` ones are done (`deleted` of them deletes), `failed`
        ones carry their new error."""
        now = _now()
        with self._transaction():
            self._letters.settle(written, failed, now)
            self._db.execute(
                "UPDATE runs SET items_written = items_written + ?, items_deleted ="
                " items_deleted + ?, updated_at = ? WHERE id = ?",
                (len(written) - deleted, deleted, now, run_id),
            )

    def forget(self, run_id: str) -> int:
        """Remove the run, its dead letters, verifications and staging in one transaction,
        holding its lock so that no process runs it meanwhile (RunBusyError if one does);
        how many of its dead letters were still pending, which went with it."""
        if self._locks.holds(run_id):
            raise RunBusyError(f"run {run_id} is being run by this process")
        with self.lock(run_id):
            with self._transaction("BEGIN IMMEDIATE"):
                pending = self._letters.remove(run_id)
                self.staging.remove(run_id)
                self._db.execute("DELETE FROM verifications WHERE run_id = ?", (run_id,))
                self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            self._locks.remove(run_id)
        return pending

    # -- verifications --------------------------------------------------------------------

    def record_verification(self, run_id: str, found: Verification) -> Verification:
        """Keep what `verify` found, stamped with the time, for `status` to show; nothing is
        kept for a run forgotten meanwhile. Returns it as kept."""
        found = replace(found, at=_now())
        names = [f.name for f in fields(Verification)]
        with self._transaction():
            self._db.execute(
                f"INSERT INTO verifications (run_id, {', '.join(names)}) SELECT ?"
                + ", ?" * len(names)
                + " WHERE EXISTS (SELECT 1 FROM runs WHERE id = ?)",
                (run_id, *(getattr(found, n) for n in names), run_id),
            )
        return found

    def last_verification(self, run_id: str) -> Verification | None:
        """What `verify` found the last time it read this run's table back; None if never."""
        row = self._guarded(
            lambda: self._db.execute(_LAST_VERIFIED.format("?"), (run_id,)).fetchone()
        )
        return _verification(row[0] if row else None)

    # -- ownership ------------------------------------------------------------------------

    def lock(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        """Hold the run for this process; a second holder gets RunBusyError (`locks.py`)."""
        return self._locks.hold(run_id)

    def is_locked(self, run_id: str) -> bool:
        return self._locks.is_held(run_id)

    # -- health ---------------------------------------------------------------------------

    def ready_for_runs(self) -> None:
        """Refuse, before anything is read or sent, a ledger that could not keep a run's
        record: one that is read-only (SQLite opens those without a word), or damaged (a
        run recorded in it might not be readable again)."""
        if problems := self.check():
            raise LedgerError(
                f"the ledger {self.path} is damaged ({problems[0]}); no new run is recorded in it",
                damaged_hint(self.path),
            )
        with self._transaction("BEGIN IMMEDIATE"):  # a write that changes nothing
            self._db.execute(f"PRAGMA user_version = {self.schema_version}")

    def check(self) -> list[str]:
        """What SQLite's quick check finds wrong with the file; empty when it is sound."""
        try:
            rows = self._db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as e:
            return [str(e)]
        found = [r[0] for r in rows]
        return [] if found == ["ok"] else found

    def _guarded(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except sqlite3.Error as e:
            raise sqlite_error(self.path, e, "read") from None


_LAST_VERIFIED = (  # the last verification of the run {} names, as a JSON object
    "SELECT json_object("
    + ", ".join(f"'{f.name}', v.{f.name}" for f in fields(Verification))
    + ") FROM verifications v WHERE v.run_id = {} ORDER BY v.id DESC LIMIT 1"
)
_VERIFIED = "(" + _LAST_VERIFIED.format("r.id") + ") AS verified"
_SELECT_RUNS = (  # every run's row, with its counts of dead letters and its last verification
    "SELECT r.id, r.file, r.file_size, r.file_hash, r.table_name, r.endpoint, r.region,"
    " r.format, r.shape, r.options, r.state, r.items_committed, r.byte_offset,"
    " r.items_written, r.error, r.prefix_hash, r.started_at, r.updated_at, r.finished_at,"
    " r.block_hashes, r.folder, r.table_identity, r.active_seconds, r.running_since, "
    f" r.source, r.checkpoint_hash, r.items_deleted, {COUNTS_OF_RUN}, {_VERIFIED} FROM runs r"
)
_SELECT_DAMAGED = (  # what a damaged ledger may still read of a run: its row alone
    _SELECT_RUNS.replace(COUNTS_OF_RUN, UNCOUNTED).replace(_VERIFIED, "NULL AS verified")
    + " WHERE r.id = ?"
)


def _verification(text: str | None) -> Verification | None:
    if text is None:
        return None
    d = json.loads(text)
    return Verification(**{**d, "read_units_estimated": bool(d["read_units_estimated"])})
