"""Write batches with BatchWriteItem until every item is in or accounted for.

One thread keeps up to `limit` requests in flight through a Transport (one request per
connection) and steps each batch through its retries as a small state machine. Threads
were the obvious alternative and were measured: handing requests between threads under
the GIL cost about 20 µs of CPU per item, a third of the whole budget.

Each answer gets a verdict (`outcomes.classify`), and each verdict its answer:
- written: done; handed back unprocessed or throttled: back off with full jitter and
  send again what is left (throttling also slows the writer, see `flow`);
- refused because of an item (ValidationException, or HTTP 413 from a proxy): split the
  request in halves until the item at fault stands alone, write the rest, and report
  that one as a dead letter;
- no answer (connection refused or dropped, timeout, 5xx): back off and send again;
- anything else (missing table, bad credentials, an untrusted certificate): raise
  ServiceError at once, because the next request would fail the same way.

**The failure policy finishes the import.** An item that stays unprocessed, throttled or
failing past its budget while other requests are answered becomes a *retryable* dead
letter, its job completes, and the run goes on (`retry-failed` writes it later). The
budget is both `max_attempts` fruitless sends and `item_timeout` seconds since its
trouble began: attempts alone come and go in a fraction of a second under a short
backoff, seconds alone would give up after one long wait. Progress (part of the request
written) starts the budget over.

**Outages are ridden out.** When nothing is answered, only failures (an endpoint
restarting, a network gone), no item is dead-lettered for it (unless it is the last one
left, which cannot tell an outage from its own fault): every request keeps being
sent again with capped backoff, `on_outage(since, cause)` is told after
`OUTAGE_NOTICE` seconds (and `on_outage(None, "")` once an answer comes back), and only
when no answer has come for `max_outage` seconds is ServiceError raised, naming the
last error. When the endpoint answers again, the items waiting out their backoff are
sent at once and their budgets start over.

Crash safety is the caller's: a job is `done` only once each of its items is written or
has a Failure.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from .errors import ServiceError
from .flow import Flow
from .items import write_units
from .keys import Key, key_of_request
from .outcomes import WRITTEN, Kind, Verdict, classify
from .transport import Transport

OUTAGE_NOTICE = 2.0  # seconds of nothing but failures before `on_outage` is told


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: exponential backoff with full jitter, capped.

    An item gives up (a retryable dead letter) after `max_attempts` fruitless sends *and*
    `item_timeout` seconds, while the endpoint answers other requests; when it answers
    none, the run stops after `max_outage` seconds without an answer.
    """

    max_attempts: int = 10
    base_delay: float = 0.05
    max_delay: float = 20.0
    item_timeout: float = 30.0
    max_outage: float = 300.0

    def delay(self, attempt: int) -> float:
        # The exponent is bounded: an item riding out an outage counts hundreds of attempts.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** min(attempt, 64)))


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
    keys: list[Key | None]  # the primary key of each, to know the ones handed back unprocessed
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
    fruitless: int = 0  # sends in a row that wrote none of it
    sends: int = 0
    since: float | None = None  # when its fruitless streak began
    failed_at: float = 0.0  # its last fruitless answer
    number: int = 0  # its last send's number, for the flow control


