"""How BatchWriteItem requests travel: started now, answered later, several at once.

`HttpTransport` is the fast path. Profiling the plain boto3 client showed most of its
~500 µs of CPU per item going to botocore's parameter validation, serialization and
response parsing, not to the network. Here each item arrives already serialized by orjson
(where it was read, see `pipeline`), the body is those bytes joined, botocore's SigV4Auth
signs it with botocore's credentials for the endpoint botocore resolved, and it goes out on
one of a few persistent HTTP/1.1 connections, watched with a selector so that one thread
keeps them all busy.

`SyncTransport` wraps anything with botocore's `batch_write_item(RequestItems=)` method (a
botocore client, the test fakes); its `_BotocoreSender` form sends the same signed body
through botocore's own HTTP session when a proxy is configured for the endpoint (so proxy
settings keep working, one request at a time).

Both report failures as the exceptions botocore raises (ClientError, connection errors),
so the writer cannot tell them apart.
"""

from __future__ import annotations

import itertools
import selectors
import socket
import ssl
import time
import zlib
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path
from botocore.utils import get_environ_proxies

TIMEOUT = 60.0  # seconds to wait for an answer before the request counts as lost


class Transport(Protocol):
    def start(self, table: str, items: list[bytes]) -> Any:
        """Send a BatchWriteItem of `items` (attribute maps as JSON); return a token its
        answer will carry."""

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        """Answers that arrived within `timeout`: (token, response dict or exception)."""

    def close(self) -> None:
        """Close the connections; requests still out are abandoned."""


class SyncTransport:
    """Each request is sent and answered inside `start`; `wait` hands the answers over."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._done: list[tuple[Any, Any]] = []
        self._tokens = itertools.count()

    def start(self, table: str, items: list[bytes]) -> Any:
        token = next(self._tokens)
        try:
            outcome: Any = self._send(table, items)
        except Exception as e:  # delivered as the answer, like a network failure would be
            outcome = e
        self._done.append((token, outcome))
        return token

    def _send(self, table: str, items: list[bytes]) -> Any:
        return self._client.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": orjson.loads(i)}} for i in items]}
        )

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        pass


class _Signer:
    """Builds and signs BatchWriteItem requests for one endpoint."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self.url = client.meta.endpoint_url
        self._region = client.meta.region_name
        self._credentials = credentials
        parts = urlsplit(self.url)
        self.https = parts.scheme == "https"
        self.host, self.port, self.path = parts.hostname or "", parts.port, parts.path or "/"
        self._host_header = parts.netloc.removesuffix(":443" if self.https else ":80")

    def request(self, table: str, items: list[bytes]) -> tuple[bytes, dict[str, str], AWSRequest]:
        """The body, the signed headers, and botocore's request object for botocore's session."""
        body = b"".join((
            b'{"RequestItems":{', orjson.dumps(table), b':[{"PutRequest":{"Item":',
            b'}},{"PutRequest":{"Item":'.join(items), b"}}]}}",
        ))  # fmt: skip
        request = AWSRequest(
            method="POST",
            url=self.url,
            data=body,
            headers={
                "Host": self._host_header,  # signed as is, and sent as is
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.BatchWriteItem",
            },
        )
        # Frozen per request, as botocore does, so a refresh never mixes two key pairs.
        frozen = self._credentials.get_frozen_credentials()
        SigV4Auth(frozen, "dynamodb", self._region).add_auth(request)
        return body, dict(request.headers.items()), request

    def outcome(self, status: int, headers: Any, body: bytes) -> Any:
        crc = headers.get("x-amz-crc32")
        if crc is not None and zlib.crc32(body) != int(crc):
            return ConnectionClosedError(endpoint_url=self.url)  # corrupted: send again
        if status == 200:
            return orjson.loads(body)
        return _client_error(status, body)


