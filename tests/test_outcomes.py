"""Every kind of answer a BatchWriteItem can get, and the verdict on it."""

from __future__ import annotations

import ssl

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    SSLError,
)
from fakes import TOO_LARGE_PAGE, client_error

from resumable_import.cli.hints import spelled
from resumable_import.outcomes import WRITTEN, Kind, classify

URL = "https://dynamodb.example"


def test_an_answer_with_nothing_left_is_written() -> None:
    assert classify({"UnprocessedItems": {}}, "t") is WRITTEN
    assert classify({}, "t") is WRITTEN
    assert classify({"UnprocessedItems": {"other": [{}]}}, "t") is WRITTEN


def test_items_handed_back_are_partial_and_carried() -> None:
    left = [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]
    verdict = classify({"UnprocessedItems": {"t": left}}, "t")
    assert (verdict.kind, verdict.code, verdict.left) == (Kind.PARTIAL, "Unprocessed", (left[0],))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("ProvisionedThroughputExceededException"), Kind.THROTTLED),
        (client_error("ThrottlingException"), Kind.THROTTLED),
        (client_error("RequestLimitExceeded"), Kind.THROTTLED),
        (client_error("HTTP429", "slow down", status=429), Kind.THROTTLED),
        (client_error("InternalServerError", status=500), Kind.TRANSIENT),
        (client_error("ServiceUnavailable", status=503), Kind.TRANSIENT),
        (client_error("HTTP502", "<html>Bad Gateway</html>", status=502), Kind.TRANSIENT),
        (client_error("SomethingNew", status=504), Kind.TRANSIENT),
        (EndpointConnectionError(endpoint_url=URL), Kind.TRANSIENT),
        (ConnectionClosedError(endpoint_url=URL), Kind.TRANSIENT),
        (ReadTimeoutError(endpoint_url=URL), Kind.TRANSIENT),
        (ConnectionResetError("reset by peer"), Kind.TRANSIENT),
        (client_error("ValidationException"), Kind.ITEM),
        (client_error("ItemCollectionSizeLimitExceededException"), Kind.ITEM),
        (client_error("HTTP413", TOO_LARGE_PAGE, status=413), Kind.ITEM),
        (client_error("ResourceNotFoundException"), Kind.FATAL),
        (client_error("UnrecognizedClientException"), Kind.FATAL),
        (client_error("AccessDeniedException"), Kind.FATAL),
        (client_error("HTTP404", "<html>Not Found</html>", status=404), Kind.FATAL),
        (SSLError(endpoint_url=URL, error="certificate verify failed"), Kind.FATAL),
        (NoCredentialsError(), Kind.FATAL),
    ],
)
def test_each_error_gets_its_verdict(error: Exception, kind: Kind) -> None:
    assert classify(error, "t").kind is kind


def test_a_validation_error_alone_is_final_a_full_item_collection_is_not() -> None:
    assert classify(client_error("ValidationException"), "t").retryable is False
    assert classify(client_error("ItemCollectionSizeLimitExceededException"), "t").retryable


def test_a_413_page_says_what_was_too_large_without_its_html() -> None:
    verdict = classify(client_error("HTTP413", TOO_LARGE_PAGE, status=413), "t")
    assert (verdict.code, verdict.retryable) == ("HTTP413", False)
    assert "too large for something between rimport and DynamoDB" in verdict.message
    assert "<" not in verdict.message


def test_an_html_error_page_is_reduced_to_its_title() -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>oops</h1></body></html>"
    verdict = classify(client_error("HTTP502", page, status=502), "t")
    assert verdict.message == "502 Bad Gateway"


def test_an_untrusted_certificate_is_fatal_and_names_the_ca_bundle() -> None:
    for error in (
        SSLError(endpoint_url=URL, error="certificate verify failed"),
        EndpointConnectionError(endpoint_url=URL, error=ssl.SSLCertVerificationError("bad")),
        ssl.SSLCertVerificationError("self-signed certificate"),
    ):
        verdict = classify(error, "t")
        assert (verdict.kind, verdict.code) == (Kind.FATAL, "SSLError"), error
        assert "AWS_CA_BUNDLE" in (verdict.hint or "")


def test_a_connection_error_names_its_cause() -> None:
    error = EndpointConnectionError(endpoint_url=URL, error=ConnectionRefusedError(111, "refused"))
    assert "ConnectionRefusedError" in classify(error, "t").message


def test_a_fatal_error_carries_the_hint_for_its_code() -> None:
    verdict = classify(client_error("ResourceNotFoundException", "no table"), "t")
    assert (verdict.code, verdict.message) == ("ResourceNotFoundException", "no table")
    assert "--table" in spelled(verdict.hint or "")
