"""How `verify` reads the table: several requests in flight, answers as DynamoDB's JSON.

Profiling `verify` against DynamoDB Local showed most of its time in botocore parsing each
BatchGetItem and Scan answer into Python objects (its shape walk costs more than the whole
rest), one request at a time. So the reads go as the import's writes do: through
`transport.HttpTransport`, several in flight on persistent connections, each answer parsed
by orjson. An answer is then in DynamoDB JSON already (numbers as text, binary as base64),
the form the dump's items take in verify's scratch database.

A client that is not botocore's own (the tests' fault-injecting wrappers), or an endpoint
behind a proxy, is asked through its methods instead, one request at a time; its answers
come the same way, and only their binary values differ (bytes, which `compare` takes too).

`Asker` keeps the requests: what is out, what waits to be asked again after a pause
(throttled, or a connection lost), and which failure ends the read.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import time
from collections.abc import Hashable
from typing import Any, Protocol

import orjson
from botocore.client import BaseClient
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.utils import get_environ_proxies

from .errors import ServiceError, TableError
from .transport import HttpTransport, SyncTransport

RETRIES = 12  # answers in a row that made no progress before a read gives up
THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException",
             "RequestLimitExceeded", "InternalServerError")  # fmt: skip
LOST = (ConnectionClosedError, EndpointConnectionError, ReadTimeoutError)


class Reads(Protocol):
    def send(self, operation: str, request: dict[str, Any]) -> Any:
        """Ask `operation` (`BatchGetItem`, `Scan`) with `request` as its JSON body; return
        a token its outcome will carry."""

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        """Outcomes that arrived within `timeout`: (token, answer dict or exception)."""

    def close(self) -> None: ...


class HttpReads:
    """The fast way: `HttpTransport`, the body JSON as orjson writes it."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self._http = HttpTransport(client, credentials)

    def send(self, operation: str, request: dict[str, Any]) -> Any:
        return self._http.send(operation, orjson.dumps(request))

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        return self._http.wait(timeout)

    def close(self) -> None:
        self._http.close()


class SyncReads(SyncTransport):
    """Each request asked of the client's method (`batch_get_item`, `scan`) in `send`."""

    def send(self, operation: str, request: dict[str, Any]) -> Any:
        name = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
        return self._deliver(lambda: getattr(self._client, name)(**_as_botocore(request)))


def _as_botocore(request: dict[str, Any]) -> dict[str, Any]:
    """The keys a BatchGetItem asks for with their binary parts as bytes, which botocore
    encodes itself (it would encode base64 text once more)."""
    for ask in request.get("RequestItems", {}).values():
        ask["Keys"] = [{n: {"B": base64.b64decode(v["B"])} if "B" in v and isinstance(v["B"], str)
                        else v for n, v in key.items()} for key in ask["Keys"]]  # fmt: skip
    return request


def open_reads(client: Any) -> Reads:
    """The fast way for botocore's own client, unless a proxy is configured for its
    endpoint (then the client itself, which honours it)."""
    if isinstance(client, BaseClient) and not get_environ_proxies(client.meta.endpoint_url):
        return HttpReads(client, client._get_credentials())
    return SyncReads(client)


def pause(attempt: int) -> float:
    """Seconds to wait before asking again after `attempt` answers without progress."""
    return min(5.0, 0.05 * 2**attempt)


class Asker:
    """Requests to one table, each with a `tag` of the caller's; a failed one is either
    asked again after a pause (throttled, connection lost: `attempt` counts them) or ends
    the read with a clear error."""

    def __init__(self, reads: Reads, table: str, what: str) -> None:
        self._reads, self._table, self._what = reads, table, what
        self._out: dict[Any, tuple[Hashable, str, dict[str, Any], int]] = {}
        self._later: list[tuple[float, int, Hashable, str, dict[str, Any], int]] = []
        self._order = itertools.count()

    @property
    def busy(self) -> int:
        """Requests out or waiting to go out again."""
        return len(self._out) + len(self._later)

    def ask(
        self, tag: Hashable, operation: str, request: dict[str, Any], attempt: int = 0,
        after: float = 0.0,
    ) -> None:  # fmt: skip
        """Send the request now, or after `after` seconds."""
        if after > 0:
            due = time.monotonic() + after
            heapq.heappush(self._later, (due, next(self._order), tag, operation, request, attempt))
            return
        self._out[self._reads.send(operation, request)] = (tag, operation, request, attempt)

    def answers(self) -> list[tuple[Hashable, dict[str, Any], int]]:
        """The next answers that came (tag, answer, attempt), waiting for at least one
        (unless nothing is out); the failed requests are asked again, or raise."""
        while self._out or self._later:
            now = time.monotonic()
            while self._later and self._later[0][0] <= now:
                _, _, tag, operation, request, attempt = heapq.heappop(self._later)
                self.ask(tag, operation, request, attempt)
            timeout = max(0.0, self._later[0][0] - now) if self._later else None
            if not self._out:
                time.sleep(timeout or 0.0)
                continue
            done = []
            for token, outcome in self._reads.wait(timeout):
                tag, operation, request, attempt = self._out.pop(token)
                if isinstance(outcome, dict):
                    done.append((tag, outcome, attempt))
                elif self._again(outcome, attempt):
                    self.ask(tag, operation, request, attempt + 1, pause(attempt))
            if done:
                return done
        return []

    def _again(self, error: Exception, attempt: int) -> bool:
        """Whether a failed request is to be asked again; else the error to stop with."""
        table, what = self._table, self._what
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise TableError(f"table {table!r} was deleted while it was verified") from None
            if code in THROTTLED and attempt < RETRIES:
                return True
            raise ServiceError(f"{what} table {table!r} failed: {code or error}") from None
        if isinstance(error, LOST) and attempt < RETRIES:
            return True
        raise ServiceError(f"{what} table {table!r} failed: {error}") from None


def consumed(answer: dict[str, Any]) -> float | None:
    """The read units an answer says it consumed (None when it does not say)."""
    used = answer.get("ConsumedCapacity")
    if used is None:
        return None
    total, said = 0.0, False
    for one in used if isinstance(used, list) else (used,):
        if "CapacityUnits" in one:
            total, said = total + float(one["CapacityUnits"]), True
    return total if said else None
