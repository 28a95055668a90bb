"""The two designs rimport is measured against, as people usually write them.

python bench/baselines.py client FILE --table T --endpoint URL
    ijson streams the items; boto3's client sends 25-item batch_write_item calls one
    after another, resending UnprocessedItems with exponential backoff (the seed design)
python bench/baselines.py batch-writer FILE --table T --endpoint URL
    ijson streams the items into boto3's Table.batch_writer()
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import boto3
import ijson
from boto3.dynamodb.types import TypeSerializer


def stream(path: str) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        first = f.read(1)
        f.seek(0)
        if first == b"[":
            yield from ijson.items(f, "item")
        else:
            yield from ijson.items(f, "", multiple_values=True)


def with_client(path: str, table: str, endpoint: str) -> int:
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    serialize = TypeSerializer().serialize
    count = 0
    batch: list[dict[str, Any]] = []

    def send(puts: list[dict[str, Any]]) -> None:
        request = {table: puts}
        for attempt in range(10):
            left = client.batch_write_item(RequestItems=request).get("UnprocessedItems", {})
            if not left:
                return
            request = left
            time.sleep(0.05 * 2**attempt)
        raise RuntimeError("unprocessed items left")

    for item in stream(path):
        batch.append({"PutRequest": {"Item": {k: serialize(v) for k, v in item.items()}}})
        count += 1
        if len(batch) == 25:
            send(batch)
            batch = []
    if batch:
        send(batch)
    return count


def with_batch_writer(path: str, table: str, endpoint: str) -> int:
    count = 0
    dynamodb = boto3.resource("dynamodb", endpoint_url=endpoint)
    with dynamodb.Table(table).batch_writer() as writer:
        for item in stream(path):
            writer.put_item(Item=item)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("design", choices=["client", "batch-writer"])
    parser.add_argument("file")
    parser.add_argument("--table", required=True)
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    run = with_client if args.design == "client" else with_batch_writer
    print(run(args.file, args.table, args.endpoint))


if __name__ == "__main__":
    main()
