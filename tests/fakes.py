"""A small in-memory stand-in for the two DynamoDB calls rimport makes, with fault knobs.

Used only where a test must inject faults deterministically; everything else runs against
DynamoDB Local.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from resumable_import.transport import SyncTransport


def client_error(code: str, message: str = "injected", status: int = 400) -> ClientError:
    response = {"Error": {"Code": code, "Message": message}}
    return ClientError({**response, "ResponseMetadata": {"HTTPStatusCode": status}}, "Batch")


class FakeDynamo:
    """One table keyed by `key_names`.

    Knobs:
      fail_next        errors (or "connection") raised by the next calls, in order
      poison           partition-key values whose presence fails the whole request with
                       ValidationException, as an item over 400 KB does
      unprocessed      partition-key value -> how many more times to hand it back unprocessed
      capacity         items per second the table takes (a one-second token bucket, as
                       DynamoDB's burst); the rest of a request comes back unprocessed, or
                       the whole request is throttled when nothing fits
    """

    def __init__(self, table: str = "t", key_names: tuple[str, ...] = ("pk",)) -> None:
        self.table = table
        self.key_names = key_names
        self.items: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.log: list[tuple[str, ...]] = []  # partition keys of each accepted put, in order
        self.fail_next: list[str | ClientError] = []
        self.poison: set[str] = set()
        self.unprocessed: dict[str, int] = {}
        self.calls = 0
        self.capacity: float | None = None
        self._tokens = 0.0
        self._refilled = time.monotonic()
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
        if fault == "connection":
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        if fault is not None:
            raise fault if isinstance(fault, ClientError) else client_error(fault, status=500)
        (table, requests), *_ = RequestItems.items()
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
                if n >= fits or self.unprocessed.get(key[0], 0) > 0:
                    if n < fits:
                        self.unprocessed[key[0]] -= 1
                    left.append({"PutRequest": {"Item": item}})
                    continue
                self.items[key] = item
                self.log.append(key)
        return {"UnprocessedItems": {table: left} if left else {}}

    def _admit(self, n: int) -> int:
        if self.capacity is None:
            return n
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._refilled) * self.capacity)
        self._refilled = now
        fits = min(n, int(self._tokens))
        if fits == 0:
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
