"""Write batches with BatchWriteItem until every item is in or accounted for.

One thread keeps up to `max_inflight` requests in flight through a Transport (one request
per connection) and steps each batch through its retries as a small state machine. Threads
were the obvious alternative and were measured: handing requests between threads under
the GIL cost about 20 µs of CPU per item, a third of the whole budget.

Three kinds of failure, three answers:
- transient (throttling, 5xx, a dropped connection, items handed back unprocessed): back off
  with full jitter and send again what is left;
- one bad item (ValidationException fails the whole request): split the request in halves
  until the bad item stands alone, write the rest, and report that one as a dead letter;
- anything else (missing table, bad credentials), or a transient fault that outlasts every
  attempt: raise ServiceError, because the next batch would fail the same way. The caller
  keeps its checkpoint and the run can be resumed once the cause is gone.

Throttling also slows the writer as a whole: each throttled answer halves the number of
requests allowed in flight, and each clean answer adds back a little (AIMD, as TCP does).
It also paces sends to just under the items the table took in the last second: a table
that takes part of every request would otherwise get each leftover back as a small retry
of its own (measured against a stand-in capped at 1,500 items/s: 8,272 requests for
30,000 items without the pace, 2,023 with it). Each clean answer raises the pace by its
items, so it doubles each second nothing is throttled and is lifted soon after throttling
stops. `max_wcu` caps the write units sent per second, counted from item sizes as
DynamoDB counts them.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .errors import ServiceError, hint_for
from .items import Key, key_of, write_units
from .transport import Transport

TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
THROTTLE_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
     "RequestLimitExceeded"}
)  # fmt: skip
# Errors that blame something in the request's items rather than the request as a whole.
# A validation error is the item's own fault and stays a fault; an item collection over its
# size limit may fit later, after the user makes room, so `retry-failed` tries it again.
ITEM_CODES = {"ValidationException": False, "ItemCollectionSizeLimitExceededException": True}
UNPROCESSED = "Unprocessed"
MIN_PACE, MAX_PACE = 25, 200_000  # items/s the throttling pace stays between (or is lifted)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; `max_attempts` counts fruitless sends."""

    max_attempts: int = 10
    base_delay: float = 0.05
    max_delay: float = 20.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass(frozen=True)
class Failure:
    """An item that could not be written: `position` is its place in the job's items."""

    position: int
    code: str
    message: str
    attempts: int
    retryable: bool


@dataclass(eq=False)
class Job:
    """One batch handed to the writer; `done` once every item is written or failed."""

    items: list[bytes]  # each item's attribute map as JSON, as it goes in the request body
    failures: list[Failure] = field(default_factory=list)
    parts: int = 0  # requests (or waiting retries) still open for it
    units: list[int] | None = None  # write units per item, when a WCU cap is set

    @property
    def done(self) -> bool:
        return self.parts == 0


@dataclass(eq=False)
class _Part:
    """Some of a job's items, on their way: the first send, a retry, or half of a split."""

    job: Job
    positions: list[int]
    fruitless: int = 0
    sends: int = 0


RetryHook = Callable[[str, int, float], None]


