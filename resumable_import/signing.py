"""BatchWriteItem requests built and signed without botocore's client.

Profiling the plain boto3 client showed most of its CPU per item going to botocore's
parameter validation, serialization and response parsing, not to the network. Here each
item arrives already serialized by orjson (where it was read, see `pipeline`), the body is
those bytes joined, and botocore's SigV4Auth signs it with botocore's credentials for the
endpoint botocore resolved. The one failure is `CredentialsError`, when the credentials
cannot be refreshed to sign with.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError

from .errors import Command, CredentialsError, Text


class Signer:
    """Builds and signs BatchWriteItem requests (and signs `verify`'s reads) for one
    endpoint, whose parts it keeps for whatever sends them."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self.url = client.meta.endpoint_url
        self._region = client.meta.region_name
        self._credentials = credentials
        parts = urlsplit(self.url)
        self.https = parts.scheme == "https"
        self.host, self.port, self.path = parts.hostname or "", parts.port, parts.path or "/"
        self._host_header = parts.netloc.removesuffix(":443" if self.https else ":80")

    def request(
        self, table: str, items: list[bytes], entries: bool = False
    ) -> tuple[bytes, dict[str, str], AWSRequest]:
        """The body, the signed headers, and botocore's request object for botocore's session.

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
        headers, request = self.sign("BatchWriteItem", body)
        return body, headers, request

    def sign(self, operation: str, body: bytes) -> tuple[dict[str, str], AWSRequest]:
        """The signed headers of a request for `operation` (`BatchWriteItem`, `Scan`, ...)
        with `body` as it is, and botocore's request object; CredentialsError as above."""
        request = AWSRequest(
            method="POST",
            url=self.url,
            data=body,
            headers={
                "Host": self._host_header,  # signed as is, and sent as is
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"DynamoDB_20120810.{operation}",
            },
        )
        try:
            # Frozen per request, as botocore does, so a refresh never mixes two key pairs.
            frozen = self._credentials.get_frozen_credentials()
            SigV4Auth(frozen, "dynamodb", self._region).add_auth(request)
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
        return dict(request.headers.items()), request
