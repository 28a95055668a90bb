"""How fast the writer may send: requests in flight, a pace in items per second, a WCU cap.

Everything here reads time from an injected clock and never sleeps, so the whole of it
can be tested on simulated time.

**Requests in flight** follow AIMD, as TCP's window does: a throttled request halves them,
each answer that is not throttled adds back `1/limit` (one more request per round of
answers).

**The pace** follows the table with the rate limiter of AWS SDKs' "adaptive" retry mode
(botocore/retries/adaptive.py), which is TCP CUBIC applied to a send rate:
- it starts once the table first throttles; until then sends are not paced at all;
- on a throttled request, it measures the rate items were *sent* at over the last half
  second (what the table was offered, not what it took), remembers it as `w_max`, and
  drops the pace to `BETA * w_max`;
- on other answers it regrows along `SCALE * (t - K)**3 + w_max`: fast at first, flat
  near `w_max` (where the last throttling happened), then faster again beyond it, so a
  table whose capacity grew is found; never more than twice the measured send rate, and
  lifted altogether past `MAX_PACE`;
- only a request sent after the last cut may cut again: the answers to requests already
  on their way when the pace dropped say nothing about the new pace (TCP's one cut per
  window).

**Partial answers are not throttling signals.** A request the table refuses whole says
"you sent more than I take". UnprocessedItems says only that some items did not go in,
for reasons that often do not depend on our rate: one hot partition key, a partition
being split, a server that always hands back a share. The previous pace followed what
the table took in the last second, so a constant share refused shrank it geometrically
to the floor (5,000 items took 122 s against a server refusing 20% of every batch), and
any cut per partial answer, however small, does the same: refusals that do not depend on
the rate keep cutting, and nothing the writer does makes them stop. A table that is
really at its capacity soon refuses whole requests (its bucket is empty), and that is
the signal acted on. The handed-back items are retried with their own backoff by the
writer, which bounds what they cost.

**The WCU cap** (`--max-wcu`) is a token bucket of write units holding one second's worth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

BETA = 0.7  # the pace after a throttle, as a share of the rate sent when it came (botocore)
# Items/s per s³ of cubic regrowth: botocore's 0.4 requests/s per s³, with 25-item requests.
# From a throttle at 1,500 items/s, the pace is back at it in cbrt(1500 * 0.3 / 10) = 3.6 s.
SCALE = 10.0
MIN_PACE, MAX_PACE = 25.0, 200_000.0  # items/s the pace stays between (or is lifted)
METER_WINDOW = 0.5  # seconds of sends the measured rate covers


class Bucket:
    """Tokens refilled at `rate` per second, holding `window` seconds' worth (at least
    `floor`); a send spends its cost."""

    def __init__(
        self, rate: float, now: float, *, window: float, floor: float = 0.0, full: bool = True
    ) -> None:
        self.rate, self.window, self.floor = rate, window, floor
        self.tokens = self.burst if full else 0.0
        self._refilled = now

    @property
    def burst(self) -> float:
        return max(self.floor, self.rate * self.window)

    def due(self, cost: float, now: float) -> float:
        """Seconds until `cost` can be spent (a cost above the burst waits for a full one)."""
        self._refill(now)
        need = min(cost, self.burst) - self.tokens
        # A thousandth of a token short is rounding, not a reason to wait a few nanoseconds
        # (which a clock may not even be able to tell apart).
        return need / self.rate if need > 1e-3 else 0.0

    def set_rate(self, rate: float, now: float) -> None:
        self._refill(now)  # what accrued so far accrued at the old rate
        self.rate = rate
        self.tokens = min(self.tokens, self.burst)

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self._refilled) * self.rate)
        self._refilled = now


class Cubic:
    """botocore's CubicCalculator, in items per second."""

    def __init__(self, now: float) -> None:
        self.w_max = 0.0
        self.k = 0.0
        self.cut_at = now

    def cut(self, rate: float, now: float) -> float:
        """A throttle while sending at `rate`: the new, lower rate."""
        self.w_max = rate
        self.k = (rate * (1 - BETA) / SCALE) ** (1 / 3)
        self.cut_at = now
        return rate * BETA

    def rate(self, now: float) -> float:
        return SCALE * (now - self.cut_at - self.k) ** 3 + self.w_max


