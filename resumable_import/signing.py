"""BatchWriteItem requests built and signed without botocore's client.

Profiling the plain boto3 client showed most of its CPU per item going to botocore's
parameter validation, serialization and response parsing, not to the network. Here each
item arrives already serialized by orjson (where it was read, see `pipeline`), the body is
those bytes joined, and the request is signed with SigV4 for the endpoint botocore
resolved, with botocore's credentials.

The signature is computed here rather than by botocore's SigV4Auth, which took about 10 µs
of CPU per item (a quarter of rimport's), nearly all of it rebuilding what never changes
from one BatchWriteItem to the next: the canonical headers, the scope, and the signing
key, which SigV4 derives from the secret key and the date alone. Here those are made once
(the key once per day and key pair), and each request costs the hash of its body, one
hash of the canonical request and one HMAC. `tests/test_signing.py` holds the result to
botocore's own signature, header for header. The one failure is `CredentialsError`, when
the credentials cannot be refreshed to sign with.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, NoCredentialsError
from botocore.utils import normalize_url_path

from .errors import Command, CredentialsError, Text

_SERVICE = "dynamodb"
_CONTENT_TYPE = "application/x-amz-json-1.0"
_TARGET = "DynamoDB_20120810."  # and the operation's name
_SIGNED = "content-type;host;x-amz-date;x-amz-target"
_SIGNED_WITH_TOKEN = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"


class Signer:
    """Builds and signs BatchWriteItem requests (and signs `verify`'s reads) for one
    endpoint, whose parts it keeps for whatever sends them."""

    def __init__(
        self, client: Any, credentials: Any, clock: Callable[[], float] = time.time
    ) -> None:
        self.url = client.meta.endpoint_url
        self._region = client.meta.region_name
        self._credentials = credentials
        self._clock = clock  # seconds since the epoch; a test's fixed instant
        parts = urlsplit(self.url)
        self.https = parts.scheme == "https"
        self.host, self.port, self.path = parts.hostname or "", parts.port, parts.path or "/"
        self._host_header = parts.netloc.removesuffix(":443" if self.https else ":80")
        # What botocore puts in the canonical request for this URL, asked of it once.
        template = AWSRequest(method="POST", url=self.url)
        self._head = "POST\n{}\n{}\ncontent-type:{}\nhost:{}\n".format(
            quote(normalize_url_path(parts.path), safe="/~"),
            SigV4Auth(None, _SERVICE, self._region).canonical_query_string(template),
            _CONTENT_TYPE,
            " ".join(self._host_header.split()),
        )
        self._scope_tail = f"/{self._region}/{_SERVICE}/aws4_request"
        self._keys: tuple[str, str, bytes] | None = None  # (date, secret, signing key)
        self._stamp: tuple[int, str] = (-1, "")  # (second, its SigV4 timestamp)

    def request(
        self, table: str, items: list[bytes], entries: bool = False
    ) -> tuple[bytes, dict[str, str], AWSRequest]:
        """The body, the signed headers, and botocore's request object for botocore's session
        (see `sign`)."""
        body, headers = self.sign(table, items, entries)
        return body, headers, AWSRequest(method="POST", url=self.url, data=body, headers=headers)

    def sign(
        self, table: str, items: list[bytes], entries: bool = False
    ) -> tuple[bytes, dict[str, str]]:
        """The body and the signed headers, in the order botocore would send them.

        `entries`: each of `items` is a whole write request already (`{"PutRequest": ...}`
        or `{"DeleteRequest": ...}`, from a BatchWriteItem request file), not an item.

        Raises CredentialsError when the credentials cannot be had (a refresh that failed,
        an expired SSO token): no request can be signed until the user renews them.
        """
        if entries:
            body = b"".join((
                b'{"RequestItems":{', orjson.dumps(table), b":[", b",".join(items), b"]}}"
            ))  # fmt: skip
        else:
            body = b"".join((
                b'{"RequestItems":{', orjson.dumps(table), b':[{"PutRequest":{"Item":',
                b'}},{"PutRequest":{"Item":'.join(items), b"}}]}}",
            ))  # fmt: skip
        return body, self.headers("BatchWriteItem", body)

    def headers(self, operation: str, body: bytes) -> dict[str, str]:
        """The signed headers of a request for `operation` (`BatchWriteItem`, `Scan`, ...)
        whose JSON body is `body`; CredentialsError as `sign` says."""
        target = _TARGET + operation
        try:
            if self._credentials is None:
                raise NoCredentialsError()
            # Frozen per request, as botocore does, so a refresh never mixes two key pairs.
            frozen = self._credentials.get_frozen_credentials()
        except BotoCoreError as e:
            raise CredentialsError(
                f"cannot sign requests to DynamoDB: {type(e).__name__}: {e}",
                Text(
                    "refresh your AWS credentials (aws sso login, a new AWS_SESSION_TOKEN, ...),"
                    " then ",
                    Command("resume"),
                    " continues",
                ),
            ) from e
        stamp = self._timestamp()
        token = frozen.token
        if token:
            signed = _SIGNED_WITH_TOKEN
            canonical = (
                f"{self._head}x-amz-date:{stamp}\nx-amz-security-token:{' '.join(token.split())}"
                f"\nx-amz-target:{target}\n\n{signed}\n"
            )
        else:
            signed = _SIGNED
            canonical = f"{self._head}x-amz-date:{stamp}\nx-amz-target:{target}\n\n{signed}\n"
        canonical += hashlib.sha256(body).hexdigest()
        day = stamp[:8]
        scope = day + self._scope_tail
        to_sign = "\n".join((
            "AWS4-HMAC-SHA256", stamp, scope,
            hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        ))  # fmt: skip
        key = self._signing_key(day, frozen.secret_key)
        signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        headers = {
            "Host": self._host_header,  # signed as is, and sent as is
            "Content-Type": _CONTENT_TYPE,
            "X-Amz-Target": target,
            "X-Amz-Date": stamp,
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    def _timestamp(self) -> str:
        """Now as SigV4 writes it (`20260102T030405Z`), formatted once a second."""
        now = int(self._clock())
        if now != self._stamp[0]:
            self._stamp = (now, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)))
        return self._stamp[1]

    def _signing_key(self, day: str, secret: str) -> bytes:
        """SigV4's key for this day, region and service, derived again only when the day or
        the secret key changes."""
        cached = self._keys
        if cached is not None and cached[0] == day and cached[1] == secret:
            return cached[2]
        key = f"AWS4{secret}".encode()
        for part in (day, self._region, _SERVICE, "aws4_request"):
            key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
        self._keys = (day, secret, key)
        return key
