"""The hand-off of staged objects to DynamoDB's ImportTable, and following it to its end.

ImportTable creates the table itself (on-demand, with the run's key) and consumes no write
capacity. Its ClientToken is derived from the run id, so a resumed run that never heard
the answer asks again with the same token and is given the same import, never a second
(DynamoDB keeps a token 8 hours). Once the ARN is known it is in the ledger, and a resume
only describes it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .errors import ServiceError
from .keys import KeySpec

RUNNING_STATES = ("IN_PROGRESS", "CANCELLING")
POLL_SECONDS = (0.25, 5.0)  # the first wait, and the longest: an import takes minutes


def client_token(run_id: str) -> str:
    """The same for every attempt of one run, and no other run's."""
    return f"rimport-{run_id}"


def start_import(
    client: Any, run_id: str, table: str, keys: tuple[KeySpec, ...], bucket: str, prefix: str
) -> dict[str, Any]:
    """Ask ImportTable to create `table` from the gzip objects under `prefix`; its
    ImportTableDescription (the same import again for the same run)."""
    kinds = ("HASH", "RANGE")
    request = {
        "ClientToken": client_token(run_id),
        "S3BucketSource": {"S3Bucket": bucket, "S3KeyPrefix": prefix},
        "InputFormat": "DYNAMODB_JSON",
        "InputCompressionType": "GZIP",
        "TableCreationParameters": {
            "TableName": table,
            "AttributeDefinitions": [
                {"AttributeName": k.name, "AttributeType": k.type} for k in keys
            ],
            "KeySchema": [
                {"AttributeName": k.name, "KeyType": kind}
                for k, kind in zip(keys, kinds, strict=False)
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    }
    return _call(lambda: client.import_table(**request), "ImportTable", table)


def describe(client: Any, arn: str) -> dict[str, Any]:
    return _call(lambda: client.describe_import(ImportArn=arn), "DescribeImport", arn)


def follow(
    client: Any,
    first: dict[str, Any],
    told: Callable[[dict[str, Any]], None],
    poll: tuple[float, float] = POLL_SECONDS,
) -> dict[str, Any]:
    """Describe the import until it has ended, waiting twice as long each time up to the
    longest wait; `told` each description as it comes."""
    said = first
    told(said)
    wait, longest = poll
    while said.get("ImportStatus") in RUNNING_STATES:
        time.sleep(wait)
        wait = min(longest, wait * 2)
        said = describe(client, said["ImportArn"])
        told(said)
    return said


def figures(said: dict[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of an ImportTableDescription."""
    return {
        "arn": said.get("ImportArn"),
        "status": said.get("ImportStatus"),
        "processed_items": said.get("ProcessedItemCount"),
        "processed_bytes": said.get("ProcessedSizeBytes"),
        "imported_items": said.get("ImportedItemCount"),
        "error_count": said.get("ErrorCount"),
        "failure_code": said.get("FailureCode"),
        "failure_message": said.get("FailureMessage") or _log_group(said),
    }


def _log_group(said: dict[str, Any]) -> str | None:
    group = said.get("CloudWatchLogGroupArn")
    return f"items refused are logged in {group}" if group and said.get("ErrorCount") else None


def _call(call: Callable[[], dict[str, Any]], what: str, name: str) -> dict[str, Any]:
    try:
        return dict(call()["ImportTableDescription"])
    except ClientError as e:
        error = e.response.get("Error", {})
        raise ServiceError(
            f"{what} of {name} refused: {error.get('Code')}: {error.get('Message')}",
            "check the table name, the S3 prefix and the credentials' dynamodb:ImportTable "
            "and s3:GetObject permissions",
        ) from None
    except BotoCoreError as e:
        raise ServiceError(
            f"{what} of {name}: cannot reach DynamoDB ({e})",
            "check the network and the endpoint, then resume the run",
        ) from None
