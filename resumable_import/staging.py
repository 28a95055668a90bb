"""Stage a run's items in S3 as DynamoDB JSON lines, for DynamoDB's own bulk engines.

The items come from the same batches a run writes (`pipeline.ready_batches`: read,
checked, transformed), but instead of BatchWriteItem they go to gzip objects under
`PREFIX/data/`, one `{"Item": {...}}` line each. DynamoDB reads the objects in any order
and in parallel, so the later of two elements with one key can only win if no two objects
hold that key: each key goes to the object its hash names (not in key order: sorted keys
make a rolling hot partition), and only its last value is written.

Memory stays bounded whatever the dump's size: a first pass spills each item to its
object's scratch file (0600, in a private temporary folder); then each object is made
from its scratch file alone, knowing only the position of each key's last line. Objects
are made and uploaded one at a time, and each is recorded in the ledger once S3 has it,
so a killed staging resumes at the first object not uploaded: the dump is read again
(the same hash puts each key in the same object), and only the missing objects are made.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .errors import Arg, InputError, Text, UsageError
from .keys import canonical
from .pipeline import Ready
from .stagingdb import StagedObject

MAX_OBJECTS = 50_000  # StartBulkPutItems reads at most this many objects
DUMP_BYTES_PER_OBJECT = 256 << 20  # of the dump as stored: objects of some 20-60 MB
_MULTIPART = 8 << 20  # objects larger than this go up in parts of this size, 4 at a time
_LEN = 4  # bytes of each length in a scratch record


@dataclass
class Read:
    """What the first pass found: items read, the end of the dump, and what was refused."""

    items: int = 0  # elements read (the run's checkpoint once staged)
    end: int = 0  # byte offset just past the last
    rejected: list[tuple[int, bytes, str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # lines spilled to each object


def object_count(dump_size: int | None, given: int | None = None) -> int:
    """How many objects to spread the keys over: `given`, else one per
    DUMP_BYTES_PER_OBJECT of the dump, at most MAX_OBJECTS."""
    if given is not None:
        if not 1 <= given <= MAX_OBJECTS:
            raise UsageError(
                f"{given} objects: staging takes 1 to {MAX_OBJECTS:,}", param="via_objects"
            )
        return given
    return max(1, min(MAX_OBJECTS, -(-(dump_size or 0) // DUMP_BYTES_PER_OBJECT)))


def object_of(key: bytes, objects: int) -> int:
    """The object a canonical key goes to, the same in every process."""
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") % objects


def data_prefix(prefix: str) -> str:
    return f"{prefix}data/"


COMPRESSIONS = {"gzip": ".json.gz", "zstd": ".json.zst"}  # and each object's suffix


def object_key(prefix: str, number: int, objects: int, compression: str = "gzip") -> str:
    return f"{data_prefix(prefix)}part-{number:05d}-of-{objects:05d}{COMPRESSIONS[compression]}"


def split_via(url: str) -> tuple[str, str]:
    """(bucket, prefix ending in '/' or empty) of `--via`'s s3://BUCKET/PREFIX/."""
    from .s3 import split

    if not url.startswith("s3://"):
        raise UsageError(
            f"{url}: staging needs an S3 prefix",
            Text("give ", Arg("via", "s3://BUCKET/PREFIX/")),
        )
    bucket, prefix = split(url)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


@contextlib.contextmanager
def scratch(run_id: str | None = None) -> Iterator[Path]:
    """A private temporary folder for the scratch files, removed afterwards. A run's own
    (`run_id`) first removes what a killed process of the same run left: the caller holds
    the run's lock, so no living process uses it."""
    prefix = f"rimport-stage-{run_id or 'plan'}-"
    if run_id:
        for stale in Path(tempfile.gettempdir()).glob(prefix + "*"):
            if stale.is_dir() and stale.stat().st_uid == os.getuid():
                shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # 0700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _private(path: Path, mode: str) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, mode, buffering=1 << 16)  # type: ignore[return-value]


def spill_path(folder: Path, number: int) -> Path:
    return folder / f"{number:05d}.spill"


