"""What the ledger holds, as values: a run (its file, table, checkpoint, state and the
options it records) and a dead letter. `ledger.py` reads and writes them; everyone else
reads them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .endpoint import redacted
from .options import Recorded, WriteSettings

RUNNING = "running"
INTERRUPTED = "interrupted"
COMPLETED = "completed"
COMPLETED_WITH_FAILURES = "completed_with_failures"
FAILED = "failed"

# A dead letter's status besides 'pending' (still to be written: the only ones that are
# the run's failures) and 'written' (by `retry-failed`): made moot by a later element of
# the run with the same key, which was written (migration 0009).
SUPERSEDED = "superseded"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


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
    options: dict[str, Any]  # as stored, for `status --json`; read as values by `recorded`
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
    table_identity: str | None  # DynamoDB's TableId, or ARN@creation time; None: not recorded
    dead_letters: int = 0  # pending ones
    ledger: str | None = None  # the ledger it is recorded in, for commands that name it
    active_seconds: float = 0.0  # time its ended stints ran
    running_since: str | None = None  # when its current stint began; None while stopped
    source: str | None = None  # 'stream' or 's3'; None for a local file
    checkpoint_hash: str | None = None  # a stream's: hash of its text before byte_offset
    items_deleted: int = 0  # keys deleted: a request file's DeleteRequests (apart from puts)
    verified: Verification | None = None  # what `verify` found the last time; None: never
    # Dead letters a later element with the same key made moot (written after them): no
    # failures, and never written again (`ledger.SUPERSEDED`).
    superseded_dead_letters: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        del d["block_hashes"], d["table_identity"], d["ledger"]  # for resume's checks only
        del d["active_seconds"], d["running_since"]  # in elapsed_seconds
        del d["checkpoint_hash"]
        if not self.shape.startswith("table:"):  # only a request file's run deletes: the
            del d["items_deleted"]  # JSON of every other run stays as it was
        if not self.superseded_dead_letters:  # the JSON of every other run stays as it was
            del d["superseded_dead_letters"]
        if self.verified is None:  # likewise: the JSON of a run never verified is unchanged
            del d["verified"]
        else:
            d["verified"] = asdict(self.verified)
        d["endpoint"] = redacted(d["endpoint"])  # recorded with a password by an old rimport
        d["elapsed_seconds"] = self.elapsed
        rate = self.rate
        d["items_per_second"] = None if rate is None else round(rate, 1)
        return {"run_id": d.pop("id"), **d}

    @property
    def recorded(self) -> Recorded:
        """Its options as values, read from the JSON each time: `options` stays the one
        record, so a `resume` that changes settings cannot leave two that disagree."""
        return Recorded.read(self.options)

    @property
    def settings(self) -> WriteSettings:
        """What it writes with: as started, or as the last `resume` changed it."""
        return self.recorded.settings

    @property
    def elapsed(self) -> float:
        """Seconds it has run: its ended stints, and the current one (or the last one of a
        process that died) up to its last checkpoint. Pauses between stints do not count.
        For a run recorded before stints were, the wall time from its start to its end."""
        try:
            if self.running_since is not None:
                stint = _parse_time(self.updated_at) - _parse_time(self.running_since)
                return self.active_seconds + max(0.0, stint.total_seconds())
            if self.active_seconds:
                return self.active_seconds
            end = _parse_time(self.finished_at or self.updated_at)
            return max(0.0, (end - _parse_time(self.started_at)).total_seconds())
        except ValueError:
            return 0.0

    @property
    def rate(self) -> float | None:
        """Items read per second of `elapsed`; None before a second has passed."""
        elapsed = self.elapsed  # from timestamps: worked out once
        return self.items_committed / elapsed if elapsed >= 1 else None


@dataclass(frozen=True)
class Verification:
    """What `verify` found when it read a run's table back, as the ledger keeps it: when
    (`at`, stamped by the ledger), how (`method`: "get" by key, "scan"), the counts
    (`extra` None unless counted), the read units and how long it took; a sample's share,
    and what a repair wrote."""

    method: str
    items: int
    identical: int
    missing: int
    different: int
    extra: int | None
    expected_missing: int
    read_units: float
    read_units_estimated: bool
    seconds: float
    at: str = ""
    sample: float | None = None  # the share of the keys checked; None: all of them
    repaired: int | None = None  # items written again by a repair; None: none asked for
    unrepaired: int | None = None  # of those, still not as the dump has them when checked again


@dataclass
class DeadLetter:
    index: int
    item: dict[str, Any]
    code: str
    message: str
    attempts: int
    retryable: bool
    id: int | None = field(default=None)
    # The item's primary key as `keys.canonical` writes it, for one that was sent: how a
    # later element with the same key finds it (`ledger.Ledger.commit`'s `superseded`).
    key: bytes | None = field(default=None)

    @property
    def refused_before_sending(self) -> bool:
        """Refused by rimport's own checks, never sent: its `item` is then the element of
        the dump as an attribute value (`items.kept`), not the item as DynamoDB JSON."""
        return self.attempts == 0
