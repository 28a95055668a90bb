"""A test double of DynamoDB's StartBulkPutItems, DescribeBulkOperation and
CancelBulkOperation, which neither moto nor DynamoDB Local implements. No part of the
product.

It listens on 127.0.0.1 and speaks DynamoDB's JSON protocol: those three operations it
answers itself, in the shapes of botocore's model (which validates every request before
it is sent, and parses every answer); every other call (DescribeTable, ...) it forwards,
bytes as they are, to a moto server. An operation reads the staged gzip objects from that
moto's S3 and puts their items into its DynamoDB, one by one. It can be told to be slow
(`delay` seconds per item), to fail (`fail` = a FailureCode) or to refuse some items
(`refuse`, counted in FailedItemCount and not written), and it remembers every
request, so a test can count how many operations were started: the same ClientToken with
the same parameters is the same operation, with others an
IdempotentParameterMismatchException, as the API reference says.

What it does not do: write the ERROR report of refused items (their layout is not one we
can check here: rimport finds them by reading the table back), throttle by
MaxWriteRequestUnits, or ION input.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import boto3

_TABLES = "arn:aws:dynamodb:us-east-1:123456789012:table/"
_OWN = ("StartBulkPutItems", "DescribeBulkOperation", "CancelBulkOperation")


class Operation:
    def __init__(self, request: dict[str, Any], arn: str, total: int) -> None:
        self.request = request
        self.arn = arn
        self.status = "IN_PROGRESS"
        self.processed = self.failed = self.bytes = 0
        self.total = total
        self.started = time.time()
        self.ended: float | None = None
        self.failure: tuple[str, str] | None = None

    def description(self) -> dict[str, Any]:
        r = self.request
        out: dict[str, Any] = {
            "BulkOperationArn": self.arn, "BulkOperationStatus": self.status,
            "TableDetails": [{"TableName": r["TableName"]}],
            "InputS3Configuration": r["InputS3Configuration"],
            "OutputS3Configuration": r["OutputS3Configuration"],
            "StartTime": self.started, "ProcessedItemCount": self.processed,
            "ProcessedInputBytes": self.bytes, "TotalInputBytes": self.total,
            "FailedItemCount": self.failed,
        }  # fmt: skip
        for name in ("ClientToken", "MaxWriteRequestUnits", "PerformanceTier"):
            if name in r:
                out[name] = r[name]
        if self.ended is not None:
            out["EndTime"] = self.ended
        if self.failure:
            out["FailureCode"], out["FailureMessage"] = self.failure
        return out


class BulkStandin:
    def __init__(
        self, moto: str, *, delay: float = 0.0, fail: str | None = None, replicas: bool = False,
        refuse: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        self.moto = moto
        self.refuse = refuse  # the `pk` values whose items it refuses, as failed items
        self.replicas = replicas  # DescribeTable says the table has a replica (global)
        self.delay = delay
        self.fail = fail
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (operation, body)
        self.operations: dict[str, Operation] = {}  # by ARN
        self.tokens: dict[str, Operation] = {}
        self._lock = threading.Lock()
        self._s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
        self._ddb = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def started(self) -> int:
        """How many operations were started (a repeated token does not start one)."""
        return len(self.operations)

    def close(self) -> None:
        for op in self.operations.values():
            if op.status == "IN_PROGRESS":
                op.status = "CANCELLING"
        self._server.shutdown()
        self._server.server_close()

    # -- the operations ---------------------------------------------------------------

    def start(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            token = body.get("ClientToken")
            if token and token in self.tokens:
                op = self.tokens[token]
                if op.request != body:
                    return _error("IdempotentParameterMismatchException",
                                  "the token was used with other parameters")  # fmt: skip
                return 200, {"BulkOperationDescription": op.description()}
            table = body["TableName"]
            try:
                self._ddb.describe_table(TableName=table)
            except self._ddb.exceptions.ResourceNotFoundException:
                return _error("ResourceNotFoundException", f"Requested resource not found: {table}")
            source = body["InputS3Configuration"]
            listed = self._s3.list_objects_v2(
                Bucket=source["S3Bucket"], Prefix=source.get("S3KeyPrefix", "")
            ).get("Contents", [])
            arn = f"{_TABLES}{table}/bulk-operation/{uuid.uuid4().hex}"
            op = Operation(body, arn, sum(o["Size"] for o in listed))
            self.operations[arn] = op
            if token:
                self.tokens[token] = op
        threading.Thread(
            target=self._run, args=(op, [o["Key"] for o in listed]), daemon=True
        ).start()
        return 200, {"BulkOperationDescription": op.description()}

    def _run(self, op: Operation, keys: list[str]) -> None:
        bucket = op.request["InputS3Configuration"]["S3Bucket"]
        for key in keys:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            kind = op.request["InputS3Configuration"].get("InputCompressionType", "NONE")
            text = {"GZIP": gzip.decompress, "ZSTD": _unzstd}.get(kind, bytes)(body)
            for line in text.splitlines():
                if op.status != "IN_PROGRESS":
                    break
                if self.fail and op.processed >= 1:
                    op.failure = (self.fail, "the stand-in was told to fail")
                    op.status, op.ended = "FAILED", time.time()
                    return
                item = json.loads(line)["Item"]
                try:
                    if item.get("pk", {}).get("S") in self.refuse:
                        op.failed += 1
                    else:
                        self._ddb.put_item(TableName=op.request["TableName"], Item=item)
                except self._ddb.exceptions.ClientError:
                    op.failed += 1
                op.processed += 1
                time.sleep(self.delay)
            op.bytes += len(body)
        done = "CANCELLED" if op.status == "CANCELLING" else (
            "COMPLETED_WITH_ERRORS" if op.failed else "COMPLETED")  # fmt: skip
        op.status, op.ended = done, time.time()

    def describe(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        op = self.operations.get(body["BulkOperationArn"])
        if op is None:
            return _error("ResourceNotFoundException", "no such bulk operation")
        return 200, {"BulkOperationDescription": op.description()}

    def cancel(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        op = self.operations.get(body["BulkOperationArn"])
        if op is None:
            return _error("ResourceNotFoundException", "no such bulk operation")
        if op.status == "IN_PROGRESS":
            op.status = "CANCELLING"
        return 200, {"BulkOperationArn": op.arn, "BulkOperationStatus": op.status}

    # -- HTTP -------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                if operation not in _OWN:
                    return self._forward(raw, operation)
                body = json.loads(raw)
                standin.requests.append((operation, body))
                call = {"StartBulkPutItems": standin.start,
                        "DescribeBulkOperation": standin.describe,
                        "CancelBulkOperation": standin.cancel}[operation]  # fmt: skip
                status, answer = call(body)
                self._send(status, json.dumps(answer).encode())

            def _forward(self, raw: bytes, operation: str) -> None:
                there = urlparse(standin.moto)
                conn = http.client.HTTPConnection(there.hostname, there.port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    conn.request("POST", self.path, raw, headers)
                    answer = conn.getresponse()
                    data = answer.read()
                    if operation == "DescribeTable" and standin.replicas and answer.status == 200:
                        described = json.loads(data)
                        described["Table"]["Replicas"] = [
                            {"RegionName": "eu-west-1", "ReplicaStatus": "ACTIVE"}
                        ]
                        data = json.dumps(described).encode()
                    self._send(answer.status, data, answer.getheader("Content-Type"))
                finally:
                    conn.close()

            def _send(self, status: int, data: bytes, kind: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", uuid.uuid4().hex)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _unzstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(data).read()


def _error(code: str, message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}


@contextlib.contextmanager
def running(moto: str, **options: Any) -> Iterator[BulkStandin]:
    standin = BulkStandin(moto, **options)
    try:
        yield standin
    finally:
        standin.close()