class _BotocoreSender(SyncTransport):
    """Signed requests sent through botocore's HTTP session (proxies, custom TLS), one at a
    time; the items' bytes go into the body as they are."""

    def __init__(self, client: Any, credentials: Any) -> None:
        super().__init__(client)
        self._signer = _Signer(client, credentials)
        self._http = client._endpoint.http_session  # configured like the client itself

    def _send(self, table: str, items: list[bytes]) -> Any:
        *_, request = self._signer.request(table, items)
        response = self._http.send(request.prepare())
        outcome = self._signer.outcome(response.status_code, response.headers, response.content)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class _Connection:
    """One persistent HTTP/1.1 connection, just what BatchWriteItem needs: a POST out, a
    response with Content-Length (or chunked) back.

    http.client parses every response's headers with the email package, about 100 µs a
    request (4 µs an item) measured; these responses are small and always alike.
    """

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self._address = (host, port)
        self._tls = tls
        self.sock: socket.socket | None = None
        self._buffer = b""

    def send(self, data: bytes) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection(self._address, timeout=TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._address[0])
            self.sock, self._buffer = sock, b""
        self.sock.sendall(data)
        return self.sock

    def receive(self) -> tuple[int, dict[str, str], bytes]:
        """Read one whole response: (status, headers with lower-case names, body)."""
        head = self._until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self._until(b"\r\n").split(b";")[0], 16):
                chunks.append(self._exactly(size))
                self._until(b"\r\n")
            self._until(b"\r\n")  # no trailers are sent to us; the empty line ends it
            body = b"".join(chunks)
        else:
            body = self._exactly(-1)
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _until(self, mark: bytes) -> bytes:
        while (at := self._buffer.find(mark)) < 0:
            self._fill()
        data, self._buffer = self._buffer[:at], self._buffer[at + len(mark) :]
        return data

    def _exactly(self, size: int) -> bytes:
        """`size` bytes, or everything until the server closes when -1."""
        while size < 0 or len(self._buffer) < size:
            if not self._fill(eof_ok=size < 0):
                break
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _fill(self, eof_ok: bool = False) -> bool:
        assert self.sock is not None
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            if eof_ok:
                return False
            raise ConnectionResetError("the server closed the connection mid-response")
        self._buffer += chunk
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self._buffer = None, b""


class HttpTransport:
    def __init__(self, client: Any, credentials: Any) -> None:
        self._signer = _Signer(client, credentials)
        self._tls = (
            ssl.create_default_context(cafile=get_cert_path(True)) if self._signer.https else None
        )
        self._port = self._signer.port or (443 if self._signer.https else 80)
        self._idle: list[_Connection] = []
        self._selector = selectors.DefaultSelector()
        self._deadlines: dict[Any, float] = {}
        self._done: list[tuple[Any, Any]] = []
        self._tokens = itertools.count()

    def start(self, table: str, items: list[bytes]) -> Any:
        token = next(self._tokens)
        body, headers, _ = self._signer.request(table, items)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        data = (
            f"POST {self._signer.path} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        conn = (
            self._idle.pop()
            if self._idle
            else _Connection(self._signer.host, self._port, self._tls)
        )
        try:
            sock = conn.send(data)
        except OSError as e:
            conn.close()
            self._idle.append(conn)  # it connects again on its next request
            self._done.append((token, self._connection_error(e)))
            return token
        self._selector.register(sock, selectors.EVENT_READ, (token, conn))
        self._deadlines[token] = time.monotonic() + TIMEOUT
        return token

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        if self._done:
            done, self._done = self._done, []
            return done
        if not self._deadlines:
            return []
        first = min(self._deadlines.values()) - time.monotonic()
        timeout = max(0.0, first if timeout is None else min(timeout, first))
        done = []
        for key, _ in self._selector.select(timeout):
            token, conn = key.data
            self._selector.unregister(key.fileobj)
            del self._deadlines[token]
            try:
                outcome = self._signer.outcome(*conn.receive())
            except (OSError, ValueError, IndexError) as e:  # ValueError: a garbled response
                conn.close()
                outcome = self._connection_error(e)
            self._idle.append(conn)
            done.append((token, outcome))
        if not done and first <= timeout:  # nothing came and the oldest is overdue
            done = self._expire()
        return done

    def _expire(self) -> list[tuple[Any, Any]]:
        """Requests past their deadline count as lost: close their connections."""
        now = time.monotonic()
        lost = []
        for key in list(self._selector.get_map().values()):
            token, conn = key.data
            if self._deadlines[token] <= now:
                self._selector.unregister(key.fileobj)
                del self._deadlines[token]
                conn.close()
                self._idle.append(conn)
                lost.append((token, ReadTimeoutError(endpoint_url=self._signer.url)))
        return lost

    def _connection_error(self, e: BaseException) -> Exception:
        return EndpointConnectionError(endpoint_url=self._signer.url, error=e)

    def close(self) -> None:
        for key in list(self._selector.get_map().values()):
            self._idle.append(key.data[1])
        for conn in self._idle:
            conn.close()
        self._selector.close()


def open_transport(client: Any, credentials: Any) -> Transport:
    """The fast transport, unless a proxy is configured for the endpoint."""
    if get_environ_proxies(client.meta.endpoint_url):
        return _BotocoreSender(client, credentials)
    return HttpTransport(client, credentials)


def _client_error(status: int, body: bytes) -> ClientError:
    try:
        payload = orjson.loads(body)
        code = str(payload.get("__type", "")).rpartition("#")[2]
        message = payload.get("message") or payload.get("Message") or ""
    except (orjson.JSONDecodeError, AttributeError):
        code, message = "", body[:200].decode("utf-8", "replace")
    error = {"Code": code or f"HTTP{status}", "Message": message}
    return ClientError(
        {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "BatchWriteItem"
    )
