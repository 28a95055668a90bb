"""The SigV4 signature `signing.Signer` computes itself is botocore's, header for header."""

from __future__ import annotations

import datetime
from unittest import mock

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from resumable_import.signing import Signer

INSTANT = 1_767_323_045  # 2026-01-02 03:04:05 UTC


def botocore_headers(
    url: str, region: str, creds: Credentials, body: bytes, at: int = INSTANT,
    operation: str = "BatchWriteItem",
) -> dict[str, str]:  # fmt: skip
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Host": Signer(client(url, region), creds)._host_header,
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
        },
    )
    fixed = datetime.datetime.fromtimestamp(at, datetime.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
        SigV4Auth(creds.get_frozen_credentials(), "dynamodb", region).add_auth(request)
    return dict(request.headers.items())


def client(url: str, region: str) -> object:
    return botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=url, region_name=region, aws_access_key_id="a",
        aws_secret_access_key="b",
    )  # fmt: skip


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000", "https://dynamodb.eu-west-1.amazonaws.com",
     "https://example.com:8443/some/path/", "http://127.0.0.1:80/"],
)  # fmt: skip
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE//token+with/slashes=="])
@pytest.mark.parametrize("entries", [False, True])
def test_signature_is_botocores(url: str, token: str | None, entries: bool) -> None:
    region = "eu-west-1"
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    signer = Signer(client(url, region), creds, clock=lambda: INSTANT + 0.7)
    items = [b'{"pk":{"S":"a"}}', b'{"pk":{"S":"b\\u00e9"},"n":{"N":"1"}}']
    if entries:
        items = [b'{"DeleteRequest":{"Key":{"pk":{"S":"a"}}}}']
    body, headers = signer.sign("my-table", items, entries)
    assert headers == botocore_headers(url, region, creds, body)
    assert list(headers) == list(botocore_headers(url, region, creds, body))
    again, _, request = signer.request("my-table", items, entries)
    assert again == body and dict(request.headers.items()) == headers


def test_key_follows_the_day_and_the_secret() -> None:
    """The cached signing key is derived again on a new day and after a key rotation."""
    url, region = "http://localhost:8000", "us-east-1"
    now = [float(INSTANT)]
    creds = Credentials("AKID", "first")
    signer = Signer(client(url, region), creds, clock=lambda: now[0])
    body, headers = signer.sign("t", [b"{}"])
    assert headers == botocore_headers(url, region, creds, body)
    now[0] += 86_400
    body, headers = signer.sign("t", [b"{}"])
    assert headers == botocore_headers(url, region, creds, body, INSTANT + 86_400)
    rotated = Credentials("AKID2", "second")
    signer._credentials = rotated
    body, headers = signer.sign("t", [b"{}"])
    assert headers == botocore_headers(url, region, rotated, body, INSTANT + 86_400)


@pytest.mark.parametrize("operation", ["Scan", "BatchGetItem"])
def test_verifys_reads_are_signed_as_botocore_signs_them(operation: str) -> None:
    url, region = "https://dynamodb.eu-west-1.amazonaws.com", "eu-west-1"
    creds = Credentials("AKIDEXAMPLE", "secret", "token")
    signer = Signer(client(url, region), creds, clock=lambda: INSTANT)
    body = b'{"TableName":"t","Segment":0,"TotalSegments":8,"ConsistentRead":true}'
    expected = botocore_headers(url, region, creds, body, operation=operation)
    assert signer.headers(operation, body) == expected
