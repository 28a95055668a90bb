"""BatchWriteItem request files, as `aws dynamodb batch-write-item --request-items
file://...` takes them and AWS's developer guide ships its sample data
(`ProductCatalog.json`): an object of table names, each a list of write requests in
DynamoDB JSON, `{"PutRequest": {"Item": {...}}}` or `{"DeleteRequest": {"Key": {...}}}`.

Each table of the file is a run of its own (`requestruns`), reading the array under its
name: the shape `table:NAME`, one key (a table name may hold a dot, which an items path
would split at). The items are the entries themselves, made ready by
`checks.PrepareRequest`, so a delete travels with its key through batching and the
writer as a put does.
"""

from __future__ import annotations

import re

from .errors import InputError
from .jsontext import BOM, Scanner, data_start, next_key, skip_value
from .sources import Location, Source

FORMAT = "request-items"
_HEAD = 1 << 16
# `{"Table": [{"PutRequest":` (or DeleteRequest) at the very start of the file.
_LOOKS = re.compile(
    rb'\s*\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\[\s*\{\s*"(?:PutRequest|DeleteRequest)"\s*:'
)


def looks_like_requests(head: bytes) -> bool:
    """Whether a file beginning with `head` is a request file: its first table's first
    entry is a write request."""
    return bool(_LOOKS.match(head[3:] if head.startswith(BOM) else head))


def is_request_file(location: Location) -> bool:
    """A file (not a stream, which cannot be read twice) that is a request file."""
    if location.kind != "file":
        return False
    try:
        with Source(location) as f:
            return looks_like_requests(f.read(_HEAD))
    except OSError:
        return False  # reading it for the import says what is wrong


def tables_in(location: Location) -> list[str]:
    """The table names of a request file, in file order; each holds an array."""
    names: list[str] = []
    with Source(location) as f:
        t = Scanner(f, data_start(f), location.path or location)  # type: ignore[arg-type]
        t.expect("{", "'{'")
        first = True
        while (key := next_key(t, first)) is not None:
            first = False
            if t.peek() != "[":
                raise t.error(
                    f"the value of {key!r} is not a list of write requests, as each table's "
                    "of a BatchWriteItem request file is"
                )
            skip_value(t)
            names.append(key)
    if not names:
        raise InputError(f"{location}: the request file names no table", "check the file")
    return names
