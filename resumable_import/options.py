"""What a run is asked to do, as values: how it writes (`WriteSettings`), what it imports
and from where (`ImportOptions`), what a resume changes (`ResumeOptions`), and what the
ledger keeps of them (`Recorded`). Each default is written here once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .keys import KeySpec
    from .transform import TransformSpec

# Requests in flight. 16 hid 10 ms of latency while an item cost 45 µs of CPU; at 31 µs
# the writer waited on answers there (24,000 items/s, against 35,000 with 32 and 48).
DEFAULT_CONCURRENCY = 32


MAX_WORKERS = 64


def _check(
    batch_size: int | None, concurrency: int | None, max_wcu: float | None,
    max_outage: float | None, workers: int | None = None,
) -> None:  # fmt: skip
    """Refuse settings DynamoDB or the writer cannot work with; None is "not given"."""
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise UsageError(
            f"workers must be between 1 and {MAX_WORKERS}, not {workers}", param="workers"
        )
    if batch_size is not None and not 1 <= batch_size <= 25:
        raise UsageError(
            f"batch_size must be between 1 and 25, not {batch_size}", param="batch_size"
        )
    if concurrency is not None and concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, not {concurrency}", param="concurrency")
    if max_wcu is not None and max_wcu <= 0:
        raise UsageError(f"max_wcu must be positive, not {max_wcu}", param="max_wcu")
    if max_outage is not None and max_outage < 0:
        raise UsageError(
            f"max_outage must be 0 or more seconds, not {max_outage}", param="max_outage"
        )


@dataclass(frozen=True)
class SettingsChange:
    """What `resume` changes of a run's write settings; None keeps the one recorded.

    Apart from `WriteSettings` because "not given" must differ from every default: a
    resume that names no setting leaves the run as it was started."""

    batch_size: int | None = None
    concurrency: int | None = None
    max_wcu: float | None = None
    max_outage: float | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        _check(self.batch_size, self.concurrency, self.max_wcu, self.max_outage, self.workers)

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class WriteSettings:
    """How a run writes, not what: the only options `resume` may change."""

    batch_size: int = 25
    concurrency: int = DEFAULT_CONCURRENCY
    max_wcu: float | None = None  # None: as fast as the table takes
    max_outage: float | None = None  # seconds of silence to wait out; None: RetryPolicy's
    # Writer processes (`workers.py`); None: as many as the cores and the endpoint call for
    # (`workers.default_workers`), settled when the run is created.
    workers: int | None = None

    def __post_init__(self) -> None:
        _check(self.batch_size, self.concurrency, self.max_wcu, self.max_outage, self.workers)

    def changed_by(self, change: SettingsChange) -> WriteSettings:
        return replace(self, **change.given())

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class ImportOptions:
    """What to import and how: everything of `start` but the file and the table.

    `new` starts afresh even where an unfinished run of the same file into the same table
    (or, in a folder, a finished one) would otherwise be resumed or skipped. `transform`:
    FILE.py:FUNCTION, MODULE:FUNCTION or the function itself (`transform.py`)."""

    format: str = "auto"
    items_path: str | None = None
    create_keys: tuple[KeySpec, ...] | None = None  # create the table, keyed so, if missing
    # Create a missing table even without create_keys: as a dynamodump backup's
    # schema.json describes it (create_keys alone also creates, as it always has).
    create_table: bool = False
    endpoint: str | None = None
    region: str | None = None
    allow_remote: bool = False
    transform: TransformSpec | None = None
    settings: WriteSettings = WriteSettings()
    new: bool = False
    profile: str | None = None  # the AWS profile for credentials and region; not recorded


@dataclass(frozen=True)
class ResumeOptions:
    """What `resume` may be told: where to read a run started on a stream again, the
    transform when the run cannot load it itself (a function defined in a script),
    settings that replace the run's own for the rest of it, and the AWS profile to take
    credentials from. The profile is not recorded with a run: it names credentials, which
    belong to whoever resumes, while the endpoint and region the run writes to are
    recorded and never switch (`endpoint` and `region`, when given, are checked against
    them, so that a shell alias with shared flags works, and a wrong one is refused)."""

    source: str | Path | None = None
    transform: TransformSpec | None = None
    settings: SettingsChange = SettingsChange()
    profile: str | None = None  # credentials: the resumer's own, never recorded
    endpoint: str | None = None  # if given, must be the run's own: a resume never switches
    region: str | None = None  # likewise


@dataclass(frozen=True)
class Recorded:
    """What a run keeps of its options in the ledger, beside the columns of its own (file,
    table, endpoint, region, format): its write settings, whether its endpoint may be
    remote, its table's key, its transform, and the settings a resume changed.

    Stored as the JSON object ledgers have always held, in the same order, so that a
    ledger written before these were values reads the same, and `status --json` shows it
    as it did."""

    settings: WriteSettings = WriteSettings()
    allow_remote: bool = False
    keys: tuple[str, ...] = ()  # NAME:TYPE, partition key first
    transform: dict[str, Any] | None = None  # transform.Transform.record(): spec, sha256
    changes: tuple[dict[str, Any], ...] = ()  # {"at": when, name: [from, to]}, oldest first

    def record(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {
            "batch_size": s.batch_size, "concurrency": s.concurrency, "max_wcu": s.max_wcu,
            "allow_remote": self.allow_remote, "max_outage": s.max_outage,
            "keys": list(self.keys),
        }  # fmt: skip
        if s.workers is not None:  # only what an older rimport would not have written
            out["workers"] = s.workers
        if self.transform is not None:
            out["transform"] = self.transform
        if self.changes:
            out["changes"] = list(self.changes)
        return out

    @classmethod
    def read(cls, options: dict[str, Any]) -> Recorded:
        """Read back what `record` wrote; what an older rimport did not record takes its
        default."""
        given = {k: options[k] for k in WriteSettings.names() if options.get(k) is not None}
        return cls(
            WriteSettings(**given),
            bool(options.get("allow_remote", False)),
            tuple(options.get("keys") or ()),
            options.get("transform"),
            tuple(options.get("changes", ())),
        )
