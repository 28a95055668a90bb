"""The hand-off of staged objects to DynamoDB's bulk engines, and following one to its end.

`ImportTable` ("import") creates a new table itself (on-demand, with the run's key) and
consumes no write capacity; `StartBulkPutItems` ("bulk") writes into an existing table,
at most `MaxWriteRequestUnits` a second, and reports the items it refused under
`PREFIX/report/`. Each call's ClientToken is derived from the run id, so a resumed run
that never heard the answer asks again with the same token (and the same parameters) and
is given the same operation, never a second (DynamoDB keeps a token 8 hours). Once the
ARN is known it is in the ledger, and a resume only describes it again.

Both operations' descriptions are read into one form, the ledger's (`figures`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .errors import ServiceError
from .keys import KeySpec

RUNNING_STATES = ("IN_PROGRESS", "CANCELLING")
DONE_STATES = ("COMPLETED", "COMPLETED_WITH_ERRORS")
POLL_SECONDS = (0.25, 5.0)  # the first wait, and the longest: an operation takes minutes
NAMES = {"import": "ImportTable", "bulk": "StartBulkPutItems"}


def client_token(run_id: str) -> str:
    """The same for every attempt of one run, and no other run's."""
    return f"rimport-{run_id}"


def start_import(
    client: Any, run_id: str, table: str, keys: tuple[KeySpec, ...], bucket: str, prefix: str,
    compression: str = "gzip",
) -> dict[str, Any]:  # fmt: skip
    """Ask ImportTable to create `table` from the gzip objects under `prefix`."""
    kinds = ("HASH", "RANGE")
    request = {
        "ClientToken": client_token(run_id),
        "S3BucketSource": {"S3Bucket": bucket, "S3KeyPrefix": prefix},
        "InputFormat": "DYNAMODB_JSON",
        "InputCompressionType": compression.upper(),
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
    return _call(lambda: client.import_table(**request), "import", table)


def start_bulk(
    client: Any, run_id: str, table: str, bucket: str, prefix: str, report: str,
    max_wcu: int | None, tier: str | None, compression: str = "gzip",
) -> dict[str, Any]:  # fmt: skip
    """Ask StartBulkPutItems to put the gzip objects under `prefix` into `table`, its
    report of refused items (ERROR) under `report`."""
    request: dict[str, Any] = {
        "ClientToken": client_token(run_id),
        "TableName": table,
        "InputS3Configuration": {
            "S3Bucket": bucket, "S3KeyPrefix": prefix, "InputFormat": "DYNAMODB_JSON",
            "InputCompressionType": compression.upper(),
        },
        "OutputS3Configuration": {"S3Bucket": bucket, "S3KeyPrefix": report,
                                  "OutputType": ["ERROR"]},
    }  # fmt: skip
    if max_wcu is not None:
        request["MaxWriteRequestUnits"] = max_wcu
    if tier is not None:
        request["PerformanceTier"] = tier
    return _call(lambda: client.start_bulk_put_items(**request), "bulk", table)


def describe(client: Any, kind: str, arn: str) -> dict[str, Any]:
    if kind == "bulk":
        return _call(lambda: client.describe_bulk_operation(BulkOperationArn=arn), kind, arn)
    return _call(lambda: client.describe_import(ImportArn=arn), kind, arn)


def cancel(client: Any, arn: str) -> str:
    """Cancel a bulk operation; the state it says it is in."""
    try:
        return str(client.cancel_bulk_operation(BulkOperationArn=arn)["BulkOperationStatus"])
    except (ClientError, BotoCoreError) as e:
        raise _failure(e, "CancelBulkOperation", arn) from None


def follow(
    client: Any,
    kind: str,
    first: dict[str, Any],
    told: Callable[[dict[str, Any]], None],
    poll: tuple[float, float] = POLL_SECONDS,
) -> dict[str, Any]:
    """Describe the operation until it has ended, waiting twice as long each time up to
    the longest wait; `told` each description (as `figures`) as it comes."""
    said = first
    told(said)
    wait, longest = poll
    while said["status"] in RUNNING_STATES:
        time.sleep(wait)
        wait = min(longest, wait * 2)
        said = describe(client, kind, said["arn"])
        told(said)
    return said


def figures(kind: str, said: dict[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of an operation's description, the same for both kinds."""
    if kind == "bulk":
        processed = said.get("ProcessedItemCount")
        failed = said.get("FailedItemCount")
        written = None if processed is None else processed - (failed or 0)
        return {
            "arn": said.get("BulkOperationArn"), "status": said.get("BulkOperationStatus"),
            "processed_items": processed, "processed_bytes": said.get("ProcessedInputBytes"),
            "total_bytes": said.get("TotalInputBytes"), "imported_items": written,
            "error_count": failed, "failure_code": said.get("FailureCode"),
            "failure_message": said.get("FailureMessage"),
        }  # fmt: skip
    group = said.get("CloudWatchLogGroupArn")
    logged = f"items refused are logged in {group}" if group and said.get("ErrorCount") else None
    return {
        "arn": said.get("ImportArn"), "status": said.get("ImportStatus"),
        "processed_items": said.get("ProcessedItemCount"),
        "processed_bytes": said.get("ProcessedSizeBytes"), "total_bytes": None,
        "imported_items": said.get("ImportedItemCount"), "error_count": said.get("ErrorCount"),
        "failure_code": said.get("FailureCode"),
        "failure_message": said.get("FailureMessage") or logged,
    }  # fmt: skip


def _call(call: Callable[[], dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    key = "BulkOperationDescription" if kind == "bulk" else "ImportTableDescription"
    try:
        return figures(kind, dict(call()[key]))
    except (ClientError, BotoCoreError) as e:
        raise _failure(e, NAMES[kind], name) from None


def _failure(e: Exception, what: str, name: str) -> ServiceError:
    if isinstance(e, ClientError):
        error = e.response.get("Error", {})
        return ServiceError(
            f"{what} of {name} refused: {error.get('Code')}: {error.get('Message')}",
            "check the table name, the S3 prefix and the credentials' DynamoDB and S3 "
            "permissions for it",
        )
    return ServiceError(
        f"{what} of {name}: cannot reach DynamoDB ({e})",
        "check the network and the endpoint, then resume the run",
    )
