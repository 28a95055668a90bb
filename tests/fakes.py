"""A small in-memory stand-in for the two DynamoDB calls rimport makes, with fault knobs.

Used where a test must inject faults deterministically, and as the first backend of the
contract suite (`test_contract.py`), which also checks that what it refuses, and how it
words it, is what DynamoDB Local answers to the same request.
"""

from __future__ import annotations

import base64
import heapq
import random
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
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
    """One table keyed by `key_names` (all of type S). Time comes from `clock`, so a test
    can run it on simulated time (with `FakeClock` and `SimTransport`).

    A request is refused as DynamoDB Local refuses it, in the same order and words: a bad
    value (numbers, sets, NULL), an item over 400 KB, no items or more than 25, a
    missing table, then item by item a key missing, of another type or empty, or repeated.

    Knobs:
      fail_next        errors (or "connection") raised by the next calls, in order
      poison           partition-key values whose presence fails the whole request with
                       ValidationException, as an item over 400 KB does
      unprocessed      partition-key value -> how many more times to hand it back unprocessed
                       (a put or a delete alike)
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
            raise client_error("ResourceNotFoundException", NO_TABLE)
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
        # A delete is checked and keyed by its Key, as a put by its item.
        items = [r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"]
                 for r in requests]  # fmt: skip
        if self.on_call:
            self.on_call(items)
        if refused := self._refusal(table, items):
            raise client_error("ValidationException", refused)
        if table != self.table:
            raise client_error("ResourceNotFoundException", NO_TABLE)
        if refused := self._key_refusal(items):
            raise client_error("ValidationException", refused)
        keys = [self._key(i) for i in items]
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
                    left.append(requests[n])
                    continue
                if "DeleteRequest" in requests[n]:
                    self.items.pop(key, None)
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

    def _refusal(self, table: str, items: list[dict[str, Any]]) -> str | None:
        """What DynamoDB Local says of a request before it looks for the table, checked in
        its order: each item's values and size in turn, then the number of items."""
        for item in items:
            for value in item.values():
                if refused := _value_refusal(value):
                    return refused
            poisoned = item.get(self.key_names[0], {}).get("S") in self.poison
            if poisoned or sum(len(n.encode()) + _size(v) for n, v in item.items()) > MAX_ITEM:
                return "Item size has exceeded the maximum allowed size"
        if not items:
            return f"The batch write request list for a table cannot be null or empty: {table}"
        if len(items) > 25:
            return "Too many items requested for the BatchWriteItem call"
        return None

    def _key_refusal(self, items: list[dict[str, Any]]) -> str | None:
        """What DynamoDB Local says of the items' keys (all of type S here), item by item."""
        seen = set()
        for item in items:
            for name in self.key_names:
                if name not in item:
                    return "One of the required keys was not given a value"
                if set(item[name]) != {"S"}:
                    return "One or more parameter values were invalid: Type mismatch for key"
                if item[name]["S"] == "":
                    return (
                        "One or more parameter values are not valid. The AttributeValue for a "
                        f"key attribute cannot contain an empty string value. Key: {name}"
                    )
            key = self._key(item)
            if key in seen:
                return "Provided list of item keys contains duplicates"
            seen.add(key)
        return None

    def _key(self, item: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(item[n]["S"] for n in self.key_names)


NO_TABLE = "Cannot do operations on a non-existent table"
MAX_ITEM = 400 * 1024  # bytes of names and values; DynamoDB Local takes this, not one more
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_EMPTY_SET = {
    "SS": "One or more parameter values were invalid: An string set  may not be empty",
    "NS": "One or more parameter values were invalid: An number set  may not be empty",
    "BS": "One or more parameter values were invalid: Binary sets should not be empty",
}


def _value_refusal(value: dict[str, Any]) -> str | None:
    """DynamoDB Local's word on one attribute value (in DynamoDB JSON), or None if it is
    fine: numbers of 38 significant digits within 1E-130..9.99E+125, sets neither empty nor
    repeating a member, NULL only true, one type per value."""
    if len(value) != 1:
        return (
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one "
            "of the supported datatypes"
        )
    ((kind, x),) = value.items()
    if kind == "N":
        return _number_refusal(x)
    if kind in _EMPTY_SET:
        if not x:
            return _EMPTY_SET[kind]
        if kind == "NS":
            if refused := next(filter(None, map(_number_refusal, x)), None):
                return refused
            if len({Decimal(n) for n in x}) < len(x):
                return "Input collection contains duplicates"
        elif len(set(x)) < len(x):
            if kind == "SS":
                return (
                    f"One or more parameter values were invalid: Input collection [{', '.join(x)}] "
                    "contains duplicates"
                )
            return (
                "One or more parameter values were invalid: Input collection of type BS "
                "contains duplicates."
            )
    if kind == "NULL" and x is not True:
        return (
            "One or more parameter values were invalid: Null attribute value types must have "
            "the value of true"
        )
    if kind in ("L", "M"):
        for inner in x if kind == "L" else x.values():
            if refused := _value_refusal(inner):
                return refused
    return None


def _number_refusal(text: str) -> str | None:
    if not _NUMBER.fullmatch(text):
        return "A value provided cannot be converted into a number"
    number = Decimal(text)
    if not number:
        return None
    if _significant(number) > 38:
        return "DynamoDB only supports precision up to 38 digits"
    if number.adjusted() > 125:
        return (
            "Number overflow. Attempting to store a number with magnitude larger than supported "
            "range"
        )
    if number.adjusted() < -130:
        return (
            "Number underflow. Attempting to store a number with magnitude smaller than "
            "supported range"
        )
    return None


def _significant(number: Decimal) -> int:
    return len("".join(map(str, number.as_tuple().digits)).strip("0"))


def _size(value: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it, near enough for the 400 KB limit:
    strings in UTF-8, binary decoded, numbers a byte per two significant digits and one."""
    ((kind, x),) = value.items()
    if kind == "S":
        return len(x.encode())
    if kind == "B":
        return len(base64.b64decode(x)) if isinstance(x, str) else len(x)
    if kind == "N":
        return (_significant(Decimal(x)) + 1) // 2 + 1
    if kind in ("SS", "NS", "BS"):
        return sum(_size({kind[0]: e}) for e in x)
    if kind == "L":
        return 3 + sum(1 + _size(e) for e in x)
    if kind == "M":
        return 3 + sum(1 + len(n.encode()) + _size(e) for n, e in x.items())
    return 1  # BOOL, NULL


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
