"""How BatchWriteItem requests travel: started now, answered later, several at once.

`HttpTransport` is the fast path. Profiling the plain boto3 client showed most of its CPU
per item going to botocore's parameter validation, serialization and response parsing, not
to the network. Here each item arrives already serialized by orjson (where it was read, see
`pipeline`), the body is those bytes joined, botocore's SigV4Auth signs it with botocore's
credentials for the endpoint botocore resolved, and it goes out on one of a few persistent
HTTP/1.1 connections, watched with a selector so that one thread keeps them all busy.

The HTTP protocol itself is h11's job (a maintained sans-IO implementation): keep-alive
rules of HTTP/1.0 and 1.1, 1xx answers, chunked bodies with extensions and trailers, the
Content-Length/Transfer-Encoding rules. This module only moves bytes, never blocking: it
connects, shakes hands (TLS, verified as botocore's client was configured to verify) and
reads each socket as bytes come, so one slow answer or one slow connect never holds up the
others. A connection is reused only when h11 says the exchange ended cleanly; one the server
closed while idle is dropped, and a request that meets such a closed connection is sent once
more on a new one, as urllib3 does, instead of counting as a failed attempt.

`SyncTransport` wraps anything with botocore's `batch_write_item(RequestItems=)` method (a
botocore client, the test fakes); its `_BotocoreSender` form sends the same signed body
through botocore's own HTTP session when a proxy is configured for the endpoint (so proxy
settings keep working, one request at a time).

Error contract, shared by every transport: a request's outcome is the parsed JSON answer of
a 200, or the exception botocore would have raised, so the writer cannot tell them apart:
`ClientError` (status in ResponseMetadata; code `HTTP<status>` when the body is not
DynamoDB's JSON), `EndpointConnectionError` (no connection), `SSLError` (the endpoint's
certificate or TLS handshake was refused), `ConnectionClosedError` (closed or garbled after
the request went out), `ReadTimeoutError` (no complete answer in time). `start` raises only
`CredentialsError`, when the credentials cannot be refreshed to sign with.
"""

from __future__ import annotations

import errno
import itertools
import os
import selectors
import socket
import ssl
import time
import zlib
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urlsplit

import h11
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import get_cert_path
from botocore.utils import get_environ_proxies

from .errors import Command, CredentialsError, RimportError, Text

