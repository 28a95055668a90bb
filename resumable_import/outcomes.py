"""What a BatchWriteItem answer means for the items in it: one verdict per answer.

`classify` is pure: it looks at what the transport delivered (a response dict, or the
exception botocore would raise) and says which of six things happened. The writer decides
what to do about each; keeping the two apart lets every kind of answer be tested alone.

    WRITTEN      every item is in
    PARTIAL      some came back as UnprocessedItems; the rest are in
    THROTTLED    the request as a whole was refused for capacity (nothing written)
    TRANSIENT    no answer from DynamoDB: connection refused or dropped, timeout, 5xx
    ITEM         the request was refused because of something in it (ValidationException,
                 413 from a proxy): split it until the item at fault stands alone
    FATAL        the next request would fail the same way (missing table, credentials,
                 untrusted certificate, another 4xx): stop the run, resumably
"""

from __future__ import annotations

import enum
import html
import re
import ssl
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import SSLError as BotoSSLError

from .errors import hint_for


class Kind(enum.Enum):
    WRITTEN = "written"
    PARTIAL = "partial"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    ITEM = "item"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    code: str = ""
    message: str = ""
    left: tuple[Any, ...] = ()  # PARTIAL: the UnprocessedItems requests handed back
    retryable: bool = True  # ITEM: whether an item refused alone may succeed later
    hint: str | None = None  # FATAL: what the user can do about it


WRITTEN = Verdict(Kind.WRITTEN)

THROTTLE_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
     "RequestLimitExceeded", "TooManyRequestsException"}
)  # fmt: skip
TRANSIENT_CODES = frozenset(
    {"InternalServerError", "InternalFailure", "ServiceUnavailable", "RequestTimeout",
     "RequestTimeoutException", "TransactionInProgressException"}
)  # fmt: skip
# Errors that blame something in the request's items rather than the request as a whole.
# A validation error is the item's own fault and stays a fault; an item collection over its
# size limit may fit later, after the user makes room, so `retry-failed` tries it again.
ITEM_CODES = {"ValidationException": False, "ItemCollectionSizeLimitExceededException": True}
TOO_LARGE = (
    "the request was too large for something between rimport and DynamoDB "
    "(HTTP 413 Request Entity Too Large, e.g. from a proxy), even with this item alone"
)
CA_HINT = (
    "if a proxy or a private CA signs the endpoint's certificate, point AWS_CA_BUNDLE (or "
    "ca_bundle in your AWS config) at that CA's certificate file"
)


def classify(outcome: Any, table: str) -> Verdict:
    """The verdict on one answer to a BatchWriteItem into `table`."""
    if isinstance(outcome, dict):
        left = outcome.get("UnprocessedItems")
        if not left or not (left := left.get(table)):
            return WRITTEN
        return Verdict(Kind.PARTIAL, "Unprocessed", f"{len(left)} item(s) returned unprocessed",
                       left=tuple(left))  # fmt: skip
    if isinstance(outcome, ClientError):
        return _client_error(outcome)
    if isinstance(outcome, BotoSSLError) or _cert_error(outcome):
        return Verdict(
            Kind.FATAL, "SSLError", f"TLS certificate not trusted: {_cause(outcome)}", hint=CA_HINT
        )
    if isinstance(outcome, BotoConnectionError | HTTPClientError | OSError):
        return Verdict(Kind.TRANSIENT, type(outcome).__name__, _cause(outcome))
    if isinstance(outcome, BotoCoreError):
        return Verdict(Kind.FATAL, type(outcome).__name__, str(outcome), hint=hint_for(""))
    return Verdict(Kind.FATAL, type(outcome).__name__, str(outcome))


def _client_error(error: ClientError) -> Verdict:
    details = error.response.get("Error", {})
    code = details.get("Code") or "Unknown"
    message = details.get("Message") or str(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    if code.startswith("HTTP"):  # not DynamoDB's JSON: a page from something in between
        message = _plain(message)
    if code in THROTTLE_CODES or status == 429:
        return Verdict(Kind.THROTTLED, code, message)
    if code in ITEM_CODES:
        return Verdict(Kind.ITEM, code, message, retryable=ITEM_CODES[code])
    if status == 413:
        return Verdict(Kind.ITEM, code, TOO_LARGE, retryable=False)
    if code in TRANSIENT_CODES or status >= 500 or status == 408:
        return Verdict(Kind.TRANSIENT, code, message)
    return Verdict(Kind.FATAL, code, message, hint=hint_for(code))


def _cert_error(error: Any) -> bool:
    """A connection error whose cause is a certificate that does not verify."""
    cause = getattr(error, "kwargs", {}).get("error") if isinstance(error, BotoCoreError) else error
    return isinstance(cause, ssl.SSLCertVerificationError)


def _cause(error: BaseException) -> str:
    """The message, with the underlying error botocore wraps ("Could not connect" alone
    does not say whether the port was closed, the name unknown or the certificate bad)."""
    message = str(error)
    cause = getattr(error, "kwargs", {}).get("error") if isinstance(error, BotoCoreError) else None
    if cause is not None and str(cause) not in message:
        message = f"{message} ({type(cause).__name__}: {cause})"
    return message


def _plain(text: str, limit: int = 160) -> str:
    """An HTML error page as a short line of text: its title, or its words."""
    if title := re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S):
        text = title.group(1)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())
    return text[:limit] or "(no message)"