class Meter:
    """Items sent per second over the last `METER_WINDOW` seconds."""

    def __init__(self) -> None:
        self._sent: deque[tuple[float, int]] = deque()
        self._sum = 0

    def add(self, now: float, items: int) -> None:
        self._sent.append((now, items))
        self._sum += items
        if self._sent[0][0] < now - METER_WINDOW:
            self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        if not self._sent:
            return 0.0
        # Over the span the sends cover, at least a tenth of a second: a burst of requests
        # sent at one instant is not an infinite rate.
        return self._sum / max(0.1, now - self._sent[0][0])

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0][0] < now - METER_WINDOW:
            self._sum -= self._sent.popleft()[1]


class Flow:
    """Requests in flight, the pace and the WCU cap of one writer."""

    def __init__(
        self, max_inflight: int, max_wcu: float | None, clock: Callable[[], float]
    ) -> None:
        self.max_inflight = max_inflight
        self._limit = float(max_inflight)
        self._clock = clock
        self._wcu = Bucket(max_wcu, clock(), window=1.0) if max_wcu else None
        self._pace: Bucket | None = None
        self._cubic = Cubic(clock())
        self._meter = Meter()
        self._sends = 0  # requests sent so far; each one's number says if it left after a cut
        self._cut_after = -1  # the number of the last request sent before the last cut
        self.gated = self._wcu is not None  # whether a send must ask `due` first
        self.throttled = 0  # throttled answers so far, for the log and the benchmark

    @property
    def limit(self) -> int:
        """Requests allowed in flight right now."""
        return max(1, int(self._limit))

    @property
    def pace(self) -> float | None:
        """Items per second sends are held to since the table throttled; None: unpaced."""
        return self._pace.rate if self._pace else None

    def due(self, items: int, units: int, now: float) -> float:
        """Seconds to wait before sending `items` (`units` write units); when 0, the tokens
        are spent and the request must go now."""
        wait = 0.0
        if self._wcu:
            wait = self._wcu.due(units, now)
        if self._pace:
            wait = max(wait, self._pace.due(items, now))
        if wait > 0:
            return wait
        if self._wcu:
            self._wcu.tokens -= units
        if self._pace:
            self._pace.tokens -= items
        return 0.0

    def sent(self, items: int, now: float) -> int:
        """A request of `items` went out; returns its number, for `throttle`."""
        self._sends += 1
        self._meter.add(now, items)
        return self._sends

    def throttle(self, number: int) -> None:
        """The request numbered `number` was throttled as a whole."""
        self.throttled += 1
        self.cut(number)

    def cut(self, number: int | None = None) -> None:
        """Cut the requests in flight and the pace as a throttle of the request numbered
        `number` does (None: the last one sent, when another writer of the same table
        was throttled), without counting a throttle here."""
        number = self._sends if number is None else number
        if number <= self._cut_after:
            return  # sent before the last cut: that cut already answered it
        now = self._clock()
        self._cut_after = self._sends
        self._limit = max(1.0, self._limit / 2)
        sent = self._meter.rate(now)
        if self._pace is not None:
            sent = min(sent, self._pace.rate)
        rate = max(MIN_PACE, self._cubic.cut(max(sent, MIN_PACE), now))
        if self._pace is None:
            self._pace = Bucket(rate, now, window=0.1, floor=MIN_PACE, full=False)
            self.gated = True
        else:
            self._pace.set_rate(rate, now)

    def answered(self) -> None:
        """An answer that was not a throttle (written, or partly handed back)."""
        if self._limit < self.max_inflight:
            self._limit = min(float(self.max_inflight), self._limit + 1 / self._limit)
        if self._pace:
            now = self._clock()
            rate = self._cubic.rate(now)
            if rate > MAX_PACE:
                self._pace = None
                self.gated = self._wcu is not None
                return
            # At most twice what was sent lately, as botocore does, so a pace regrown while
            # little was sent is not spent in one burst; never lowered by that, though.
            rate = min(rate, max(self._pace.rate, 2 * self._meter.rate(now)))
            self._pace.set_rate(max(MIN_PACE, rate), now)