@runtime_checkable
class BatchWriter(Protocol):
    """What the run loop (`loop._pump`, its committer, `retry_failed`, the hints) needs of a
    writer, so that another way of writing (several processes, or staging to S3 for
    DynamoDB's bulk import) plugs in without the reader, the ledger or the CLI knowing.
    `Writer` (BatchWriteItem from one thread) is the first implementation.

    The contract, which `tests/test_contract.py` holds every implementation to:

    - **Acknowledgement.** `submit` only takes a batch in; `poll` does the work. A job is
      acknowledged when `Job.done` turns true, inside a `poll`, and only once each of its
      items is either written durably (DynamoDB answered for it: not handed back as
      unprocessed) or has a Failure. The caller commits a job's checkpoint then and never
      before; a job submitted with no items is done at once.
    - **Dead letters.** What cannot be written comes back in `Job.failures`, never raised:
      one `Failure(position, code, message, attempts, retryable)` per item, `position` its
      index in the items given to `submit`, `code` and `message` DynamoDB's (or the
      transport's) last word on it, `attempts` the sends it took part in. `retryable` is
      False when DynamoDB refused the item itself (a ValidationException: too large, its
      key missing, empty or of the wrong type) and it was not written, nor will it be by
      sending it again; True when the writer gave up on a budget (handed back
      unprocessed, throttled, no answer) or the item may fit later (its item collection
      full). A retryable Failure may have been written all the same (a request that timed
      out may have been applied): sending it again is safe, see idempotency.
    - **Raises.** `ServiceError` (`CredentialsError` among them) when writing cannot go
      on for any item: the table is missing, access is denied, the certificate is not
      trusted, or the endpoint has answered nothing for `max_outage`. Jobs not yet done
      are then neither written nor failed, as far as the caller knows; the writer is not
      used again and the run stops at its last checkpoint. `KeyboardInterrupt` (a signal)
      passes through the same way. Anything else raised is a bug, with its traceback.
    - **Ordering.** None: jobs finish in any order, and a job's items are written in any
      order (halves of a split, retries). The caller never puts one key twice in a job,
      nor submits two unfinished jobs sharing a key, so that the later item of a key is
      the one that stays; a writer given such a job anyway writes each item (no dead
      letter) in no promised order.
    - **Idempotency.** An item may be written more than once: after a crash or a stop,
      `resume` sends again the items of every job not committed, and `retry-failed` the
      retryable dead letters. Every write is a whole-item put, so writing an item again
      leaves the table as writing it once does.
    - **Threads.** One thread calls `submit` and `poll`; the writer calls its hooks
      (`on_retry`, `on_outage`, given when it is made) from inside them.
    """

    def submit(
        self, items: list[bytes], keys: list[Key | None], units: list[int] | None = None
    ) -> Job:
        """Take in a batch: `items` are attribute maps as JSON (as they go on the wire),
        at most 25, no key twice; `keys` the primary key of each (`keys.py`), worked out
        once when the item was made ready; `units` their write units, when a WCU cap is
        set."""
        ...

    def poll(self, *, block: bool) -> None:
        """Make progress: send what may be sent and take in answers. With `block`, wait
        for at least one answer or the next due retry (it may return with no job done);
        without, return at once. Raises as the contract says."""
        ...

    def close(self) -> None:
        """Release what the writer holds (connections, processes, staged files): called
        once at the end, also after a raise; jobs not done are abandoned."""
        ...

    @property
    def throttled(self) -> int:
        """Throttled answers so far: the log, the progress line and the hint to go gentler."""
        ...

    @property
    def pace(self) -> float | None:
        """Items per second the writer settled at after throttling (None: unpaced), for
        the hint's WCU cap."""
        ...


def wait_for(writer: BatchWriter, job: Job) -> list[Failure]:
    """Poll until `job` is done; its failures (for callers that write one job at a time)."""
    while not job.done:
        writer.poll(block=True)
    return job.failures


RetryHook = Callable[[str, int, float], None]
OutageHook = Callable[[float | None, str], None]
"""(since when, on the writer's clock, nothing but failures; the last one) or (None, "")."""


