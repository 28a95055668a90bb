"""A stand-in DynamoDB endpoint for the benchmark: it answers at once, after a set latency,
or throttles to a set rate, so the client's own cost can be measured apart from a server.

It speaks just enough of the protocol for rimport and the boto3 baselines: DescribeTable and
CreateTable (every table is keyed by `pk`, except one created with another key, which keeps
it) and BatchWriteItem, whose items it counts by distinct key.
`GET /stats` returns what it saw; `POST /reset` forgets it.

    python bench/standin.py --port P [--latency-ms 10] [--max-items-per-s 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import zlib
from typing import Any

import orjson


class Standin:
    def __init__(self, latency: float, rate: float | None) -> None:
        self.latency = latency
        self.rate = rate
        self.tokens = rate or 0.0
        self.refilled = time.monotonic()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.throttled = 0
        self.puts = 0
        self.keys: set[str] = set()
        self.first_write: float | None = None
        self.last_write: float | None = None
        self.inflight = 0
        self.max_inflight = 0

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "throttled": self.throttled, "puts": self.puts,
            "distinct_keys": len(self.keys), "first_write": self.first_write,
            "last_write": self.last_write,
            "max_inflight": self.max_inflight,
        }  # fmt: skip

    def admit(self, n: int) -> int:
        """How many of `n` items the simulated capacity takes now (a 1-second token bucket)."""
        if self.rate is None:
            return n
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        taken = min(n, int(self.tokens))
        self.tokens -= taken
        return taken

    async def batch_write(self, body: bytes) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        if self.first_write is None:
            self.first_write = time.monotonic()
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            ((table, puts),) = orjson.loads(body)["RequestItems"].items()
            taken = self.admit(len(puts))
            if taken == 0:
                self.throttled += 1
                return 400, {
                    "__type": "com.amazonaws.dynamodb.v20120810#"
                    "ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table "
                    "was exceeded.",
                }
            for put in puts[:taken]:
                self.keys.add(next(iter(put["PutRequest"]["Item"]["pk"].values())))
            self.puts += taken
            left = puts[taken:]
            return 200, {"UnprocessedItems": {table: left} if left else {}}
        finally:
            self.inflight -= 1
            self.last_write = time.monotonic()


PK = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
}
# The keys of the tables created here, by name: a table keyed otherwise than by `pk` lets the
# benchmark measure a dump whose every item misses the table's key.
_keys: dict[str, dict[str, Any]] = {}


def _table(target: str, request: dict[str, Any]) -> dict[str, Any]:
    name = request["TableName"]
    if target == "CreateTable":
        _keys[name] = {k: request[k] for k in PK}
    table = {"TableName": name, "TableStatus": "ACTIVE", **_keys.get(name, PK)}
    return {"TableDescription" if target == "CreateTable" else "Table": table}


async def serve(standin: Standin, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ", 2)[1]
                headers = {
                    k.lower(): v.strip()
                    for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                target = headers.get("x-amz-target", "").rpartition(".")[2]
                if path == "/stats":
                    status, payload = 200, standin.stats()
                elif path == "/reset":
                    standin.reset()
                    status, payload = 200, {}
                elif target == "BatchWriteItem":
                    status, payload = await standin.batch_write(body)
                elif target in ("DescribeTable", "CreateTable"):
                    status, payload = 200, _table(target, orjson.loads(body))
                else:
                    status, payload = (
                        400,
                        {"__type": "#UnknownOperationException", "message": target},
                    )
                data = orjson.dumps(payload)
                head = (
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.0\r\n"
                    f"Content-Length: {len(data)}\r\nx-amz-crc32: {zlib.crc32(data)}\r\n\r\n"
                )
                writer.write(head.encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--max-items-per-s", type=float, default=None)
    args = parser.parse_args()
    asyncio.run(serve(Standin(args.latency_ms / 1000, args.max_items_per_s), args.port))


if __name__ == "__main__":
    main()
