"""What waits in memory for the checkpoint stays bounded, refused elements included.

Behind one slow answer the run loop keeps reading and handing on later batches, which are
committed in file order once that answer arrives. A run of refused elements behind it
must stop the reading at the same bound as written items do (issue 16, part 7): they
used to count nothing, and a million of them took 102 MB behind 2 s answers.
"""

from __future__ import annotations

from collections.abc import Iterator

from resumable_import import loop
from resumable_import.pipeline import Ready
from resumable_import.writer import Failure, Job

REFUSED_BATCHES = 10_000  # 250,000 refused elements, more than any bound lets wait


class SlowFirstWriter:
    """A writer whose first batch is answered only when the loop waits for an answer:
    everything the loop reads before it waits has to sit in memory."""

    throttled = 0
    pace = None

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def submit(self, items: list[bytes], keys: list, units: list[int] | None = None) -> Job:
        job = Job(items, keys, parts=1 if items else 0)
        self.jobs.append(job)
        return job

    def poll(self, *, block: bool) -> None:
        if block:
            for job in self.jobs:
                job.parts = 0

    def close(self) -> None:
        pass


class Committer:
    def __init__(self, source: Counting) -> None:
        self.source = source
        self.waiting = 0  # refused elements read when the slow first batch was committed
        self.committed: list[int] = []

    def commit(self, batch: Ready, failures: list[Failure], *, more: bool = False) -> None:
        if not self.committed:
            self.waiting = self.source.refused
        self.committed.append(batch.last)


class Counting:
    """One good batch, then batches of 25 refused elements; counts the refused read."""

    def __init__(self) -> None:
        self.refused = 0

    def __iter__(self) -> Iterator[Ready]:
        yield Ready(0, 10, 10, [b'{"pk":{"S":"a"}}'], [0], ["a"], None, [])
        for n in range(REFUSED_BATCHES):
            first = 1 + 25 * n
            refused = [
                (i, b"{}", "MissingKey", f"item {i} has no attribute 'pk', the table's key")
                for i in range(first, first + 25)
            ]
            self.refused += 25
            yield Ready(first + 24, 10 + 3 * (first + 24), 0, [], [], [], None, refused)


def test_refused_elements_wait_within_the_bound_ahead_of_the_checkpoint() -> None:
    source = Counting()
    committer = Committer(source)
    loop._pump(iter(source), SlowFirstWriter(), committer)  # type: ignore[arg-type]

    # Every batch was committed, in file order.
    assert committer.committed == [0, *(25 * n + 25 for n in range(REFUSED_BATCHES))]
    # The reading waited for the slow answer once the refused elements reached the bound,
    # not after thousands of batches: each costs at least REFUSED_COST bytes.
    bound = loop.MAX_BYTES_AHEAD // loop.REFUSED_COST + 25
    assert 0 < committer.waiting <= bound
    assert committer.waiting < 25 * loop.MAX_BATCHES_AHEAD // 2
