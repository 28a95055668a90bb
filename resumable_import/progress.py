"""How far a run (or a validation) has got, as one object a caller can show however it likes.

Two ways to be told, both optional, both given the same moments:
- `progress(items, bytes_done, bytes_total)`, the original three numbers, kept as it was
  so that callers written for it go on working unchanged;
- `on_progress(figures)`, a `Figures` with everything else: retries, throttled answers,
  dead letters, rate and ETA. A second parameter rather than a richer first argument
  because guessing from a callable's signature which of the two it wants breaks on
  wrappers, partials and `*args` lambdas, and a typed object can grow fields later
  without breaking anyone.

The last call of a run that read its file to the end has `bytes_done == bytes_total`
(and `final` set). `bytes_total` None means the size is unknown (a pipe): then there is
no percent and no ETA, only items and bytes read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

Progress = Callable[[int, int, int], None]
"""(items done, bytes done, bytes in the file): the original callback."""


@dataclass(frozen=True, slots=True)
class Figures:
    items: int  # items done: committed (written or dead-lettered), or checked by `validate`
    bytes_done: int  # of the file as stored (compressed bytes for a compressed dump)
    bytes_total: int | None  # None: unknown
    elapsed: float  # seconds since this call (start, resume, validate) began
    items_start: int = 0  # items done before it began (a resumed run): not in the rate
    bytes_start: int = 0
    retries: int = 0  # requests sent again (throttled, unprocessed or unanswered)
    throttled: int = 0  # answers that said the table is over its capacity
    dead_letters: int = 0  # of the run, including those from before a resume
    final: bool = False  # the last call: the run or the validation read to its end

    @property
    def percent(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(100.0, 100.0 * self.bytes_done / self.bytes_total)

    @property
    def rate(self) -> float:
        """Items per second since this call began."""
        return (self.items - self.items_start) / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, at the byte rate so far; None when it cannot be told."""
        if not self.bytes_total or self.elapsed <= 0:
            return None
        done = self.bytes_done - self.bytes_start
        if done <= 0:
            return None
        return max(0.0, (self.bytes_total - self.bytes_done) * self.elapsed / done)

    def as_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.update(
            percent=None if self.percent is None else round(self.percent, 2),
            items_per_s=round(self.rate, 1),
            eta_s=None if self.eta is None else round(self.eta, 1),
            elapsed=round(self.elapsed, 3),
        )
        return fields


OnProgress = Callable[[Figures], None]
"""Told the figures after each checkpoint (and each retry, so a stalled run still ticks)."""


def known(total: int | None) -> int | None:
    """A size as the figures carry it: 0 (what a pipe reports) is unknown too."""
    return total or None
