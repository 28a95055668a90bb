"""The ledger's record of a `--via` run, in SQL: where it stages, the objects already
uploaded, and what DynamoDB's operation last said of itself.

Split from `ledger.py` (which owns the connection and its transactions) as `deadletters.py`
is: a staged object is recorded in its own transaction the moment S3 acknowledged it, so a
killed staging resumes at the first object not uploaded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class StagedObject:
    number: int  # which of the run's objects: the keys whose hash falls in it
    key: str  # its S3 key
    etag: str
    items: int
    bytes: int  # compressed, as stored


@dataclass(frozen=True)
class Operation:
    """A `--via` run's plan and the last word of the operation it handed off to."""

    via: str  # s3://BUCKET/PREFIX/
    objects: int  # how many objects the keys are spread over
    operation: str  # "import": ImportTable into a new table; "bulk": StartBulkPutItems
    max_wcu: int | None = None  # StartBulkPutItems' MaxWriteRequestUnits, if asked
    tier: str | None = None  # its PerformanceTier, if asked
    compression: str = "gzip"  # of the objects: gzip or zstd
    arn: str | None = None
    status: str | None = None  # the operation's own: IN_PROGRESS, COMPLETED, FAILED, ...
    processed_items: int | None = None
    processed_bytes: int | None = None
    total_bytes: int | None = None
    imported_items: int | None = None
    error_count: int | None = None
    failure_code: str | None = None
    failure_message: str | None = None


_FOLLOWED = ("arn", "status", "processed_items", "processed_bytes", "total_bytes",
             "imported_items", "error_count", "failure_code", "failure_message")  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Staging:
    def __init__(
        self,
        db: sqlite3.Connection,
        guarded: Callable[[Callable[[], Any]], Any],
        transaction: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._db = db
        self._guarded = guarded
        self._transaction = transaction

    def plan(self, run_id: str, via: str, objects: int, operation: str,
             max_wcu: int | None = None, tier: str | None = None,
             compression: str = "gzip") -> None:  # fmt: skip
        """Record where and into how many objects a new run stages, and what it hands to."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO staging (run_id, via, objects, operation, max_wcu, tier,"
                " compression, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, via, objects, operation, max_wcu, tier, compression, _now()),
            )

    def of(self, run_id: str) -> Operation | None:
        """The run's plan and operation; None for a run that writes itself."""
        columns = ("via", "objects", "operation", "max_wcu", "tier", "compression", *_FOLLOWED)
        row = self._guarded(
            lambda: self._db.execute(
                f"SELECT {', '.join(columns)} FROM staging WHERE run_id = ?", (run_id,)
            ).fetchone()
        )
        return None if row is None else Operation(*tuple(row))

    def uploaded(self, run_id: str, obj: StagedObject) -> None:
        """One object is in S3: recorded at once, in its own transaction."""
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO staged_objects (run_id, number, key, etag, items,"
                " bytes, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, obj.number, obj.key, obj.etag, obj.items, obj.bytes, _now()),
            )

    def objects(self, run_id: str) -> list[StagedObject]:
        """The run's objects uploaded so far, in their order."""
        rows = self._guarded(
            lambda: self._db.execute(
                "SELECT number, key, etag, items, bytes FROM staged_objects WHERE run_id = ?"
                " ORDER BY number",
                (run_id,),
            ).fetchall()
        )
        return [StagedObject(*tuple(r)) for r in rows]

    def remove(self, run_id: str) -> None:
        """The run's staging record and objects, in the caller's transaction (`forget`)."""
        self._db.execute("DELETE FROM staged_objects WHERE run_id = ?", (run_id,))
        self._db.execute("DELETE FROM staging WHERE run_id = ?", (run_id,))

    def followed(self, run_id: str, **said: Any) -> None:
        """What the operation last said of itself (its ARN, status and counts)."""
        unknown = set(said) - set(_FOLLOWED)
        if unknown:
            raise ValueError(f"not an operation's figure: {sorted(unknown)}")
        sets = ", ".join(f"{k} = ?" for k in said)
        with self._transaction():
            self._db.execute(
                f"UPDATE staging SET {sets}, updated_at = ? WHERE run_id = ?",
                (*said.values(), _now(), run_id),
            )
