"""The bytes given to verify a run started on a stream, checked against the ones it imported.

A stream cannot be read again, so `verify --from` is handed the bytes anew, and nothing but
their hash says they are the run's: the run recorded the size and SHA-256 of every byte of
its stream at its end (`Location.finish`). The bytes given are hashed the one time they pass
(`sources._Rewindable`, no second read, no copy kept), so the check can only be made once
they are all read: before the table is compared, and before anything is recorded, since
counts from other bytes would say nothing about the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import Arg, FileChangedError, InputError, Text
from .hints import command
from .ledger import Run
from .reader import Dump
from .sources import Location


def given_again(run: Run, source: str | Path) -> Location:
    """Where the bytes are given again, read once from its start as a stream, whatever it
    is. A path that cannot be opened (none there, a folder) is refused here, in one line:
    the reader would only meet it as an unexpected OSError."""
    where = Location(source)
    if where.kind == "file":  # not a FIFO or a device: opening it reads nothing yet
        assert where.path is not None
        try:
            with open(where.path, "rb"):
                pass
        except OSError as e:
            raise InputError(
                f"{where}: cannot read run {run.id}'s stream again from it ({e.strerror})",
                "give the path of a file holding the bytes the run read, or - for stdin",
            ) from None
    where.kind = "stream"
    return where


@contextmanager
def as_imported(run: Run, dump: Dump) -> Iterator[None]:
    """Read `dump` inside this; for a stream, refuse it at the end if its bytes are not
    the ones `run` imported. Bytes that fail to parse are refused the same way when they
    are not the run's: the parse error would only say how they differ."""
    if dump.location.kind != "stream" or not run.file_hash:  # no hash recorded: no check
        yield
        return
    try:
        yield
    except InputError as e:
        if isinstance(e, FileChangedError):
            raise
        try:
            got = dump.location.finish()
        except Exception:  # the stream cannot be read to its end: what it broke on stands
            raise e from None
        if got != (run.file_size, run.file_hash):
            raise _not_the_same(run, dump, got) from e
        raise
    got = dump.location.finish()  # what the reader left (a trailer, a newline) hashed too
    if got != (run.file_size, run.file_hash):
        raise _not_the_same(run, dump, got)


def _not_the_same(run: Run, dump: Dump, got: tuple[int, str]) -> FileChangedError:
    size, digest = got
    return FileChangedError(
        f"{dump.location}: these are not the bytes run {run.id} imported from its stream "
        f"({run.file_size:,} bytes, {run.file_hash[:19]}…; given {size:,} bytes, "
        f"{digest[:19]}…): nothing verified",
        Text(
            "give it the stream the run read, e.g. cat DUMP | ",
            command(run, "verify", run.id, args=(Arg("source", "-"),)),
        ),
    )
