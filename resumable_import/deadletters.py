"""The ledger's dead letters: the items a run could not write, kept with why, in SQL.

Split from `ledger.py`, which owns the connection and its transactions and keeps the public
methods: this holds only the queries on the `dead_letters` table, run inside the ledger's
transactions (a batch's dead letters are recorded in the one that moves its checkpoint).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from typing import Any

from .records import SUPERSEDED, DeadLetter

KeyOf = Callable[[dict[str, Any]], bytes | None]  # a sent item's canonical key, if it has one

# For the ledger's query of runs (`r`): how many of a run's are pending, and superseded;
# and what stands in for them where they cannot be counted (a damaged ledger).
COUNTS_OF_RUN = (
    "(SELECT count(*) FROM dead_letters d WHERE d.run_id = r.id AND d.status = 'pending')"
    " AS dead_letters, (SELECT count(*) FROM dead_letters d WHERE d.run_id = r.id"
    f" AND d.status = '{SUPERSEDED}') AS superseded_dead_letters"
)
UNCOUNTED = "-1 AS dead_letters, 0 AS superseded_dead_letters"

# The dead letters `retry-failed` writes again: pending and retryable. Their keys are what
# a later element with the same key supersedes.
_RETRYABLE = "run_id = ? AND status = 'pending' AND retryable = 1"


class DeadLetters:
    def __init__(
        self,
        db: sqlite3.Connection,
        guarded: Callable[[Callable[[], Any]], Any],
        transaction: Callable[[], AbstractContextManager[None]],
    ) -> None:
        """`guarded` runs a read, turning what SQLite says into the ledger's LedgerError;
        `transaction` is the ledger's, for the few writes that are not part of another."""
        self._db = db
        self._guarded = guarded
        self._transaction = transaction

    def add(self, run_id: str, dead: list[DeadLetter], now: str) -> None:
        """Record a batch's dead letters, inside the transaction that records the batch."""
        self._db.executemany(
            "INSERT INTO dead_letters (run_id, item_index, item, error_code,"
            " error_message, attempts, retryable, created_at, updated_at, item_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, d.index, json.dumps(d.item), d.code, d.message, d.attempts,
              int(d.retryable), now, now, d.key) for d in dead],
        )  # fmt: skip

    def supersede(self, run_id: str, later: list[tuple[bytes, int]], now: str) -> int:
        """For each (key, item index) of a later element just written, mark the retryable
        pending dead letters of that key before it superseded, inside the transaction that
        records the batch, after its own dead letters (those of a batch held back with it
        may be among them); how many. By key: a run's thousands throttled out cost
        nothing to look through."""
        cursor = self._db.executemany(
            "UPDATE dead_letters INDEXED BY dead_letters_by_key"  # SQLite would read all before
            f" SET status = '{SUPERSEDED}', superseded_by = ?,"
            f" updated_at = ? WHERE {_RETRYABLE} AND item_key = ? AND item_index < ?",
            [(index, now, run_id, key, index) for key, index in later],
        )
        return max(cursor.rowcount, 0)

    def retryable_keys(self, run_id: str, key_of: KeyOf) -> set[bytes]:
        """The keys of the retryable pending ones: those a later element supersedes once
        written. `key_of` works out the key of one recorded before keys were (before
        migration 0009) from its item as sent; it is kept."""
        with self._transaction():
            self._key_unkeyed(run_id, key_of)
        rows = self._guarded(
            lambda: self._db.execute(
                f"SELECT DISTINCT item_key FROM dead_letters WHERE {_RETRYABLE}"
                " AND item_key IS NOT NULL",
                (run_id,),
            ).fetchall()
        )
        return {key for (key,) in rows}

    def _key_unkeyed(self, run_id: str, key_of: KeyOf) -> None:
        """Work out and record, inside a transaction, the keys of the retryable pending
        ones recorded without (before migration 0009), from their items as sent."""
        rows = self._guarded(
            lambda: self._db.execute(
                f"SELECT id, item FROM dead_letters WHERE {_RETRYABLE} AND item_key IS NULL",
                (run_id,),
            ).fetchall()
        )
        keyed = [(key, id_) for id_, item in rows if (key := key_of(json.loads(item))) is not None]
        self._db.executemany("UPDATE dead_letters SET item_key = ? WHERE id = ?", keyed)

    def supersede_repeats(self, run_id: str, key_of: KeyOf, now: str) -> int:
        """Mark superseded each retryable pending one that a later retryable pending one
        with the same key follows (by the last of them), in one transaction; how many.
        For `retry-failed`: the later of two with one key wins, even if it fails again.
        `key_of` as for `retryable_keys`.

        Rows marked along the way change no other row's outcome: the last of a key is
        never marked, so it is always there to be found."""
        later = (
            "FROM dead_letters l WHERE l.run_id = dead_letters.run_id AND l.status = 'pending'"
            " AND l.retryable = 1 AND l.item_key = dead_letters.item_key"
        )
        with self._transaction():
            self._key_unkeyed(run_id, key_of)
            cursor = self._db.execute(
                f"UPDATE dead_letters SET status = '{SUPERSEDED}',"
                f" superseded_by = (SELECT max(l.item_index) {later}), updated_at = ?"
                f" WHERE {_RETRYABLE} AND item_key IS NOT NULL"
                f" AND EXISTS (SELECT 1 {later} AND l.item_index > dead_letters.item_index)",
                (now, run_id),
            )
        return max(cursor.rowcount, 0)

    def page(
        self,
        run_id: str,
        *,
        limit: int | None,
        after: tuple[int, int],
        codes: Collection[str] | None,
        retryable: bool | None,
    ) -> list[DeadLetter]:
        """At most `limit` pending ones after (item index, id) `after`, in file order."""
        where, args = "", []
        if codes is not None:
            where += f" AND error_code IN ({', '.join('?' * len(codes))})"
            args += list(codes)
        if retryable is not None:
            where += " AND retryable = ?"
            args.append(int(retryable))
        rows = self._guarded(
            lambda: self._db.execute(
                "SELECT item_index, item, error_code, error_message, attempts, retryable, id"
                " FROM dead_letters WHERE run_id = ? AND status = 'pending'"
                " AND (item_index, id) > (?, ?)" + where + " ORDER BY item_index, id LIMIT ?",
                (run_id, *after, *args, -1 if limit is None else limit),
            ).fetchall()
        )
        return [
            DeadLetter(i, json.loads(item), code, msg, att, bool(r), id_)
            for i, item, code, msg, att, r, id_ in rows
        ]

    def pages(
        self, run_id: str, *, size: int, codes: Collection[str] | None, retryable: bool | None
    ) -> Iterator[list[DeadLetter]]:
        """Every pending one, `size` at a time, in file order: never all in memory."""
        after = (-1, -1)
        while page := self.page(run_id, limit=size, after=after, codes=codes, retryable=retryable):
            yield page
            last = page[-1]
            after = (last.index, last.id or 0)

    def counts(self, run_id: str) -> dict[str, Counter[str]]:
        """Pending ones by error code, apart for the retryable and the others."""
        rows = self._guarded(
            lambda: self._db.execute(
                "SELECT retryable, error_code, count(*) FROM dead_letters"
                " WHERE run_id = ? AND status = 'pending' GROUP BY retryable, error_code",
                (run_id,),
            ).fetchall()
        )
        counts: dict[str, Counter[str]] = {"retryable": Counter(), "not retryable": Counter()}
        for retryable, code, n in rows:
            counts["retryable" if retryable else "not retryable"][code] = n
        return counts

    def settle(self, written: list[Any], failed: list[Any], now: str) -> None:
        """A retry's outcome, inside the transaction that counts its items in the run."""
        self._db.executemany(
            "UPDATE dead_letters SET status = 'written', attempts = ?, updated_at = ? WHERE id = ?",
            [(d.attempts, now, d.id) for d in written],
        )
        self._db.executemany(
            "UPDATE dead_letters SET error_code = ?, error_message = ?, attempts = ?,"
            " retryable = ?, updated_at = ? WHERE id = ?",
            [(d.code, d.message, d.attempts, int(d.retryable), now, d.id) for d in failed],
        )

    def remove(self, run_id: str) -> int:
        """Delete the run's dead letters (inside `forget`'s transaction); how many of them
        were still pending."""
        (pending,) = self._db.execute(
            "SELECT count(*) FROM dead_letters WHERE run_id = ? AND status = 'pending'",
            (run_id,),
        ).fetchone()
        # By the index on (run_id, status, item_index): no scan of other runs' rows.
        self._db.execute("DELETE FROM dead_letters WHERE run_id = ?", (run_id,))
        return int(pending)