IDLE_LIMIT = 30.0  # seconds an unused connection is kept; servers drop theirs after 60 or so
_BUFFER = 1 << 16
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Transport(Protocol):
    def start(self, table: str, items: list[bytes]) -> Any:
        """Send a BatchWriteItem of `items` (attribute maps as JSON); return a token its
        answer will carry. Raises only CredentialsError: network faults are answers."""

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
        except RimportError:
            raise
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
    """Builds and signs BatchWriteItem requests for one endpoint, and reads their answers."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self.url = client.meta.endpoint_url
        self._region = client.meta.region_name
        self._credentials = credentials
        parts = urlsplit(self.url)
        self.https = parts.scheme == "https"
        self.host, self.port, self.path = parts.hostname or "", parts.port, parts.path or "/"
        self._host_header = parts.netloc.removesuffix(":443" if self.https else ":80")

    def request(self, table: str, items: list[bytes]) -> tuple[bytes, dict[str, str], AWSRequest]:
        """The body, the signed headers, and botocore's request object for botocore's session.

        Raises CredentialsError when the credentials cannot be had (a refresh that failed,
        an expired SSO token): no request can be signed until the user renews them.
        """
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
        return body, dict(request.headers.items()), request

    def outcome(self, status: int, body: bytes, crc: str | None = None, reason: str = "") -> Any:
        """The answer as the writer takes it: a 200's JSON, else the error botocore raises."""
        if crc is not None and zlib.crc32(body) != int(crc):
            return ConnectionClosedError(endpoint_url=self.url)  # corrupted: send again
        if status == 200:
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                payload = None
            if isinstance(payload, dict):
                return payload
        return _client_error(status, body, reason)


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
        outcome = self._signer.outcome(
            response.status_code,
            response.content,
            response.headers.get("x-amz-crc32"),
            getattr(response.raw, "reason", None) or "",
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


# The phases of a connection.
_CONNECTING, _HANDSHAKE, _BUSY, _IDLE, _CLOSED = "connecting", "handshake", "busy", "idle", "closed"


class _Request:
    """One BatchWriteItem on its way, which may move to a new connection once."""

    __slots__ = ("body", "headers", "resent", "token")

    def __init__(self, token: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.token, self.headers, self.body = token, headers, body
        self.resent = False  # sent again already, after a reused connection turned out dead


class _Connection:
    """One HTTP/1.1 connection: a non-blocking socket, the h11 state of its exchanges, and
    the one request it carries (None while idle)."""

    __slots__ = (
        "address", "addresses", "answered", "chunks", "crc", "deadline", "events", "http",
        "out", "phase", "reason", "request", "sent", "served", "since", "sock", "status",
    )  # fmt: skip

    def __init__(self, request: _Request) -> None:
        self.sock: socket.socket | None = None
        self.http = h11.Connection(h11.CLIENT)
        self.phase = _CONNECTING
        self.request: _Request | None = request
        self.out = memoryview(b"")
        self.sent = 0
        self.deadline = 0.0
        self.served = 0  # exchanges completed on it: a dead reused connection is not a failure
        self.answered = False  # a byte of the current answer arrived
        self.status, self.reason, self.crc = 0, "", None
        self.chunks: list[bytes] = []
        self.since = 0.0  # idle since
        self.events = 0  # what the selector watches it for
        self.addresses: list[Any] = []  # still to try while connecting
        self.address: Any = None  # the one it connects to


class HttpTransport:
    """Many requests in flight on persistent connections, one request per connection at a
    time, all in the caller's thread; see the module docstring."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self._signer = _Signer(client, credentials)
        config = client.meta.config
        self._connect_timeout = float(config.connect_timeout or 60)
        self._read_timeout = float(config.read_timeout or 60)
        self._tls = _tls_context(client) if self._signer.https else None
        self._port = self._signer.port or (443 if self._signer.https else 80)
        self._addresses: list[Any] = []  # resolved on the first connect (see _resolve)
        self._idle: list[_Connection] = []  # most recently used last
        self._busy: set[_Connection] = set()
        self._selector = selectors.DefaultSelector()
        self._done: list[tuple[Any, Any]] = []
        self._tokens = itertools.count()
        self._swept = time.monotonic()

    # -- the Transport interface -----------------------------------------------------------

    def start(self, table: str, items: list[bytes]) -> Any:
        token = next(self._tokens)
        body, headers, _ = self._signer.request(table, items)
        request = _Request(token, [*headers.items(), ("Content-Length", str(len(body)))], body)
        conn = self._reusable()
        if conn is None:
            self._connect(request)
        else:
            conn.request = request
            self._begin(conn)
        return token

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        now = time.monotonic()
        end = None if timeout is None else now + timeout
        while True:
            first = min(c.deadline for c in self._busy) if self._busy else now
            if self._done or not self._busy:
                remaining = 0.0
            else:
                remaining = max(0.0, first - now if end is None else min(end, first) - now)
            for key, mask in self._selector.select(remaining):
                self._on_event(key.data, mask)
            now = time.monotonic()
            if now >= first:
                self._expire(now)
            if self._done or not self._busy or (end is not None and now >= end):
                break
        if now - self._swept > 1.0:
            self._sweep(now)
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        for conn in [*self._busy, *self._idle]:
            self._close(conn)
        self._busy.clear()
        self._idle.clear()
        self._selector.close()

    # -- connections -----------------------------------------------------------------------

    def _reusable(self) -> _Connection | None:
        """An idle connection still open at the server's end, or None."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.since < IDLE_LIMIT and _still_open(conn.sock):
                return conn
            self._close(conn)
        return None

    def _sweep(self, now: float) -> None:
        """Close connections idle for longer than IDLE_LIMIT (the oldest are first)."""
        self._swept = now
        while self._idle and now - self._idle[0].since >= IDLE_LIMIT:
            self._close(self._idle.pop(0))

    def _connect(self, request: _Request) -> None:
        """Start a new connection for `request`; it is sent once connected."""
        conn = _Connection(request)
        conn.deadline = time.monotonic() + self._connect_timeout
        self._busy.add(conn)
        try:
            conn.addresses = list(self._resolve())
        except OSError as e:
            self._finish(conn, EndpointConnectionError(endpoint_url=self._signer.url, error=e))
            return
        self._next_address(conn, None)

    def _resolve(self) -> list[Any]:
        """The endpoint's addresses, looked up once (getaddrinfo blocks; the usual endpoints
        are an IP address or localhost) and again after a connect failed."""
        if not self._addresses:
            self._addresses = socket.getaddrinfo(
                self._signer.host, self._port, type=socket.SOCK_STREAM
            )
        return self._addresses

    def _next_address(self, conn: _Connection, error: BaseException | None) -> None:
        """Connect to the next address not tried yet; fail the request when none is left."""
        if conn.sock is not None:
            self._close_socket(conn)
        if not conn.addresses:
            self._addresses = []  # look the name up again next time
            self._finish(conn, EndpointConnectionError(endpoint_url=self._signer.url, error=error))
            return
        conn.address = conn.addresses.pop(0)
        family, kind, proto, _, address = conn.address
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sock, conn.phase = sock, _CONNECTING
        code = sock.connect_ex(address)
        if code == 0:
            self._connected(conn)
        elif code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            self._watch(conn, _WRITE)
        else:
            self._next_address(conn, OSError(code, os.strerror(code)))

    def _connected(self, conn: _Connection) -> None:
        assert conn.sock is not None
        code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._next_address(conn, OSError(code, os.strerror(code)))
            return
        if self._addresses and self._addresses[0] != conn.address:  # try it first next time
            self._addresses = [conn.address, *(a for a in self._addresses if a != conn.address)]
        if self._tls is None:
            self._begin(conn)
            return
        self._unwatch(conn)  # the socket is replaced by its TLS wrapper
        conn.sock = self._tls.wrap_socket(
            conn.sock, server_hostname=self._signer.host, do_handshake_on_connect=False
        )
        conn.phase = _HANDSHAKE
        self._handshake(conn)

    def _handshake(self, conn: _Connection) -> None:
        assert isinstance(conn.sock, ssl.SSLSocket)
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, _READ)
        except ssl.SSLWantWriteError:
            self._watch(conn, _WRITE)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as e:  # closed: maybe overloaded
            self._finish(conn, EndpointConnectionError(endpoint_url=self._signer.url, error=e))
        except ssl.SSLError as e:  # the certificate, or TLS itself, refused: not transient
            self._finish(conn, SSLError(endpoint_url=self._signer.url, error=e))
        except OSError as e:
            self._finish(conn, EndpointConnectionError(endpoint_url=self._signer.url, error=e))
        else:
            self._begin(conn)

    # -- one exchange ----------------------------------------------------------------------

    def _begin(self, conn: _Connection) -> None:
        """Send the connection's request (as much as the socket takes now)."""
        request = conn.request
        assert request is not None
        http = conn.http
        head = http.send(h11.Request(method="POST", target=self._signer.path,
                                     headers=request.headers))  # fmt: skip
        assert head is not None
        http.send_with_data_passthrough(h11.Data(data=request.body))
        http.send(h11.EndOfMessage())
        conn.out, conn.sent = memoryview(head + request.body), 0
        conn.phase, conn.answered, conn.chunks = _BUSY, False, []
        conn.status, conn.reason, conn.crc = 0, "", None
        self._busy.add(conn)
        conn.deadline = time.monotonic() + self._read_timeout
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        """Write what the socket takes of the request; watch for the rest and the answer."""
        assert conn.sock is not None
        try:
            while conn.sent < len(conn.out):
                conn.sent += conn.sock.send(conn.out[conn.sent :])
                conn.deadline = time.monotonic() + self._read_timeout
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            self._watch(conn, _READ | _WRITE)
            return
        except OSError as e:
            self._watch(conn, _READ)
            self._read(conn)  # an early answer (a 413 before the body was read) wins
            if conn.phase is _BUSY and conn.request is not None:
                self._lost(conn, e)
            return
        self._watch(conn, _READ)

    def _read(self, conn: _Connection) -> None:
        """Take in what arrived and hand it to h11; finish the request at its answer's end."""
        sock = conn.sock
        assert sock is not None
        while conn.phase is _BUSY:
            try:
                data = sock.recv(_BUFFER)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except ssl.SSLZeroReturnError:
                data = b""
            except OSError as e:
                self._lost(conn, e)
                return
            if not data and not conn.answered:
                self._lost(conn, ConnectionResetError("closed by the server"))
                return
            conn.answered = True
            conn.http.receive_data(data)
            try:
                self._events(conn)
            except h11.RemoteProtocolError as e:
                self._lost(conn, e, garbled=True)
                return
            if len(data) < _BUFFER and not (self._tls and sock.pending()):  # type: ignore[attr-defined]
                return

    def _events(self, conn: _Connection) -> None:
        http = conn.http
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Response):
                conn.status, conn.reason = event.status_code, event.reason.decode("latin-1")
                for name, value in event.headers:
                    if name == b"x-amz-crc32":
                        conn.crc = value.decode("latin-1")
            elif isinstance(event, h11.Data):
                conn.chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._answered(conn)
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("closed before the answer ended")
            # h11.InformationalResponse (100 Continue and the like): the answer follows

    def _answered(self, conn: _Connection) -> None:
        request = conn.request
        assert request is not None
        body = b"".join(conn.chunks)
        outcome = self._signer.outcome(conn.status, body, conn.crc, conn.reason)
        http = conn.http
        # Answered before all of the request went out (a 413 say): the rest cannot follow.
        sent_all = conn.sent == len(conn.out)
        conn.request, conn.chunks, conn.out = None, [], memoryview(b"")
        clean = sent_all and http.our_state is h11.DONE and http.their_state is h11.DONE
        if clean:
            http.start_next_cycle()
            clean = http.our_state is h11.IDLE and not any(http.trailing_data)
        self._done.append((request.token, outcome))
        self._busy.discard(conn)
        if not clean:
            self._close(conn)
            return
        conn.served += 1
        conn.phase, conn.since = _IDLE, time.monotonic()
        self._idle.append(conn)

    def _lost(self, conn: _Connection, error: BaseException, garbled: bool = False) -> None:
        """The connection died under a request. On a reused connection, before any byte of
        an answer, it is most likely one the server had closed while idle: the request goes
        again at once on a new connection (once), as urllib3 does."""
        request = conn.request
        assert request is not None
        if conn.served and not conn.answered and not request.resent and not garbled:
            request.resent = True
            self._busy.discard(conn)
            self._close(conn)
            self._connect(request)
            return
        self._finish(conn, ConnectionClosedError(endpoint_url=self._signer.url, error=error))

    def _finish(self, conn: _Connection, outcome: Exception) -> None:
        """End the connection's request with a failure, and the connection with it."""
        if conn.request is not None:
            self._done.append((conn.request.token, outcome))
        conn.request = None
        self._busy.discard(conn)
        self._close(conn)

    def _expire(self, now: float) -> None:
        """Requests past their deadline: a connect that took too long, or no answer in time."""
        for conn in [c for c in self._busy if c.deadline <= now]:
            if conn.phase is _BUSY:
                outcome: Exception = ReadTimeoutError(endpoint_url=self._signer.url)
            else:
                error = TimeoutError(f"connect timed out after {self._connect_timeout:g} s")
                outcome = EndpointConnectionError(endpoint_url=self._signer.url, error=error)
            self._finish(conn, outcome)

    # -- the selector ----------------------------------------------------------------------

    def _on_event(self, conn: _Connection, mask: int) -> None:
        phase = conn.phase
        if phase is _BUSY:
            if conn.sent < len(conn.out):
                self._flush(conn)
            if mask & _READ and conn.phase is _BUSY:
                self._read(conn)
        elif phase is _IDLE and not _still_open(conn.sock):  # closed by the server, or junk
            self._idle.remove(conn)
            self._close(conn)
        elif phase is _CONNECTING:
            self._connected(conn)
        elif phase is _HANDSHAKE:
            self._handshake(conn)

    def _watch(self, conn: _Connection, events: int) -> None:
        if conn.events == events:
            return
        if conn.events:
            self._selector.modify(conn.sock, events, conn)  # type: ignore[arg-type]
        else:
            self._selector.register(conn.sock, events, conn)  # type: ignore[arg-type]
        conn.events = events

    def _unwatch(self, conn: _Connection) -> None:
        if conn.events:
            self._selector.unregister(conn.sock)  # type: ignore[arg-type]
            conn.events = 0

    def _close_socket(self, conn: _Connection) -> None:
        self._unwatch(conn)
        if conn.sock is not None:
            conn.sock.close()
            conn.sock = None

    def _close(self, conn: _Connection) -> None:
        self._close_socket(conn)
        conn.phase = _CLOSED


