"""Write one batch with BatchWriteItem until every item is in or accounted for.

Three kinds of failure, three answers:
- transient (throttling, 5xx, a dropped connection, items handed back unprocessed): back off
  with full jitter and send again what is left;
- one bad item (ValidationException fails the whole request): split the batch in halves
  until the bad item stands alone, write the rest, and report that one as a dead letter;
- anything else (missing table, bad credentials), or a transient fault that outlasts every
  attempt: raise ServiceError, because the next batch would fail the same way. The caller
  keeps its checkpoint and the run can be resumed once the cause is gone.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .errors import ServiceError, hint_for
from .items import Item, key_of

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
# Errors that blame something in the request's items rather than the request as a whole.
# A validation error is the item's own fault and stays a fault; an item collection over its
# size limit may fit later, after the user makes room, so `retry-failed` tries it again.
ITEM_CODES = {"ValidationException": False, "ItemCollectionSizeLimitExceededException": True}
UNPROCESSED = "Unprocessed"


class Interrupted(Exception):
    """The writer was told to stop while it waited to retry."""


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
    """An item that could not be written: `position` is its place in the list given to write."""

    position: int
    code: str
    message: str
    attempts: int
    retryable: bool


RetryHook = Callable[[str, int, float], None]


class BatchWriter:
    """Writes batches of items to one table through a botocore DynamoDB client.

    Thread-safe as long as the client is (botocore clients are).
    """

    def __init__(
        self,
        client: Any,
        table: str,
        key_names: tuple[str, ...],
        policy: RetryPolicy | None = None,
        *,
        stop: threading.Event | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        self._client = client
        self._table = table
        self._key_names = key_names
        self._policy = policy or RetryPolicy()
        self._stop = stop or threading.Event()
        self._on_retry = on_retry

    def write(self, items: list[Item]) -> list[Failure]:
        """Write `items` (at most 25, no repeated key); return those that could not be."""
        failures: list[Failure] = []
        if items:
            self._write(list(enumerate(items)), failures)
        return failures

    def _write(self, pending: list[tuple[int, Item]], failures: list[Failure]) -> None:
        fruitless = 0
        sends = 0
        while True:
            sends += 1
            try:
                response = self._client.batch_write_item(
                    RequestItems={self._table: [{"PutRequest": {"Item": i}} for _, i in pending]}
                )
            except ClientError as e:
                error = e.response.get("Error", {})
                code = error.get("Code", "Unknown")
                message = error.get("Message", str(e))
                status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code in ITEM_CODES:
                    if len(pending) == 1:
                        failures.append(
                            Failure(pending[0][0], code, message, sends, ITEM_CODES[code])
                        )
                        return
                    half = len(pending) // 2
                    self._write(pending[:half], failures)
                    self._write(pending[half:], failures)
                    return
                if code not in TRANSIENT_CODES and status < 500:
                    raise ServiceError(
                        f"DynamoDB refused the write to table {self._table!r}: {code}: {message}",
                        hint_for(code),
                    ) from None
            except (BotoConnectionError, HTTPClientError) as e:
                code, message = type(e).__name__, str(e)
            except BotoCoreError as e:
                raise ServiceError(f"cannot write to DynamoDB: {e}", hint_for("")) from None
            else:
                left = response.get("UnprocessedItems", {}).get(self._table, [])
                if not left:
                    return
                keys = {key_of(r["PutRequest"]["Item"], self._key_names) for r in left}
                still = [p for p in pending if key_of(p[1], self._key_names) in keys]
                if len(still) < len(pending):
                    fruitless = -1  # progress: the attempt budget starts over
                pending = still or pending
                code = UNPROCESSED
                message = f"{len(pending)} item(s) returned unprocessed (throttled)"
            fruitless += 1
            if fruitless >= self._policy.max_attempts:
                if code == UNPROCESSED:
                    failures.extend(Failure(p, code, message, sends, True) for p, _ in pending)
                    return
                raise ServiceError(
                    f"DynamoDB kept failing after {sends} attempts: {code}: {message}",
                    "check that the endpoint is up and the table is not throttled, "
                    "then run `rimport resume`",
                )
            delay = self._policy.delay(fruitless)
            if self._on_retry:
                self._on_retry(code, sends, delay)
            if self._stop.wait(delay):
                raise Interrupted
