"""An HTTP proxy for tests that sits in front of DynamoDB Local and misbehaves on purpose.

It reads each request with h11 (as a server would), forwards it unchanged to the upstream
endpoint on a keep-alive connection of its own, and writes the answer back with the odd
framing or the fault that `Faults` asks for: HTTP/1.0, closing without warning, chunks with
extensions and trailers, `100 Continue` first, a delay, a proxy's HTML error page, a reset
in the middle of the body, a trickle of single bytes, TLS. The odd framing is written by
hand here, on purpose: it is what the client under test must understand.

It runs an asyncio loop in a background thread, listens on 127.0.0.1 on a free port, and
stops when its `with` block ends. `stats` counts what it did, so that a test can check the
fault it asked for really happened.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import h11

# What the proxy itself decides about framing; every other upstream header is passed on.
_FRAMING = {b"content-length", b"transfer-encoding", b"connection", b"keep-alive"}


@dataclass(frozen=True)
class Faults:
    """What to do wrong. "One in N" counts BatchWriteItem requests (1, 2, ...) over all
    connections; the framing faults apply to every request (DescribeTable too)."""

    http10: bool = False  # answer as HTTP/1.0, with Content-Length, and close after it
    close_every: int = 0  # close after every N answers of a connection, with no header
    chunked: bool = False  # chunked bodies, with chunk extensions and a trailer
    continue_first: bool = False  # `100 Continue` before every answer
    delay_every: int = 0  # delay one answer in N ...
    delay: float = 0.0  # ... by this many seconds
    error: int = 0  # answer 413 or 502 with an HTML page instead of forwarding ...
    error_once: bool = False  # ... for the first BatchWriteItem only, or
    error_above: int = 0  # ... for every request whose body is larger than this
    reset_every: int = 0  # reset the connection in the middle of one answer in N
    trickle_every: int = 0  # send one answer in N a byte at a time
    throttle_with: bytes = b""  # throttle the writes whose body holds these bytes ...
    throttle_times: int = 0  # ... this many times (DynamoDB's own 400 answer)


_PAGES = {
    413: (b"Request Entity Too Large", b"<html><head><title>413 Request Entity Too Large"
          b"</title></head><body><center><h1>413 Request Entity Too Large</h1></center><hr>"
          b"<center>nginx</center></body></html>\r\n"),
    502: (b"Bad Gateway", b"<html><head><title>502 Bad Gateway</title></head><body><center>"
          b"<h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\r\n"),
}  # fmt: skip


class _Reset(Exception):
    """The connection was reset on purpose."""


class FaultProxy:
    def __init__(
        self, upstream: str, faults: Faults | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults = faults or Faults()
        self._tls = tls
        self.stats: Counter[str] = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, ssl=self._tls, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def outage(self, seconds: float) -> None:
        """Go away for `seconds` (open connections dropped, new ones refused), then come
        back on the same port: a server restart, or a network blip."""
        asyncio.run_coroutine_threadsafe(self._away(seconds), self._loop).result(seconds + 20)

    async def _away(self, seconds: float) -> None:
        self.stats["outages"] += 1
        await self._stop()
        await asyncio.sleep(seconds)
        await self._start()

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        # Closed rather than cancelled: Python 3.11 logs an error for a cancelled handler.
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=5)
            for task in late:
                task.cancel()

    # -- one client connection -------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.stats["connections"] += 1
        upstream: _Upstream | None = None
        leftover = b""
        answers = 0
        try:
            while True:
                http = h11.Connection(h11.SERVER)  # one per request: answers are hand-made
                if leftover:
                    http.receive_data(leftover)
                got = await _read_request(reader, http)
                if got is None:
                    break
                request, body = got
                leftover = http.trailing_data[0]
                self.stats["requests"] += 1
                number = 0  # not a write: spared the faults that would fail the run
                if (b"x-amz-target", b"DynamoDB_20120810.BatchWriteItem") in request.headers:
                    self.stats["writes"] += 1
                    number = self.stats["writes"]
                answer = self._refusal(number, body)
                if answer is None:
                    if upstream is None:
                        upstream = await _Upstream.open(self._upstream)
                    answer = await upstream.forward(request, body)
                await self._reply(writer, number, answer)
                answers += 1
                f = self.faults
                if f.http10 or (f.close_every and answers % f.close_every == 0):
                    self.stats["closed"] += 1
                    break
        except (_Reset, OSError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        finally:
            if upstream is not None:
                upstream.close()
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    def _refusal(self, number: int, body: bytes) -> _Answer | None:
        f = self.faults
        throttled = self.stats["throttled"] < f.throttle_times and f.throttle_with in body
        if number and f.throttle_with and throttled:
            self.stats["throttled"] += 1
            said = (b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceeded'
                    b'Exception","message":"The level of configured provisioned throughput for'
                    b' the table was exceeded."}')  # fmt: skip
            return _Answer(400, b"Bad Request",
                           [(b"content-type", b"application/x-amz-json-1.0")], said)  # fmt: skip
        if not f.error or not number:
            return None
        if (f.error_once and number == 1) or (f.error_above and len(body) > f.error_above):
            self.stats[f"refused {f.error}"] += 1
            reason, page = _PAGES[f.error]
            return _Answer(f.error, reason, [(b"content-type", b"text/html")], page)
        return None

    async def _reply(self, writer: asyncio.StreamWriter, number: int, answer: _Answer) -> None:
        f = self.faults
        if number and f.delay_every and number % f.delay_every == 0:
            self.stats["delayed"] += 1
            await asyncio.sleep(f.delay)
        if f.continue_first:
            self.stats["continues"] += 1
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        head = [b"%s %d %s\r\n" % (b"HTTP/1.0" if f.http10 else b"HTTP/1.1", answer.status,
                                   answer.reason)]  # fmt: skip
        head += [b"%s: %s\r\n" % (name, value) for name, value in answer.headers]
        if f.chunked:
            head.append(b"Transfer-Encoding: chunked\r\n\r\n")
            body = answer.body
            pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
            framed = b"".join(
                b"%x;piece=%d\r\n%s\r\n" % (len(p), i, p) for i, p in enumerate(pieces)
            )
            data = b"".join(head) + framed + b"0;last\r\nX-Trailer: fine\r\n\r\n"
            self.stats["chunked"] += 1
        else:
            head.append(b"Content-Length: %d\r\n\r\n" % len(answer.body))
            data = b"".join(head) + answer.body
        if number and f.reset_every and number % f.reset_every == 0:
            writer.write(data[: len(data) // 2])
            await writer.drain()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.stats["reset"] += 1
            writer.transport.abort()
            raise _Reset
        if number and f.trickle_every and number % f.trickle_every == 0:
            self.stats["trickled"] += 1
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0.001)
            return
        writer.write(data)
        await writer.drain()


@dataclass
class _Answer:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


class _Upstream:
    """A keep-alive connection to the real endpoint, opened again when it was closed."""

    def __init__(self, address: tuple[str, int]) -> None:
        self._address = address
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._http = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, address: tuple[str, int]) -> _Upstream:
        upstream = cls(address)
        await upstream._connect()
        return upstream

    async def _connect(self) -> None:
        self.close()
        self._reader, self._writer = await asyncio.open_connection(*self._address)
        self._http = h11.Connection(h11.CLIENT)

    async def forward(self, request: h11.Request, body: bytes) -> _Answer:
        if self._http.our_state is not h11.IDLE:
            await self._connect()
        try:
            return await self._exchange(request, body)
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            await self._connect()  # it had closed while idle: once more on a new one
            return await self._exchange(request, body)

    async def _exchange(self, request: h11.Request, body: bytes) -> _Answer:
        assert self._reader is not None and self._writer is not None
        http = self._http
        out = http.send(request) or b""
        out += http.send(h11.Data(data=body)) or b""
        out += http.send(h11.EndOfMessage()) or b""
        self._writer.write(out)
        await self._writer.drain()
        answer = _Answer(0, b"", [], b"")
        chunks = []
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                http.receive_data(await self._reader.read(1 << 16))
            elif isinstance(event, h11.Response):
                answer.status, answer.reason = event.status_code, event.reason
                answer.headers = [(k, v) for k, v in event.headers if k not in _FRAMING]
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("upstream closed")
        answer.body = b"".join(chunks)
        if http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()
        return answer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


async def _read_request(
    reader: asyncio.StreamReader, http: h11.Connection
) -> tuple[h11.Request, bytes] | None:
    """The next request on the connection, or None when the client closed it."""
    request: Any = None
    chunks = []
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(await reader.read(1 << 16))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return request, b"".join(chunks)
        elif isinstance(event, h11.ConnectionClosed):
            return None
