"""Where rimport's CPU goes per item: each step of the write path timed on its own, in this
process, on the items of a dump (target 1 prints it beside the whole run's figure).

    python bench/steps.py FILE [--items N]

Each step runs over the same items (or their batches) a few times and keeps its best time
in process CPU, with the cyclic collector paused as the run pauses it; a step's outputs
are dropped as they come, as in the run, since keeping them costs fresh memory the run
never touches. Steps measured together are told apart by subtraction (converting, then
preparing an item, less converting and serialising it), so a row may read a little off
on a noisy machine (one below zero shows as 0.0; the sum keeps it as measured); the sum
is what an import cannot avoid, and the run's own figure less that sum is the rest
(sockets, the selector, the writer's and the loop's bookkeeping, start-up, the hash).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import botocore.session
import orjson
from botocore.credentials import Credentials

from resumable_import import answers, http1
from resumable_import.attributes import to_item
from resumable_import.batching import batches
from resumable_import.checks import Prepare
from resumable_import.keys import KeySpec
from resumable_import.ledger import Ledger
from resumable_import.options import Recorded
from resumable_import.outcomes import classify
from resumable_import.progress import Figures
from resumable_import.reader import Dump
from resumable_import.signing import Signer

ROUNDS = 3
_ANSWER = b'{"UnprocessedItems":{}}'
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nx-amzn-RequestId: ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    b"x-amz-crc32: %d\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: %d\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n%s" % (zlib.crc32(_ANSWER), len(_ANSWER), _ANSWER)
)


def best(work: Callable[[], object]) -> float:
    """The least process CPU seconds of ROUNDS runs of `work`."""
    return min(best_once(work) for _ in range(ROUNDS))


def paired(first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    """`best` of two works that are told apart by subtraction, run in turns, so that both
    meet the same load on a shared machine."""
    a, b = [], []
    for _ in range(ROUNDS + 2):
        a.append(best_once(first))
        b.append(best_once(second))
    return min(a), min(b)


def best_once(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def drain(values: Iterable[Any]) -> None:
    for _ in values:
        pass


def steps(path: Path, items: int) -> list[tuple[str, float]]:
    """(step, CPU µs per item) for the first `items` items of the dump at `path`."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _steps(path, items)
    finally:
        if enabled:
            gc.enable()


def _steps(path: Path, items: int) -> list[tuple[str, float]]:
    dump = Dump.open(path)
    raw = list(itertools.islice(dump.items(), items))
    n = len(raw)
    keys = (KeySpec("pk", "S"),)
    prepare = Prepare(keys)
    values = [r.value for r in raw]
    spans = [r.end - (raw[i - 1].end if i else 0) for i, r in enumerate(raw)]
    read = best(lambda: drain(itertools.islice(Dump.open(path).items(), n)))
    convert, serialised = paired(
        lambda: drain(map(to_item, values)),
        lambda: drain(orjson.dumps(to_item(v)) for v in values),
    )
    serialise = serialised - convert
    prepared, batched = paired(
        lambda: drain(map(prepare, values, spans)), lambda: drain(batches(raw, keys, 25))
    )
    batching = batched - prepared
    ready = list(batches(raw, keys, 25))
    session = botocore.session.get_session()
    client = session.create_client(
        "dynamodb", endpoint_url="http://127.0.0.1:8000", region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    )  # fmt: skip
    signer = Signer(client, Credentials("bench", "bench"))
    sign = best(lambda: drain(signer.sign("t", b.items) for b in ready))
    signed = [signer.sign("t", b.items) for b in ready]
    http = best(lambda: _exchanges(signed))
    answer = best(
        lambda: drain(
            classify(answers.outcome("u", 200, _ANSWER, str(zlib.crc32(_ANSWER))), "t")
            for _ in ready
        )
    )
    commit = _commits(len(ready))
    progress = best(lambda: drain(Figures(i, i, 1, 1.0).rate for i in range(len(ready))))
    per = 1e6 / n
    return [
        ("read: split the dump, decode each item (reader, jsontext)", read * per),
        ("convert and check: attribute values, limits (attributes)", convert * per),
        ("serialise: the item's JSON (orjson)", serialise * per),
        ("key and size checks (checks, keys)", (prepared - convert - serialise) * per),
        ("batching: 25 a batch, no key twice (batching)", batching * per),
        ("request body and SigV4 signature (signing)", sign * per),
        ("HTTP framing, request and answer (http1, httptools)", http * per),
        ("answer parsing and verdict (answers, outcomes)", answer * per),
        ("checkpoint commit (ledger)", commit / 25),
        ("progress figures (progress)", progress * per),
    ]


def _exchanges(signed: list[tuple[bytes, dict[str, str]]]) -> None:
    """What the transport does for each request: write its head, parse the answer."""
    answer = http1.Answer()
    for body, headers in signed:
        head = http1.request_head("/", [*headers.items(), ("Content-Length", str(len(body)))])
        assert memoryview(head + body)
        answer.reset()
        answer.feed(_RESPONSE)
        assert answer.complete and answer.keep_alive


def _commits(count: int) -> float:
    """CPU µs of one checkpoint commit (a batch, no dead letters)."""
    with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "l.sqlite") as book:
        run = book.create_run(
            file="f", file_size=1, file_hash="h", table="t", endpoint="e", region="r",
            format="auto", shape="array", options=Recorded(),
        )  # fmt: skip
        count = max(count, 200)
        started = time.process_time()
        for i in range(count):
            book.commit(run.id, items_committed=25 * i, byte_offset=1000 * i, written=25, dead=[])
        return (time.process_time() - started) / count * 1e6


def print_steps(rows: list[tuple[str, float]], whole: float | None = None) -> None:
    """The table; with `whole` (the run's CPU µs per item), the rest and the total too."""
    print("| step | CPU µs/item |")
    print("|---|---:|")
    for name, us in rows:
        print(f"| {name} | {max(us, 0.0):.1f} |")  # below zero: lost in the noise
    total = sum(us for _, us in rows)
    print(f"| sum of the steps | {total:.1f} |")
    if whole is not None:
        print(f"| the rest: sockets, selector, writer, loop, start-up, file hash | "
              f"{whole - total:.1f} |")  # fmt: skip
        print(f"| the run, one process (target 1) | {whole:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    print_steps(steps(args.file, args.items))


if __name__ == "__main__":
    main()
