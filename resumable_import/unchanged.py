"""The checks that a run goes on with what it started with: the same file (or object, or
stream), the same table, the same transform. Resuming on anything else would mix two
versions of the data in one table, with nothing to tell them apart afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import endpoint as endpoints
from .dynamo import TableInfo, describe_table, ensure_table
from .errors import Arg, FileChangedError, TableError, Text, UsageError
from .fingerprint import block_hashes, file_hash, fingerprint
from .hints import command, start_over
from .ledger import Ledger, Run
from .reader import Dump, Position, Shape, items_as
from .runlog import event
from .samestream import given_again
from .sources import Location
from .transform import Transform, TransformSpec, changed, load


def changed_while_read(run: Run) -> str | None:
    """Whether the file grew or shrank while the run read it: only the bytes it hashed at
    the start were read, so a change is reported, never silently absorbed or half read."""
    if run.source is not None:  # a stream has no size to compare; S3 GETs check the ETag
        return None
    try:
        size = Path(run.file).stat().st_size
    except OSError:
        return "the file was removed while it was read"
    if size == run.file_size:
        return None
    how = "grew" if size > run.file_size else "shrank"
    return (
        f"the file {how} from {run.file_size:,} to {size:,} bytes while it was read; "
        f"only its first {run.file_size:,} bytes were imported"
    )


def unchanged(run: Run) -> bool:
    """Whether the run's file still holds the bytes it had when the run read it."""
    if run.source == "s3":
        return _object_identity(run.file) == (run.file_size, run.file_hash)
    if run.source is not None:
        return False  # a stream cannot be read again to tell
    path = Path(run.file)
    if not path.is_file() or path.stat().st_size != run.file_size:
        return False
    if run.block_hashes:  # on both cores
        return block_hashes(path) == run.block_hashes
    return file_hash(path) == run.file_hash  # a run recorded before block hashes


def check_unchanged(book: Ledger, run: Run, dump: Dump) -> None:
    if unchanged(run):
        return
    current, blocks = fingerprint(dump.path)
    if run.prefix_hash and file_hash(dump.path, run.byte_offset) == run.prefix_hash:
        event(
            logging.INFO, run.id, "changed_after_checkpoint",
            f"{run.file} changed after byte {run.byte_offset} only; continuing",
            byte=run.byte_offset,
        )  # fmt: skip
        book.set_file(run.id, dump.size, current, blocks)
        return
    raise FileChangedError(
        f"{run.file} has changed since run {run.id} read it ({run.file_hash[:19]}… is now "
        f"{current[:19]}…)",
        Text(
            "resuming would mix two versions of the data; import the new file with ",
            start_over(run),
        ),
    )


def same_transform(run: Run, given: TransformSpec | None) -> Transform | None:
    """The transform to resume `run` with: the one it recorded, loaded again (or `given`),
    refused if its code changed, as resuming would transform the rest of the file
    differently from what is already in the table."""
    recorded = run.recorded.transform
    if recorded is None:
        if given is not None:
            raise UsageError(
                f"run {run.id} was started without a transform",
                Text(
                    "resume it without one, or import the file afresh through the transform with ",
                    start_over(run),
                    " and ",
                    Arg("transform"),
                ),
            )
        return None
    try:
        loaded = load(given if given is not None else recorded["spec"])
    except UsageError as e:
        e.message = f"run {run.id} cannot load its {e.message}"
        spec = str(recorded["spec"])
        if spec.startswith("__main__:") or "<" in spec:  # given to import_file as a function
            e.hint = "it was a function given to import_file: give it to resume_run as transform="
        e.hint = Text(e.hint or "", "; or start over with ", start_over(run))
        raise
    if why := changed(loaded, recorded):
        raise UsageError(
            f"run {run.id}: {why}; resuming would import the rest of the file differently "
            "from what is already in the table",
            Text(
                "put the transform back as it was and resume, or start over with ", start_over(run)
            ),
        )
    return loaded


def same_table(book: Ledger, run: Run, client: Any) -> TableInfo:
    """The run's table, refused if it is not the one the run wrote its checkpoint into.

    A table deleted and created again under the same name has lost every item written
    before the checkpoint; writing only what follows would end in a `completed` run with a
    table missing part of the file. A run that wrote nothing yet may take the new table.
    A missing table is not created here: the hint names the `start` that creates it.
    """
    info = describe_table(client, run.table)
    where = endpoints.redacted(run.endpoint)
    if info is None:
        raise TableError(
            f"table {run.table!r} at {where} no longer exists since run {run.id} "
            f"started: the {run.items_written:,} items it wrote before its checkpoint are gone",
            Text("import the whole file again with ", start_over(run)),
        )
    anew = run.table_identity not in (None, info.identity)
    if anew and (run.items_written or run.dead_letters):
        raise TableError(
            f"table {run.table!r} at {where} was deleted and created again since run "
            f"{run.id} wrote to it: the {run.items_written:,} items it wrote before its "
            "checkpoint are not in it",
            Text("import the whole file again with ", start_over(run)),
        )
    info = ensure_table(client, run.table, None, endpoints.parse(run.endpoint))
    if info.identity != run.table_identity:
        book.set_table_identity(run.id, info.identity)
    return info


def file_exists(run: Run) -> bool:
    return run.source is None and Path(run.file).is_file()


def identity_of(dump: Dump) -> tuple[str, list[str] | None]:
    """(file_hash, block hashes) recorded when a run starts. A stream is hashed as it
    passes, and its hash recorded at its end; an S3 object goes by its ETag and version."""
    where = dump.location
    if where.kind == "file":
        assert where.path is not None
        return fingerprint(where.path, dump.size)
    if where.kind == "s3":
        return where.identity() or "", None
    return "", None


def _object_identity(url: str) -> tuple[int, str]:
    where = Location(url)
    return where.size() or 0, where.identity() or ""


def check_same_object(run: Run, dump: Dump) -> None:
    """An S3 object replaced since the run read it (another ETag or version) is refused."""
    now = (dump.size or 0, dump.location.identity() or "")
    if now != (run.file_size, run.file_hash):
        raise FileChangedError(
            f"{run.file} has changed since run {run.id} read it ({run.file_hash} is now {now[1]})",
            Text(
                "resuming would mix two versions of the data; import the new object with ",
                start_over(run),
            ),
        )


def stream_again(run: Run, source: str | Path | None) -> Dump:
    """A run started on a stream, given the same bytes again: read up to its checkpoint
    (without writing), checked against the hash recorded there."""
    if source is None:
        raise UsageError(
            f"run {run.id} read its dump from a stream ({run.file}), which cannot be read again",
            Text(
                "give it the same bytes again, e.g. cat DUMP | ",
                command(run, "resume", run.id, args=(Arg("source", "-"),)),
            ),
        )
    where = given_again(run, source)  # read once, from its start, whatever it is
    dump = Dump(where, Shape.parse(run.shape), items_as=items_as(run.format), checkpoints=True)
    if run.byte_offset:
        dump.skip_to(Position(run.items_committed, run.byte_offset), run.checkpoint_hash, run.id)
    return dump
