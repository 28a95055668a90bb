"""A small in-memory stand-in for the two DynamoDB calls rimport makes, with fault knobs.

Used only where a test must inject faults deterministically; everything else runs against
DynamoDB Local.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from botocore.exceptions import ClientError, EndpointConnectionError

from resumable_import.transport import SyncTransport

TOO_LARGE_PAGE = (
    "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 "
    "Request Entity Too Large</h1></center><hr><center>nginx</center></body></html>"
)


def client_error(code: str, message: str = "injected", status: int = 400) -> ClientError:
    response = {"Error": {"Code": code, "Message": message}}
    return ClientError({**response, "ResponseMetadata": {"HTTPStatusCode": status}}, "Batch")


class FakeDynamo:
    """One table keyed by `key_names`. Time comes from `clock`, so a test can run it on
    simulated time (with `FakeClock` and `SimTransport`).

    Knobs:
      fail_next        errors (or "connection") raised by the next calls, in order
      poison           partition-key values whose presence fails the whole request with
                       ValidationException, as an item over 400 KB does
      unprocessed      partition-key value -> how many more times to hand it back unprocessed
      hot              partition-key value -> until when (clock) to hand it back unprocessed
      unprocessed_share  each item is handed back with this probability, whatever the rate
      capacity         items per second the table takes (a one-second token bucket, as
                       DynamoDB's burst); the rest of a request comes back unprocessed, or
                       the whole request is throttled when nothing fits
      down             (from, to) on the clock: every call fails with `down_error` meanwhile
      max_body         requests whose body is longer fail as a proxy's 413 page would
    """

    def __init__(
        self,
        table: str = "t",
        key_names: tuple[str, ...] = ("pk",),
        clock: Callable[[], float] = time.monotonic,
        seed: int = 1,
    ) -> None:
        self.table = table
        self.key_names = key_names
        self.clock = clock
        self.items: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.log: list[tuple[str, ...]] = []  # partition keys of each accepted put, in order
        self.fail_next: list[str | ClientError] = []
        self.poison: set[str] = set()
        self.unprocessed: dict[str, int] = {}
        self.hot: dict[str, float] = {}
        self.unprocessed_share = 0.0
        self.down: tuple[float, float] | None = None
        self.down_error: str | ClientError | Exception = "connection"
        self.max_body: int | None = None
        self.calls = 0
        self.throttled = 0  # requests refused whole for capacity
        self.capacity: float | None = None
        self._tokens = 0.0
        self._refilled = clock()
        self._rng = random.Random(seed)
        self.on_call: Callable[[list[dict[str, Any]]], None] | None = None
        self._lock = threading.Lock()

    def describe_table(self, TableName: str) -> dict[str, Any]:
        if TableName != self.table:
            raise client_error("ResourceNotFoundException", "Requested resource not found")
        return {
            "Table": {
                "TableName": TableName,
                "TableStatus": "ACTIVE",
                "KeySchema": [
                    {"AttributeName": n, "KeyType": "HASH" if i == 0 else "RANGE"}
                    for i, n in enumerate(self.key_names)
                ],
                "AttributeDefinitions": [
                    {"AttributeName": n, "AttributeType": "S"} for n in self.key_names
                ],
            }
        }

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            fault = self.fail_next.pop(0) if self.fail_next else None
        now = self.clock()
        if fault is None and self.down and self.down[0] <= now < self.down[1]:
            fault = self.down_error
        if fault == "connection":
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        if isinstance(fault, Exception):
            raise fault
        if fault is not None:
            raise client_error(str(fault), status=500)
        (table, requests), *_ = RequestItems.items()
        if self.max_body is not None and len(orjson.dumps(RequestItems)) > self.max_body:
            raise client_error("HTTP413", TOO_LARGE_PAGE, status=413)
        if table != self.table:
            raise client_error("ResourceNotFoundException", "Requested resource not found")
        items = [r["PutRequest"]["Item"] for r in requests]
        if self.on_call:
            self.on_call(items)
        if len(items) > 25:
            raise client_error("ValidationException", "Too many items requested")
        keys = [self._key(i) for i in items]
        if None in keys or len(set(keys)) < len(keys):
            raise client_error("ValidationException", "missing or duplicate key in batch")
        if any(k[0] in self.poison for k in keys):
            raise client_error("ValidationException", "Item size has exceeded the maximum")
        left = []
        with self._lock:
            fits = self._admit(len(items))
            for n, (key, item) in enumerate(zip(keys, items, strict=True)):
                refused = (
                    self.unprocessed.get(key[0], 0) > 0
                    or self.hot.get(key[0], now) > now
                    or (self.unprocessed_share and self._rng.random() < self.unprocessed_share)
                )
                if n >= fits or refused:
                    if n < fits and self.unprocessed.get(key[0], 0) > 0:
                        self.unprocessed[key[0]] -= 1
                    left.append({"PutRequest": {"Item": item}})
                    continue
                self.items[key] = item
                self.log.append(key)
        return {"UnprocessedItems": {table: left} if left else {}}

    def _admit(self, n: int) -> int:
        if self.capacity is None:
            return n
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._refilled) * self.capacity)
        self._refilled = now
        fits = min(n, int(self._tokens))
        if fits == 0:
            self.throttled += 1
            raise client_error("ProvisionedThroughputExceededException", "throttled")
        self._tokens -= fits
        return fits

    def _key(self, item: dict[str, Any]) -> tuple[Any, ...] | None:
        try:
            return tuple(item[n]["S"] for n in self.key_names)
        except KeyError:
            return None


class ShuffledTransport(SyncTransport):
    """Answers come back in a random order, some held over to later waits, as they would
    from several connections at once."""

    def __init__(self, client: Any, seed: int = 5) -> None:
        super().__init__(client)
        self._held: list[tuple[Any, Any]] = []
        self._rng = random.Random(seed)

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        self._held += super().wait(timeout)
        self._rng.shuffle(self._held)
        cut = self._rng.randint(1, len(self._held)) if self._held else 0
        out, self._held = self._held[:cut], self._held[cut:]
        return out


class FakeClock:
    """Simulated time: `sleep` moves it on, and so does `SimTransport.wait`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class SimTransport(SyncTransport):
    """Each request reaches the fake when sent and is answered `latency` seconds later on
    the fake clock; waiting moves the clock to the next answer (or by the timeout)."""

    def __init__(self, client: Any, clock: FakeClock, latency: float = 0.005) -> None:
        super().__init__(client)
        self._clock = clock
        self._latency = latency
        self._due: list[tuple[float, int, Any, Any]] = []  # (when, seq, token, outcome)
        self._seq = 0
        self.requests = 0

    def start(self, table: str, items: list[bytes]) -> Any:
        token = super().start(table, items)
        ((_, outcome),) = self._done
        self._done = []
        self._seq += 1
        self.requests += 1
        heapq.heappush(self._due, (self._clock() + self._latency, self._seq, token, outcome))
        return token

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        clock = self._clock
        if not self._due or (timeout is not None and self._due[0][0] > clock() + timeout):
            clock.sleep(timeout or 0.0)
            return []
        clock.now = max(clock.now, self._due[0][0])
        out = []
        while self._due and self._due[0][0] <= clock.now:
            _, _, token, outcome = heapq.heappop(self._due)
            out.append((token, outcome))
        return out