def spill(
    source: Iterator[Ready],
    objects: int,
    folder: Path,
    wanted: set[int],
    *,
    requests: bool = False,
    progress: Callable[[Ready, Read], None] | None = None,
) -> Read:
    """The first pass: each item, with its key, to the scratch file of its object (only
    those in `wanted`: the objects not yet uploaded). `requests`: the items are a request
    file's entries; their puts are staged, and a delete is refused (bulk put only puts)."""
    read = Read(lines=[0] * objects)
    files = {n: _private(spill_path(folder, n), "wb") for n in wanted}
    try:
        for batch in source:
            for item, key in zip(batch.items, batch.keys, strict=True):
                if requests:
                    item = _put_of(item, batch)
                k = canonical(key)
                number = object_of(k, objects)
                read.lines[number] += 1
                if out := files.get(number):
                    out.write(len(k).to_bytes(_LEN, "big") + k)
                    out.write(len(item).to_bytes(_LEN, "big") + item)
            read.rejected += batch.rejected
            read.items, read.end = batch.last + 1, batch.end
            if progress:
                progress(batch, read)
    finally:
        for out in files.values():
            out.close()
    return read


def _put_of(entry: bytes, batch: Ready) -> bytes:
    if entry.startswith(b'{"DeleteRequest"'):
        raise UsageError(
            f"the dump deletes items (a DeleteRequest by item {batch.last}): staged items "
            "can only be put",
            Text("leave out ", Arg("via"), " to import it with BatchWriteItem"),
        )
    return orjson.dumps(orjson.loads(entry)["PutRequest"]["Item"])


def _records(path: Path) -> Iterator[tuple[bytes, bytes]]:
    with path.open("rb", buffering=1 << 16) as f:
        while head := f.read(_LEN):
            key = f.read(int.from_bytes(head, "big"))
            item = f.read(int.from_bytes(f.read(_LEN), "big"))
            yield key, item


def build(
    folder: Path, number: int, *, compress: bool = True, compression: str = "gzip"
) -> tuple[Path, int, int]:
    """Make object `number` from its scratch file: each key's last line only, in the
    order of the dump, gzip or zstd. (path, items, bytes); bytes as stored (uncompressed
    if not `compress`, for a dry run, which keeps no object)."""
    source = spill_path(folder, number)
    last: dict[bytes, int] = {}
    for position, (key, _) in enumerate(_records(source)):
        last[key] = position
    keep = set(last.values())
    del last
    target = folder / f"{number:05d}.json.gz"
    size = 0
    with _private(target, "wb") as raw:
        out: Any = raw
        if compress and compression == "zstd":
            import zstandard

            out = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
        elif compress:
            out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)
        for position, (_, item) in enumerate(_records(source)):
            if position in keep:
                line = b'{"Item":' + item + b"}\n"
                out.write(line)
                size += len(line)
        if compress:
            out.close()  # the gzip or zstd trailer; `raw` stays open
            size = raw.tell()
    source.unlink()
    return target, len(keep), size


def upload(client: Any, path: Path, bucket: str, key: str) -> str:
    """Put one object (in parts when large; private: no ACL, the bucket's own default
    encryption); its ETag."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    config = TransferConfig(multipart_threshold=_MULTIPART, multipart_chunksize=_MULTIPART,
                            max_concurrency=4)  # fmt: skip
    try:
        client.upload_file(str(path), bucket, key, Config=config)
        return str(client.head_object(Bucket=bucket, Key=key)["ETag"])
    except (BotoCoreError, ClientError) as e:
        from .s3 import failure

        raise failure(f"s3://{bucket}/{key}", e) from None


def foreign_objects(client: Any, bucket: str, prefix: str, ours: set[str]) -> list[str]:
    """Keys under the prefix that this run did not put there (at most a few)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
    except (BotoCoreError, ClientError) as e:
        from .s3 import failure

        raise failure(f"s3://{bucket}/{prefix}", e) from None
    return [o["Key"] for o in found.get("Contents", []) if o["Key"] not in ours][:3]


def refuse_foreign(client: Any, bucket: str, prefix: str, ours: list[StagedObject]) -> None:
    """A prefix that holds objects this run did not stage is refused: DynamoDB would read
    them too."""
    others = foreign_objects(client, bucket, prefix, {o.key for o in ours})
    if others:
        raise InputError(
            f"s3://{bucket}/{prefix} already holds objects ({others[0]}, ...): DynamoDB "
            "would read them with the staged ones",
            Text("stage to an empty prefix: ", Arg("via", f"s3://{bucket}/{prefix}NEW/")),
        )
