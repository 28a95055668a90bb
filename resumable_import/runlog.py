"""A run's event log: JSON lines in `rimport.log` beside the ledger, one event a line.

Fields hold counts, codes, offsets and names, never an item's values, and every URL is
redacted: the log is for searching and shipping, the ledger for the data.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from . import endpoint as endpoints
from .errors import Arg, Text
from .ledger import Ledger, private_file

log = logging.getLogger("rimport")

Notice = Callable[[str], None]
"""Told a line worth showing the user while a run goes on (the endpoint stopped answering)."""
LOG_MAX_BYTES = 10 << 20  # rimport.log is rotated at this size,
LOG_BACKUPS = 3  # keeping this many old ones (rimport.log.1 ...)


def outage_notice(run_id: str, notice: Notice | None) -> Callable[[float | None, str], None]:
    """The writer's word that the endpoint stopped answering (or answers again), as a line
    for the log and for whoever watches the run."""

    def hook(since: float | None, cause: str) -> None:
        if since is None:
            text = "the endpoint answers again"
            event(logging.WARNING, run_id, "outage_over", text)
        else:
            began = datetime.now() - timedelta(seconds=time.monotonic() - since)
            text = Text(
                f"waiting for the endpoint since {began:%H:%M:%S} ({cause}); "
                "the run stops, resumably, once ",
                Arg("max_outage"),
                " has passed",
            )
            event(logging.WARNING, run_id, "outage", text, since=f"{began:%H:%M:%S}",
                   cause=endpoints.redacted(cause))  # fmt: skip
        if notice:
            notice(f"run {run_id}: {text}")

    return hook


def log_retry(
    run_id: str, count: Callable[[], None] | None = None
) -> Callable[[str, int, float], None]:
    def hook(code: str, attempt: int, delay: float) -> None:
        event(
            logging.INFO, run_id, "retry",
            f"retry after {code} (attempt {attempt}), waiting {delay:.2f}s",
            code=code, attempt=attempt, delay=round(delay, 3),
        )  # fmt: skip
        if count:
            count()

    return hook


def event(level: int, run_id: str, event: str, message: str, **fields: Any) -> None:
    """One event of a run for the log: a stable name, and fields to search it by.

    Fields hold counts, codes, offsets and names, never an item's values: a dead letter's
    message (which DynamoDB may write from the item) stays in the ledger."""
    if log.isEnabledFor(level):
        log.log(level, f"run {run_id}: {message}",
                extra={"run": run_id, "event": event, "fields": fields})  # fmt: skip


class _JsonLines(logging.Formatter):
    """One event a line, `{"time", "run", "event", ...fields, "level", "message"}`: easy
    to search (`jq 'select(.event == "retry")'`) and to ship. `message` is the same event
    in words, with any URL's user name and password masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "run": getattr(record, "run", None),
            "event": getattr(record, "event", "message"),
        }
        for name, value in getattr(record, "fields", {}).items():
            entry.setdefault(name, value)
        entry["level"] = record.levelname.lower()
        entry["message"] = endpoints.redacted(record.getMessage())
        return orjson.dumps(entry, default=str).decode()


class _PrivateLog(logging.handlers.RotatingFileHandler):
    """Rotated by size, and every file it opens (a new one after a rotation too) is the
    user's alone (0600): the log names files, tables and endpoints."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


@contextmanager
def log_to(book: Ledger) -> Iterator[None]:
    """Append run events to `$RIMPORT_LOG`, else `rimport.log` beside the ledger, while a
    run works, as JSON lines, rotated at LOG_MAX_BYTES (LOG_BACKUPS old files kept)."""
    path = Path(os.environ.get("RIMPORT_LOG") or book.path.with_name("rimport.log"))
    private_file(path, create=False)  # an older log made readable by others; new ones: 0600
    handler = _PrivateLog(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(_JsonLines())
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