class Writer:
    def __init__(
        self,
        transport: Transport,
        table: str,
        key_names: tuple[str, ...],
        policy: RetryPolicy | None = None,
        *,
        max_inflight: int = 1,
        max_wcu: float | None = None,
        on_retry: RetryHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._table = table
        self._key_names = key_names
        self._policy = policy or RetryPolicy()
        self._max_inflight = max_inflight
        self._limit = float(max_inflight)  # lowered by throttling, regained by success
        self._last_cut = -1.0
        self._max_wcu = max_wcu
        self._wcu = _Bucket(max_wcu, clock(), window=1.0) if max_wcu else None
        self._pace: _Bucket | None = None  # items/s, set by throttling, lifted by success
        self._took: deque[tuple[float, int]] = deque()  # (when, items written): last second
        self._took_sum = 0
        self._on_retry = on_retry
        self._clock = clock
        self._ready: deque[_Part] = deque()
        self._waiting: list[tuple[float, int, _Part]] = []  # (not before, seq, part)
        self._seq = itertools.count()
        self._inflight: dict[Any, _Part] = {}
        self.throttled = 0  # throttled answers so far, for the log and the benchmark

    @property
    def limit(self) -> int:
        """Requests allowed in flight right now."""
        return int(self._limit)

    @property
    def pace(self) -> float | None:
        """Items per second sends are held to since the table throttled; None: unpaced."""
        return self._pace.rate if self._pace else None

    def submit(self, items: list[bytes], units: list[int] | None = None) -> Job:
        """Start writing `items`; `units` (write units of each) is needed with `max_wcu`."""
        job = Job(items)
        if self._max_wcu:
            job.units = units or [write_units(orjson.loads(i)) for i in items]
        if items:
            job.parts = 1
            self._ready.append(_Part(job, list(range(len(items)))))
        return job

    def write(self, items: list[bytes]) -> list[Failure]:
        """Write `items` (at most 25, no repeated key) and wait; return those that failed."""
        job = self.submit(items)
        while not job.done:
            self.poll(block=True)
        return job.failures

    def poll(self, *, block: bool) -> None:
        """Send what may be sent, and take in answers (waiting for one if `block`)."""
        self._send_ready()
        timeout = 0.0
        if block:  # until an answer, or until the next retry is due
            timeout = max(0.0, self._waiting[0][0] - self._clock()) if self._waiting else None
        if self._inflight:
            for token, outcome in self._transport.wait(timeout):
                self._answer(self._inflight.pop(token), outcome)
        elif timeout:
            time.sleep(timeout)
        self._send_ready()

    # -- sending ---------------------------------------------------------------------------

    def _send_ready(self) -> None:
        now = self._clock()
        while self._waiting and self._waiting[0][0] <= now:
            self._ready.append(heapq.heappop(self._waiting)[2])
        while self._ready and len(self._inflight) < max(1, int(self._limit)):
            part = self._ready[0]
            if (self._wcu or self._pace) and not self._take_tokens(part, now):
                break
            self._ready.popleft()
            part.sends += 1
            items = [part.job.items[p] for p in part.positions]
            token = self._transport.start(self._table, items)
            self._inflight[token] = part

    def _take_tokens(self, part: _Part, now: float) -> bool:
        """Spend the part's write units and items from the buckets; False if it must wait."""
        costs = []
        if self._wcu:
            assert part.job.units is not None
            costs.append((self._wcu, sum(part.job.units[p] for p in part.positions)))
        if self._pace:
            costs.append((self._pace, len(part.positions)))
        wait = max(bucket.due(cost, now) for bucket, cost in costs)
        if wait > 0:
            heapq.heappush(self._waiting, (now + wait, next(self._seq), self._ready.popleft()))
            return False
        for bucket, cost in costs:
            bucket.tokens -= cost
        return True

    def _later(self, part: _Part, code: str) -> None:
        delay = self._policy.delay(part.fruitless)
        if self._on_retry:
            self._on_retry(code, part.sends, delay)
        heapq.heappush(self._waiting, (self._clock() + delay, next(self._seq), part))

    # -- answers ---------------------------------------------------------------------------

    def _answer(self, part: _Part, outcome: Any) -> None:
        job = part.job
        if isinstance(outcome, dict):
            left = outcome.get("UnprocessedItems", {}).get(self._table, [])
            self._wrote(len(part.positions) - len(left))
            if not left:
                self._regain(len(part.positions))
                job.parts -= 1
                return
            self._throttled()
            keys = {key_of(r["PutRequest"]["Item"], self._key_names) for r in left}
            still = [p for p in part.positions if self._key(job.items[p]) in keys]
            if len(still) != len(left):
                # The service may write an item back differently (a number normalised): when
                # not every leftover is recognised, send them all again rather than lose one.
                still = part.positions
            elif len(still) < len(part.positions):
                part.fruitless = 0  # progress: the attempt budget starts over
            part.positions = still
            code = UNPROCESSED
            message = f"{len(part.positions)} item(s) returned unprocessed (throttled)"
        else:
            code, message, status = _describe(outcome, self._table)
            if code in ITEM_CODES:
                if len(part.positions) == 1:
                    job.failures.append(
                        Failure(part.positions[0], code, message, part.sends, ITEM_CODES[code])
                    )
                    job.parts -= 1
                    return
                half = len(part.positions) // 2
                job.parts += 1
                self._ready.appendleft(_Part(job, part.positions[half:], sends=part.sends))
                self._ready.appendleft(_Part(job, part.positions[:half], sends=part.sends))
                return
            if code not in TRANSIENT_CODES and status < 500 and status != -1:
                raise ServiceError(
                    f"DynamoDB refused the write to table {self._table!r}: {code}: {message}",
                    hint_for(code),
                )
            if code in THROTTLE_CODES:
                self._throttled()
        part.fruitless += 1
        if part.fruitless >= self._policy.max_attempts:
            if code == UNPROCESSED:
                job.failures.extend(
                    Failure(p, code, message, part.sends, True) for p in part.positions
                )
                job.parts -= 1
                return
            raise ServiceError(
                f"DynamoDB kept failing after {part.sends} attempts: {code}: {message}",
                "check that the endpoint is up and the table is not throttled",
            )
        self._later(part, code)

    def _key(self, item: bytes) -> Key | None:
        return key_of(orjson.loads(item), self._key_names)

    def _wrote(self, n: int) -> None:
        now = self._clock()
        self._took.append((now, n))
        self._took_sum += n
        while self._took[0][0] < now - 1.0:
            self._took_sum -= self._took.popleft()[1]

    def _throttled(self) -> None:
        """Halve the requests in flight, at most once per 100 ms (one burst, one cut), and
        pace sends just under the rate the table took items at over the last second."""
        self.throttled += 1
        now = self._clock()
        if now - self._last_cut >= 0.1:
            self._limit = max(1.0, self._limit / 2)
            self._last_cut = now
        if self._took_sum < MIN_PACE:  # too little written lately to tell a rate: back off
            return
        took = self._took_sum / max(0.1, now - self._took[0][0])
        rate = max(float(MIN_PACE), 0.9 * took)
        if self._pace is None:
            self._pace = _Bucket(rate, now, window=0.1, floor=MIN_PACE, full=False)
        elif rate < self._pace.rate:
            self._pace.rate = rate

    def _regain(self, n: int) -> None:
        """A clean answer: one more request in flight per `limit` of them, and a pace `n`
        items/s faster, so it doubles each second no answer is throttled and is lifted once
        far above anything a client sends."""
        if self._limit < self._max_inflight:
            self._limit = min(float(self._max_inflight), self._limit + 1 / self._limit)
        if self._pace:
            self._pace.rate += n
            if self._pace.rate > MAX_PACE:
                self._pace = None


class _Bucket:
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
        burst = self.burst
        self.tokens = min(burst, self.tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        return max(0.0, (min(cost, burst) - self.tokens) / self.rate)


def _describe(outcome: BaseException, table: str) -> tuple[str, str, int]:
    """(error code, message, HTTP status; -1 for a connection fault) of a failed request."""
    if isinstance(outcome, ClientError):
        error = outcome.response.get("Error", {})
        status = outcome.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code", "Unknown"), error.get("Message", str(outcome)), status
    if isinstance(outcome, BotoConnectionError | HTTPClientError):
        return type(outcome).__name__, str(outcome), -1
    if isinstance(outcome, BotoCoreError):
        raise ServiceError(f"cannot write to DynamoDB: {outcome}", hint_for("")) from None
    raise outcome
