"""The SQLite ledger: the only record of what a run has done, and the only module with SQL.

The schema lives in numbered files in `migrations/`, applied in order inside one
transaction each and recorded in `PRAGMA user_version`. A ledger written by a newer rimport
is refused rather than rewritten.

Whether a run is alive is not written anywhere: the process that runs it holds an
exclusive `flock` on a lock file beside the ledger, which the kernel drops however the
process dies, so a run marked `running` whose lock is free is shown as `interrupted`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import LedgerError, RunBusyError, UsageError

_LOCK_PATIENCE = 0.5  # seconds a taken run lock is tried again before the run counts as busy

RUNNING = "running"
INTERRUPTED = "interrupted"
COMPLETED = "completed"
COMPLETED_WITH_FAILURES = "completed_with_failures"
FAILED = "failed"


def default_path() -> Path:
    """`$RIMPORT_LEDGER`, else the per-user state file."""
    if env := os.environ.get("RIMPORT_LEDGER"):
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "rimport" / "ledger.sqlite"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Run:
    id: str
    file: str
    file_size: int
    file_hash: str
    table: str
    endpoint: str
    region: str
    format: str
    shape: str
    options: dict[str, Any]
    state: str
    items_committed: int
    byte_offset: int
    items_written: int
    error: str | None
    prefix_hash: str | None
    started_at: str
    updated_at: str
    finished_at: str | None
    block_hashes: list[str] | None
    folder: str | None  # the folder it was started from, with others; None for a single file
    dead_letters: int = 0  # pending ones

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        del d["block_hashes"]  # for resume's check only
        return {"run_id": d.pop("id"), **d}


@dataclass
class DeadLetter:
    index: int
    item: dict[str, Any]
    code: str
    message: str
    attempts: int
    retryable: bool
    id: int | None = field(default=None)


class Ledger:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA journal_mode = WAL")
            # NORMAL loses at most the last commits on power loss, never on a process crash;
            # a lost checkpoint only means re-writing a few idempotent puts.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.Error as e:
            raise LedgerError(
                f"cannot open the ledger {self.path}: {e}",
                "pass --ledger PATH (or set RIMPORT_LEDGER) to use another file",
            ) from None
        self._locks_dir = self.path.with_name(self.path.name + ".locks")
        self._held: dict[str, int] = {}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        steps = _migrations()
        latest = steps[-1][0] if steps else 0
        with self._transaction("BEGIN IMMEDIATE"):
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > latest:
                raise LedgerError(
                    f"the ledger {self.path} has schema version {version}, newer than this "
                    f"rimport knows ({latest})",
                    "upgrade rimport, or pass --ledger PATH to start a separate ledger",
                )
            for number, sql in steps:
                if number > version:
                    for statement in _statements(sql):
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
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
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
        options: dict[str, Any],
        block_hashes: list[str] | None = None,
        folder: str | None = None,
    ) -> Run:
        now = _now()
        run_id = secrets.token_hex(6)
        self._db.execute(
            "INSERT INTO runs (id, file, file_size, file_hash, table_name, endpoint, region,"
            " format, shape, options, state, started_at, updated_at, block_hashes, folder)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, file, file_size, file_hash, table, endpoint, region, format, shape,
             json.dumps(options), RUNNING, now, now,
             json.dumps(block_hashes) if block_hashes else None, folder),
        )  # fmt: skip
        return self.run(run_id)

    def run(self, prefix: str) -> Run:
        """The run whose id is, or starts with, `prefix`."""
        if not re.fullmatch(r"[0-9a-f]{1,32}", prefix):
            raise UsageError(f"{prefix!r} is not a run id", "`rimport status` lists the runs")
        rows = self._db.execute(
            _SELECT_RUNS + " WHERE r.id LIKE ? ORDER BY r.started_at", (prefix + "%",)
        ).fetchall()
        if not rows:
            raise UsageError(
                f"no run {prefix!r} in the ledger {self.path}",
                "`rimport status` lists the runs; pass --ledger if they are in another ledger",
            )
        if len(rows) > 1:
            raise UsageError(
                f"{prefix!r} matches {len(rows)} runs", "give more characters of the run id"
            )
        return self._run(rows[0])

    def runs(self) -> list[Run]:
        return [
            self._run(r) for r in self._db.execute(_SELECT_RUNS + " ORDER BY r.started_at, r.rowid")
        ]

    def latest_run(self, file: str, table: str) -> Run | None:
        """The most recent run of this file (absolute path) into this table, if any."""
        row = self._db.execute(
            _SELECT_RUNS + " WHERE r.file = ? AND r.table_name = ?"
            " ORDER BY r.started_at DESC, r.rowid DESC LIMIT 1",
            (file, table),
        ).fetchone()
        return self._run(row) if row else None

    def _run(self, row: sqlite3.Row | tuple[Any, ...]) -> Run:
        run = Run(*row[:-1], dead_letters=row[-1])  # type: ignore[arg-type,misc]
        run.options = json.loads(row[9])
        run.block_hashes = json.loads(row[19]) if row[19] else None
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
    ) -> None:
        """Record a batch DynamoDB acknowledged: its dead letters and the new checkpoint."""
        now = _now()
        with self._transaction():
            if dead:
                self._db.executemany(
                    "INSERT INTO dead_letters (run_id, item_index, item, error_code,"
                    " error_message, attempts, retryable, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, d.index, json.dumps(d.item), d.code, d.message, d.attempts,
                      int(d.retryable), now, now) for d in dead],
                )  # fmt: skip
            self._db.execute(
                "UPDATE runs SET items_committed = ?, byte_offset = ?,"
                " items_written = items_written + ?, updated_at = ? WHERE id = ?",
                (items_committed, byte_offset, written, now, run_id),
            )

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
        self._db.execute(
            "UPDATE runs SET state = ?, error = ?, prefix_hash = ?, updated_at = ?,"
            " finished_at = ? WHERE id = ?",
            (state, error, prefix_hash, now, finished, run_id),
        )

    def set_file(self, run_id: str, size: int, file_hash: str, block_hashes: list[str]) -> None:
        """The dump was fixed after the checkpoint; the run goes on with the new file."""
        self._db.execute(
            "UPDATE runs SET file_size = ?, file_hash = ?, block_hashes = ?, updated_at = ?"
            " WHERE id = ?",
            (size, file_hash, json.dumps(block_hashes), _now(), run_id),
        )

    # -- dead letters ---------------------------------------------------------------------

    def dead_letters(self, run_id: str, *, retryable_only: bool = False) -> list[DeadLetter]:
        """The run's pending dead letters, in file order."""
        rows = self._db.execute(
            "SELECT item_index, item, error_code, error_message, attempts, retryable, id"
            " FROM dead_letters WHERE run_id = ? AND status = 'pending'"
            + (" AND retryable = 1" if retryable_only else "")
            + " ORDER BY item_index, id",
            (run_id,),
        )
        return [
            DeadLetter(i, json.loads(item), code, msg, att, bool(r), id_)
            for i, item, code, msg, att, r, id_ in rows
        ]

    def settle(self, run_id: str, written: list[DeadLetter], failed: list[DeadLetter]) -> None:
        """Record a retry: `written` ones are done, `failed` ones carry their new error."""
        now = _now()
        with self._transaction():
            self._db.executemany(
                "UPDATE dead_letters SET status = 'written', attempts = ?, updated_at = ?"
                " WHERE id = ?",
                [(d.attempts, now, d.id) for d in written],
            )
            self._db.executemany(
                "UPDATE dead_letters SET error_code = ?, error_message = ?, attempts = ?,"
                " retryable = ?, updated_at = ? WHERE id = ?",
                [(d.code, d.message, d.attempts, int(d.retryable), now, d.id) for d in failed],
            )
            self._db.execute(
                "UPDATE runs SET items_written = items_written + ?, updated_at = ? WHERE id = ?",
                (len(written), now, run_id),
            )

    # -- ownership ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        """Hold the run for this process; a second holder gets RunBusyError.

        `is_locked` (every `status`, every look at a run) takes the lock for a moment to
        test it, so a lock found taken is tried again for a while: a prober lets go within
        microseconds, a process running the run holds it to the end.
        """
        self._locks_dir.mkdir(exist_ok=True)
        fd = os.open(self._locks_dir / f"{run_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + _LOCK_PATIENCE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.005)
                    continue
                os.close(fd)
                raise RunBusyError(
                    f"run {run_id} is being run by another rimport process right now",
                    "wait for it to finish, or stop it first; `rimport status` shows its progress",
                ) from None
        self._held[run_id] = fd
        try:
            yield
        finally:
            del self._held[run_id]
            os.close(fd)

    def is_locked(self, run_id: str) -> bool:
        if run_id in self._held:
            return True
        try:
            fd = os.open(self._locks_dir / f"{run_id}.lock", os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


_SELECT_RUNS = (
    "SELECT r.id, r.file, r.file_size, r.file_hash, r.table_name, r.endpoint, r.region,"
    " r.format, r.shape, r.options, r.state, r.items_committed, r.byte_offset,"
    " r.items_written, r.error, r.prefix_hash, r.started_at, r.updated_at, r.finished_at,"
    " r.block_hashes, r.folder,"
    " (SELECT count(*) FROM dead_letters d WHERE d.run_id = r.id AND d.status = 'pending')"
    " FROM runs r"
)


def _migrations() -> list[tuple[int, str]]:
    """The numbered SQL files, in order: shipped in the installed package as
    `resumable_import.migrations`, or in `migrations/` beside a source checkout."""
    try:
        folder: Any = resources.files("resumable_import.migrations")
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parent.parent / "migrations"
    found = []
    for entry in folder.iterdir():
        if m := re.fullmatch(r"(\d{4})_\w+\.sql", entry.name):
            found.append((int(m.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements, so a migration can run inside our own transaction."""
    current: list[str] = []
    for line in script.splitlines(keepends=True):
        current.append(line)
        text = "".join(current)
        if sqlite3.complete_statement(text):
            if text.strip().strip(";").strip():
                yield text
            current = []