class Writer:
    """The first `BatchWriter`: BatchWriteItem requests through a Transport (see above)."""

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
        on_outage: OutageHook | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        entries: bool = False,
    ) -> None:
        """`entries`: the items given are whole write requests (puts and deletes, from a
        BatchWriteItem request file), sent as they are."""
        self._transport = transport
        self._entries = entries
        self._table = table
        self._key_names = key_names
        self._policy = policy or RetryPolicy()
        self._flow = Flow(max_inflight, max_wcu, clock)
        self._max_wcu = max_wcu
        self._on_retry = on_retry
        self._on_outage = on_outage
        self._clock = clock
        self._sleep = sleep
        self._ready: deque[_Part] = deque()
        self._waiting: list[tuple[float, int, _Part]] = []  # (not before, seq, part)
        self._seq = itertools.count()
        self._inflight: dict[Any, _Part] = {}
        self._answered_at = clock()  # the endpoint's last answer (not a failure)
        self._down_since: float | None = None  # first failure since that answer
        self._told: str | None = None  # the cause `on_outage` was last told

    @property
    def limit(self) -> int:
        """Requests allowed in flight right now."""
        return self._flow.limit

    @property
    def pace(self) -> float | None:
        """Items per second sends are held to since the table throttled; None: unpaced."""
        return self._flow.pace

    @property
    def throttled(self) -> int:
        """Throttled answers so far, for the log and the benchmark."""
        return self._flow.throttled

    def slow_down(self) -> None:
        """Another writer of the table was throttled: the table's limit is this one's too."""
        self._flow.cut()

    def submit(
        self, items: list[bytes], keys: list[Key | None], units: list[int] | None = None
    ) -> Job:
        """Start writing `items`, whose primary keys are `keys`; `units` (write units of
        each) is needed with `max_wcu`."""
        job = Job(items, keys)
        if self._max_wcu:
            job.units = units or [write_units(orjson.loads(i)) for i in items]
        if items:
            job.parts = 1
            self._ready.append(_Part(job, list(range(len(items)))))
        return job

    def write(self, items: list[bytes], keys: list[Key | None]) -> list[Failure]:
        """Write `items` (at most 25, no repeated key) and wait; return those that failed."""
        job = self.submit(items, keys)
        while not job.done:
            self.poll(block=True)
        return job.failures

    def close(self) -> None:
        """Close the transport's connections."""
        self._transport.close()

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
            self._sleep(timeout)
        self._send_ready()

    # -- sending ---------------------------------------------------------------------------

    def _send_ready(self) -> None:
        now = self._clock()
        while self._waiting and self._waiting[0][0] <= now:
            self._ready.append(heapq.heappop(self._waiting)[2])
        flow = self._flow
        while self._ready and len(self._inflight) < flow.limit:
            part = self._ready[0]
            if flow.gated:
                units = sum(part.job.units[p] for p in part.positions) if part.job.units else 0
                if wait := flow.due(len(part.positions), units, now):
                    heapq.heappush(self._waiting, (now + wait, next(self._seq), part))
                    self._ready.popleft()
                    break
            self._ready.popleft()
            part.sends += 1
            items = [part.job.items[p] for p in part.positions]
            part.number = flow.sent(len(items), now)
            if self._entries:
                token = self._transport.start(self._table, items, True)
            else:
                token = self._transport.start(self._table, items)
            self._inflight[token] = part

    def _later(self, part: _Part, code: str) -> None:
        delay = self._policy.delay(part.fruitless)
        if self._on_retry:
            self._on_retry(code, part.sends, delay)
        heapq.heappush(self._waiting, (self._clock() + delay, next(self._seq), part))

    # -- answers ---------------------------------------------------------------------------

    def _answer(self, part: _Part, outcome: Any) -> None:
        verdict = classify(outcome, self._table)
        job = part.job
        if verdict is WRITTEN:
            self._flow.answered()
            self._answered()
            job.parts -= 1
            return
        kind = verdict.kind
        if kind is Kind.PARTIAL:
            self._flow.answered()
            self._answered()
            names = self._key_names
            keys = {key_of_request(r, names) for r in verdict.left}
            still = [p for p in part.positions if job.keys[p] in keys]
            if len(still) != len(verdict.left):
                # The service may write an item back differently (a number normalised): when
                # not every leftover is recognised, send them all again rather than lose one.
                still = part.positions
            elif len(still) < len(part.positions):
                part.fruitless, part.since = 0, None  # progress: the budget starts over
            part.positions = still
        elif kind is Kind.THROTTLED:
            self._flow.throttle(part.number)
            self._answered()
        elif kind is Kind.ITEM:
            self._answered()
            self._split(part, verdict)
            return
        elif kind is Kind.FATAL:
            self._fatal(outcome, verdict)
        else:
            self._failed(verdict)
        self._fruitless(part, verdict)

    def _fruitless(self, part: _Part, verdict: Verdict) -> None:
        """Send the part again later, or give up on it once past its budget while the
        endpoint answers other requests."""
        now = self._clock()
        part.fruitless += 1
        if part.since is None:
            part.since = now
        # No answer to anyone since this part last failed, and others are waiting too: the
        # endpoint is down, not this request, and the outage clock decides. Alone, it
        # cannot tell and gives up on its budget (its items retryable), rather than stop
        # the run on what may be this request's own fault (resume would meet it again).
        outage = (
            verdict.kind is Kind.TRANSIENT
            and self._answered_at <= part.failed_at
            and bool(self._inflight or self._ready or self._waiting)
        )
        part.failed_at = now
        policy = self._policy
        if (
            part.fruitless >= policy.max_attempts
            and now - part.since >= policy.item_timeout
            and not outage
        ):
            job = part.job
            reason = (
                "handed back unprocessed (a hot key, or too little capacity)"
                if verdict.kind is Kind.PARTIAL
                else verdict.message
            )
            message = (
                f"{reason}; gave up after {part.sends} attempts over {now - part.since:.0f} s "
                "while other requests went through"
            )
            job.failures.extend(
                Failure(p, verdict.code, message, part.sends, True) for p in part.positions
            )
            job.parts -= 1
            return
        self._later(part, verdict.code)

    def _split(self, part: _Part, verdict: Verdict) -> None:
        job = part.job
        if len(part.positions) == 1:
            job.failures.append(
                Failure(part.positions[0], verdict.code, verdict.message, part.sends,
                        verdict.retryable)
            )  # fmt: skip
            job.parts -= 1
            return
        half = len(part.positions) // 2
        job.parts += 1
        self._ready.appendleft(_Part(job, part.positions[half:], sends=part.sends))
        self._ready.appendleft(_Part(job, part.positions[:half], sends=part.sends))

    def _fatal(self, outcome: Any, verdict: Verdict) -> None:
        if not isinstance(outcome, BotoCoreError | ClientError | OSError):
            raise outcome  # not a failure of DynamoDB's: a bug, with its traceback
        if isinstance(outcome, ClientError):
            message = f"DynamoDB refused the write to table {self._table!r}"
        else:
            message = "cannot write to DynamoDB"
        raise ServiceError(f"{message}: {verdict.code}: {verdict.message}", verdict.hint)

    # -- outages ---------------------------------------------------------------------------

    def _answered(self) -> None:
        """The endpoint answered (whatever it said): any outage is over."""
        self._answered_at = self._clock()
        if self._down_since is not None:
            self._down_since = None
            if self._told is not None:
                self._recovered()

    def _failed(self, verdict: Verdict) -> None:
        """No answer to a request: count the outage, and end the run once it is too long."""
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        down = now - self._down_since
        if down >= self._policy.max_outage:
            raise ServiceError(
                f"DynamoDB has not answered for {down:.0f} s, every request failing; "
                f"the last error: {verdict.code}: {verdict.message}",
                "check that the endpoint is up and reachable from here (endpoint, region, "
                f"network, proxy); max_outage ({self._policy.max_outage:g} s) sets how long "
                "rimport waits",
                param="max_outage",
            )
        if down >= OUTAGE_NOTICE and self._told != verdict.code:  # news: an outage, or its cause
            self._told = verdict.code
            if self._on_outage:
                self._on_outage(self._down_since, f"{verdict.code}: {verdict.message}")

    def _recovered(self) -> None:
        """After an outage, send what waits out its backoff now, with budgets afresh."""
        self._told = None
        if self._on_outage:
            self._on_outage(None, "")
        now = self._clock()
        for part in itertools.chain(self._ready, self._inflight.values()):
            part.fruitless, part.since = 0, None
        waiting = self._waiting
        for n, (_, seq, part) in enumerate(waiting):
            part.fruitless, part.since = 0, None
            waiting[n] = (now, seq, part)
        heapq.heapify(waiting)
