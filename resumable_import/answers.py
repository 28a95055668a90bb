"""A BatchWriteItem answer as botocore would have given it, whichever transport carried it.

The error contract, shared by every transport: a request's outcome is the parsed JSON
answer of a 200, or the exception botocore would have raised, so the writer cannot tell
them apart: `ClientError` (status in ResponseMetadata; code `HTTP<status>` when the body is
not DynamoDB's JSON), `EndpointConnectionError` (no connection), `SSLError` (the endpoint's
certificate or TLS handshake was refused), `ConnectionClosedError` (closed or garbled after
the request went out), `ReadTimeoutError` (no complete answer in time). The network faults
are the transports' to raise; this module shapes what came back with a status.
"""

from __future__ import annotations

import zlib
from http import HTTPStatus
from typing import Any

import orjson
from botocore.exceptions import ClientError, ConnectionClosedError


def outcome(url: str, status: int, body: bytes, crc: str | None = None, reason: str = "") -> Any:
    """The answer as the writer takes it: a 200's JSON, else the error botocore raises."""
    if crc is not None and zlib.crc32(body) != int(crc):
        return ConnectionClosedError(endpoint_url=url)  # corrupted: send again
    if status == 200:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            return payload
    return client_error(status, body, reason)


def client_error(status: int, body: bytes, reason: str = "") -> ClientError:
    """DynamoDB's error as botocore reports it; for an answer that is not DynamoDB's JSON
    (a proxy's HTML page), code `HTTP<status>` and a one-line summary instead of the page."""
    try:
        payload = orjson.loads(body)
        code = str(payload.get("__type", "")).rpartition("#")[2]
        message = payload.get("message") or payload.get("Message") or ""
    except (orjson.JSONDecodeError, AttributeError):
        code, message = "", ""
        if not reason:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = ""
        what = f"{status} {reason}".strip()
        message = f"{what} from something between rimport and DynamoDB (a proxy?)"
        if status == 200:
            message = f"{what} with an answer that is not DynamoDB's, from something between"
            message += " rimport and DynamoDB (a proxy?)"
    error = {"Code": code or f"HTTP{status}", "Message": message}
    return ClientError(
        {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "BatchWriteItem"
    )