def _still_open(sock: socket.socket | None) -> bool:
    """Whether an idle connection may carry another request: nothing to read on it. The
    server's FIN, its TLS close alert or bytes nobody asked for all mean it may not (a TLS
    record that is only a session ticket is taken in, and the connection stays)."""
    if sock is None:
        return False
    try:
        sock.recv(1)
    except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return True
    except OSError:
        return False
    return False


def _tls_context(client: Any) -> ssl.SSLContext:
    """A TLS context that verifies as the client's own HTTP session does.

    botocore resolved `verify` from the client's `verify=` argument, AWS_CA_BUNDLE or the
    profile's `ca_bundle` (and REQUESTS_CA_BUNDLE): False (no verification), True (its
    bundled CAs) or a CA bundle path; its URLLib3Session keeps that as `_verify`, and a
    client certificate as `_cert_file`/`_key_file`.
    """
    http = client._endpoint.http_session
    verify = getattr(http, "_verify", True)
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        where = get_cert_path(verify)
        if os.path.isdir(where):
            context = ssl.create_default_context(capath=where)
        else:
            context = ssl.create_default_context(cafile=where)
    cert = getattr(http, "_cert_file", None)
    if cert:
        context.load_cert_chain(cert, getattr(http, "_key_file", None))
    return context


def open_transport(client: Any, credentials: Any) -> Transport:
    """The fast transport, unless a proxy is configured for the endpoint."""
    if get_environ_proxies(client.meta.endpoint_url):
        return _BotocoreSender(client, credentials)
    return HttpTransport(client, credentials)


def _client_error(status: int, body: bytes, reason: str = "") -> ClientError:
    """DynamoDB's error as botocore reports it; for an answer that is not DynamoDB's JSON
    (a proxy's HTML page), code `HTTP<status>` and a one-line summary instead of the page."""
    try:
        payload = orjson.loads(body)
        code = str(payload.get("__type", "")).rpartition("#")[2]
        message = payload.get("message") or payload.get("Message") or ""
    except (orjson.JSONDecodeError, AttributeError):
        code, message = "", ""
        if not reason:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = ""
        what = f"{status} {reason}".strip()
        message = f"{what} from something between rimport and DynamoDB (a proxy?)"
        if status == 200:
            message = f"{what} with an answer that is not DynamoDB's, from something between"
            message += " rimport and DynamoDB (a proxy?)"
    error = {"Code": code or f"HTTP{status}", "Message": message}
    return ClientError(
        {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "BatchWriteItem"
    )
