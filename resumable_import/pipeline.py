"""Batches made ready to send, read in this process or in a second one.

Reading, converting and serializing items costs about 25 µs of CPU per item, and signing,
sending and committing about 20 (measured apart). With cores to spare, a child process
does the first part (`python -c "...serve()"`, a fresh interpreter that inherits no ledger
lock and no socket) and streams the batches to the run through a pipe, so the two run side
by side and the ceiling moves from one core's ~21,000 items/s towards the reader's. Crossing
the pipe costs 4 to 12 µs per item more in all, so on two cores, where the endpoint or
other work wants the second one too, one process did as well or better (benchmark, 10 ms
of latency: 19,000-20,900 items/s in one process, 16,800-19,400 with the child) and the
run reads in its own process; from three cores on it uses a child.

Crash safety does not move: the run still commits every checkpoint itself, in file order,
only after DynamoDB acknowledged the batch; the child holds no state worth keeping and
dies with its pipe.

A batch crosses the pipe with its items already serialized to JSON (the bytes that go in
the request body as they are) with the primary key of each, as `keys` works it out.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .attributes import kept
from .batching import Batch, batches
from .errors import InputError, RimportError
from .keys import Key, KeySpec
from .reader import Dump, Position, Shape

if TYPE_CHECKING:
    from .transform import Transform

_PIPE_BYTES = 4 << 20  # room for ~100 batches between the two processes
_F_SETPIPE_SZ = 1031  # Linux


@dataclass(slots=True)
class Ready:
    """A batch as the writer and the ledger take it."""

    last: int  # index of the last item it covers
    end: int  # byte offset just past that item: the checkpoint once it is written
    position: int  # how far into the file reading is, for progress (compressed bytes if so)
    items: list[bytes]  # each item's attribute map as JSON
    indexes: list[int]  # the item index of each
    keys: list[Key]  # the primary key of each
    units: list[int] | None  # write units of each, when a WCU cap needs them
    rejected: list[tuple[int, bytes, str, str]]  # refused before sending: index, item, why
    whole: bool = True  # False: ends partway through one element's items (`batching`)


def ready_batches(
    dump: Dump,
    start: Position | None,
    keys: tuple[KeySpec, ...],
    batch_size: int,
    *,
    units: bool = False,
    reader_process: bool | None = None,
    transform: Transform | None = None,
) -> Generator[Ready, None, None]:
    """The dump's batches from `start` on, ready to send, each element through `transform`
    if one is given.

    `reader_process` None: a second process from three cores on, unless
    RIMPORT_READER_PROCESS (0 or 1) says otherwise. The reader process loads the transform
    again from its spec.
    """
    if reader_process is None:
        setting = os.environ.get("RIMPORT_READER_PROCESS")
        reader_process = setting == "1" if setting in ("0", "1") else (os.cpu_count() or 1) >= 3
    if transform is not None and not transform.reloadable:
        reader_process = False  # the reader process could not load it
    if dump.location.kind != "file":  # a stream is read once, here; S3 too, for simplicity
        reader_process = False
    if not reader_process:
        for batch in batches(
            dump.items(start), keys, batch_size, items_as=dump.items_as, units=units,
            transform=transform,
        ):  # fmt: skip
            yield _ready(batch, dump, units)
        return
    spec = {
        "path": str(dump.path), "size": dump.size, "shape": str(dump.shape),
        "items_as": dump.items_as,
        "start": [start.index, start.offset] if start else None,
        "keys": [[k.name, k.type] for k in keys], "batch_size": batch_size, "units": units,
        "transform": transform.spec if transform else None,
        "sys_path": sys.path if transform else None,  # where the transform's module was found
    }  # fmt: skip
    yield from _from_child(spec)


def _ready(batch: Batch, dump: Dump, units: bool) -> Ready:
    # A refused item is kept as the standard library writes it: its strings may be what
    # was refused, and json escapes what orjson cannot encode. It is rare; speed is moot.
    return Ready(
        batch.last, batch.end, dump.file_position(batch.end), batch.items, batch.indexes,
        batch.keys, batch.units if units else None,
        [(r.index, (r.kept or kept(r.value, r.error)).encode(), r.error.code, r.error.message)
         for r in batch.rejected], batch.whole,
    )  # fmt: skip


def _from_child(spec: dict[str, Any]) -> Iterator[Ready]:
    # Its stderr goes to a file, not a pipe: a transform that prints on every item would
    # fill a pipe no one reads until the end, and stall the child.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the `finally` below)
    child = subprocess.Popen(
        [sys.executable, "-c", "from resumable_import.pipeline import serve; serve()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
    )  # fmt: skip
    assert child.stdin and child.stdout
    try:
        child.stdin.write(json.dumps(spec).encode())
        child.stdin.close()
        while True:
            try:
                kind, payload = pickle.load(child.stdout)
            except EOFError:
                child.wait()
                stderr.seek(0)
                why = stderr.read().decode(errors="replace").strip().splitlines()
                last = why[-1] if why else f"exit code {child.returncode}"
                raise RimportError(
                    f"the reader process stopped unexpectedly ({last})",
                    "run again with RIMPORT_READER_PROCESS=0 to read in one process, and report it",
                ) from None
            if kind == "batch":
                yield Ready(*payload)
            elif kind == "error":
                message, hint, offset, index = payload
                raise InputError(message, hint, offset=offset, index=index)
            else:
                return
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
        stderr.close()


def serve() -> None:
    """The reader process: a spec on stdin, pickled batches on stdout, until the end of the
    dump, an error in it, or a closed pipe (the run is gone)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the run's to handle: it
        signal.signal(signum, signal.SIG_IGN)  # stops this process once it has stopped
    gc.freeze()  # as in the run: no cyclic collector walking the items in flight
    gc.disable()
    spec = json.load(sys.stdin)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # what a transform prints must not land amid the batches
    with contextlib.suppress(OSError):  # a smaller pipe only means less slack
        fcntl.fcntl(out.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
    dump = Dump(spec["path"], Shape.parse(spec["shape"]), items_as=spec["items_as"])
    dump.size = spec["size"]  # the bytes the run hashed, should the file have grown since
    start = Position(*spec["start"]) if spec["start"] else None
    keys = tuple(KeySpec(name, kind) for name, kind in spec["keys"])
    transform = None
    if spec.get("transform"):
        from .transform import load

        sys.path[:0] = [p for p in spec["sys_path"] if p not in sys.path]
        transform = load(spec["transform"])
    source = ready_batches(dump, start, keys, spec["batch_size"], units=spec["units"],
                           reader_process=False, transform=transform)  # fmt: skip
    try:
        try:
            for n, r in enumerate(source, 1):
                if n % 1000 == 0:
                    gc.collect(1)
                record = tuple(getattr(r, name) for name in Ready.__slots__)
                pickle.dump(("batch", record), out, protocol=5)
                out.flush()
            pickle.dump(("end", None), out, protocol=5)
        except InputError as e:
            pickle.dump(("error", (e.message, e.hint, e.offset, e.index)), out, protocol=5)
        out.flush()
    except BrokenPipeError:
        os._exit(0)  # the run stopped reading: nothing left to do
