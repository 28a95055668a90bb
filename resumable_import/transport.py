"""How BatchWriteItem requests travel: started now, answered later, several at once.

`HttpTransport` is the fast path: each request, built and signed by `signing` from items
already serialized, goes out on one of a few persistent HTTP/1.1 connections, watched with
a selector so that one thread keeps them all busy.

Reading the answers is httptools' job (`http1`): keep-alive rules of HTTP/1.0 and 1.1, 1xx
answers, chunked bodies with extensions and trailers, the Content-Length/Transfer-Encoding
rules. This module only moves bytes, never blocking: it connects, shakes hands (TLS, see
`connections`) and reads each socket as bytes come, so one slow answer or one slow connect
never holds up the others. A connection is reused only when the whole request went out and
its answer ended cleanly, keeping it alive; one the server closed while idle is dropped, and
a request that meets such a closed connection is sent once more on a new one, as urllib3
does, instead of counting as a failed attempt. Which address a new connection tries first
is `resolver`'s to say; a connection to a name is retired once older than its MAX_AGE.

`SyncTransport` wraps anything with botocore's `batch_write_item` (a client, the test
fakes); `_BotocoreSender` sends the same signed body through botocore's HTTP session when
a proxy is configured for the endpoint (proxy settings keep working, one at a time).

Every transport keeps the error contract of `answers`: an outcome is a 200's JSON or the
exception botocore would raise; `start` raises only `CredentialsError` (none to sign with).
"""

from __future__ import annotations

import errno
import itertools
import os
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.utils import get_environ_proxies

from . import answers, http1, resolver
from .connections import (
    BUSY,
    CLOSED,
    CONNECTING,
    HANDSHAKE,
    IDLE,
    Connection,
    Request,
    still_open,
    tls_context,
)
from .errors import RimportError
from .resolver import Resolver
from .signing import Signer

IDLE_LIMIT = 30.0  # seconds an unused connection is kept; servers drop theirs after 60 or so
_BUFFER = 1 << 16
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_WAKE = object()  # the selector's mark of a file given to `wake_on`


class Transport(Protocol):
    def start(self, table: str, items: list[bytes], entries: bool = False) -> Any:
        """Send a BatchWriteItem of `items` (attribute maps as JSON, or with `entries` whole
        write requests); a token its answer will carry. Network faults are answers."""

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        """Answers that arrived within `timeout`: (token, response dict or exception)."""

    def close(self) -> None:
        """Close the connections; requests still out are abandoned."""

    def wake_on(self, fileobj: Any) -> None:
        """Let `wait` also return once `fileobj` is readable (a writer process's pipe)."""


class SyncTransport:
    """Each request is sent and answered inside `start`; `wait` hands the answers over."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._done: list[tuple[Any, Any]] = []
        self._tokens = itertools.count()

    def start(self, table: str, items: list[bytes], entries: bool = False) -> Any:
        return self._deliver(lambda: self._send(table, items, entries))

    def _deliver(self, ask: Callable[[], Any]) -> Any:
        """A token for the outcome of `ask()`, which `wait` hands over."""
        token = next(self._tokens)
        try:
            outcome: Any = ask()
        except RimportError:
            raise
        except Exception as e:  # delivered as the answer, like a network failure would be
            outcome = e
        self._done.append((token, outcome))
        return token

    def _send(self, table: str, items: list[bytes], entries: bool) -> Any:
        if entries:
            requests = [orjson.loads(i) for i in items]
            return self._client.batch_write_item(RequestItems={table: requests})
        return self._client.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": orjson.loads(i)}} for i in items]}
        )

    def wait(self, timeout: float | None) -> list[tuple[Any, Any]]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        pass

    def wake_on(self, fileobj: Any) -> None:
        """Every answer is in before `wait` is called: it never waits."""


class _BotocoreSender(SyncTransport):
    """Signed requests sent through botocore's HTTP session (proxies, custom TLS), one at a
    time; the items' bytes go into the body as they are."""

    def __init__(self, client: Any, credentials: Any) -> None:
        super().__init__(client)
        self._signer = Signer(client, credentials)
        self._http = client._endpoint.http_session  # configured like the client itself

    def _send(self, table: str, items: list[bytes], entries: bool) -> Any:
        *_, request = self._signer.request(table, items, entries)
        response = self._http.send(request.prepare())
        outcome = answers.outcome(
            self._signer.url,
            response.status_code,
            response.content,
            response.headers.get("x-amz-crc32"),
            getattr(response.raw, "reason", None) or "",
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class HttpTransport:
    """Many requests in flight on persistent connections, one request per connection at a
    time, all in the caller's thread; see the module docstring."""

    def __init__(self, client: Any, credentials: Any) -> None:
        self._signer = Signer(client, credentials)
        config = client.meta.config
        self._connect_timeout = float(config.connect_timeout or 60)
        self._read_timeout = float(config.read_timeout or 60)
        self._tls = tls_context(client) if self._signer.https else None
        self._port = self._signer.port or (443 if self._signer.https else 80)
        self._resolver = Resolver(self._signer.host, self._port)
        self._idle: list[Connection] = []  # most recently used last
        self._busy: set[Connection] = set()
        self._selector = selectors.DefaultSelector()
        self._done: list[tuple[Any, Any]] = []
        self._tokens = itertools.count()
        self._swept = time.monotonic()

    # -- the Transport interface -----------------------------------------------------------

    def start(self, table: str, items: list[bytes], entries: bool = False) -> Any:
        body, headers = self._signer.sign(table, items, entries)
        return self._start(body, headers)

    def send(self, operation: str, body: bytes) -> Any:
        """Like `start`, for any operation whose JSON `body` is given whole (`verify` reads
        the table with it); its answer comes by `wait` too."""
        return self._start(body, self._signer.headers(operation, body))

    def _start(self, body: bytes, headers: dict[str, str]) -> Any:
        token = next(self._tokens)
        head = http1.request_head(
            self._signer.path, [*headers.items(), ("Content-Length", str(len(body)))]
        )
        request = Request(token, head, body)
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
            events = self._selector.select(remaining)
            for key, mask in events:
                if key.data is not _WAKE:
                    self._on_event(key.data, mask)
            woken = any(key.data is _WAKE for key, _ in events)
            now = time.monotonic()
            if now >= first:
                self._expire(now)
            if woken or self._done or not self._busy or (end is not None and now >= end):
                break
        if now - self._swept > 1.0:
            self._sweep(now)
        done, self._done = self._done, []
        return done

    def wake_on(self, fileobj: Any) -> None:
        self._selector.register(fileobj, _READ, _WAKE)

    def close(self) -> None:
        for conn in [*self._busy, *self._idle]:
            self._close(conn)
        self._busy.clear()
        self._idle.clear()
        self._selector.close()

    # -- connections -----------------------------------------------------------------------

    def _reusable(self) -> Connection | None:
        """An idle connection still open at the server's end, or None. One to a name is
        retired once older than MAX_AGE, so that new ones follow its new addresses."""
        now = time.monotonic()
        old = now - resolver.MAX_AGE
        while self._idle:
            conn = self._idle.pop()
            young = self._resolver.literal or conn.born > old
            if young and now - conn.since < IDLE_LIMIT and still_open(conn.sock):
                return conn
            self._close(conn)
        return None

    def _sweep(self, now: float) -> None:
        """Close connections idle for longer than IDLE_LIMIT (the oldest are first)."""
        self._swept = now
        while self._idle and now - self._idle[0].since >= IDLE_LIMIT:
            self._close(self._idle.pop(0))

    def _connect(self, request: Request) -> None:
        """Start a new connection for `request`; it is sent once connected."""
        conn = Connection(request)
        conn.born = time.monotonic()
        conn.deadline = conn.born + self._connect_timeout
        self._busy.add(conn)
        try:
            conn.addresses = self._resolver.addresses()
        except OSError as e:
            self._finish(conn, EndpointConnectionError(endpoint_url=self._signer.url, error=e))
            return
        self._next_address(conn, None)

    def _next_address(self, conn: Connection, error: BaseException | None) -> None:
        """Connect to the next address not tried yet; fail the request when none is left."""
        if conn.sock is not None:
            self._close_socket(conn)
        if error is not None and conn.address is not None:
            self._resolver.refused(conn.address)
        if not conn.addresses:
            self._resolver.failed()  # look the name up again next time
            self._finish(conn, EndpointConnectionError(endpoint_url=self._signer.url, error=error))
            return
        conn.address = conn.addresses.pop(0)
        family, kind, proto, _, address = conn.address
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sock, conn.phase = sock, CONNECTING
        code = sock.connect_ex(address)
        if code == 0:
            self._connected(conn)
        elif code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            self._watch(conn, _WRITE)
        else:
            self._next_address(conn, OSError(code, os.strerror(code)))

    def _connected(self, conn: Connection) -> None:
        assert conn.sock is not None
        code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._next_address(conn, OSError(code, os.strerror(code)))
            return
        if self._tls is None:
            self._begin(conn)
            return
        self._unwatch(conn)  # the socket is replaced by its TLS wrapper
        conn.sock = self._tls.wrap_socket(
            conn.sock, server_hostname=self._signer.host, do_handshake_on_connect=False
        )
        conn.phase = HANDSHAKE
        self._handshake(conn)

    def _handshake(self, conn: Connection) -> None:
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

    def _begin(self, conn: Connection) -> None:
        """Send the connection's request (as much as the socket takes now)."""
        request = conn.request
        assert request is not None
        conn.out, conn.sent = memoryview(request.head + request.body), 0
        conn.phase, conn.answered = BUSY, False
        conn.answer.reset()
        self._busy.add(conn)
        conn.deadline = time.monotonic() + self._read_timeout
        self._flush(conn)

    def _flush(self, conn: Connection) -> None:
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
            if conn.phase is BUSY and conn.request is not None:
                self._lost(conn, e)
            return
        self._watch(conn, _READ)

    def _read(self, conn: Connection) -> None:
        """Take in what arrived and parse it; finish the request at its answer's end."""
        sock = conn.sock
        assert sock is not None
        while conn.phase is BUSY:
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
            answer = conn.answer
            try:
                if data:
                    answer.feed(data)
                else:
                    answer.closed()
            except http1.Garbled as e:
                self._lost(conn, e, garbled=True)
                return
            if answer.complete:
                self._answered(conn)
                return
            if len(data) < _BUFFER and not (self._tls and sock.pending()):  # type: ignore[attr-defined]
                return

    def _answered(self, conn: Connection) -> None:
        request = conn.request
        assert request is not None
        answer = conn.answer
        body = b"".join(answer.chunks)
        outcome = answers.outcome(self._signer.url, answer.status, body, answer.crc, answer.reason)
        # Answered before all of the request went out (a 413 say): the rest cannot follow.
        clean = answer.keep_alive and conn.sent == len(conn.out)
        conn.request, conn.out, answer.chunks = None, memoryview(b""), []
        self._done.append((request.token, outcome))
        self._busy.discard(conn)
        if not clean:
            self._close(conn)
            return
        conn.served += 1
        conn.phase, conn.since = IDLE, time.monotonic()
        self._idle.append(conn)

    def _lost(self, conn: Connection, error: BaseException, garbled: bool = False) -> None:
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

    def _finish(self, conn: Connection, outcome: Exception) -> None:
        """End the connection's request with a failure, and the connection with it."""
        if conn.request is not None:
            self._done.append((conn.request.token, outcome))
        conn.request = None
        self._busy.discard(conn)
        self._close(conn)

    def _expire(self, now: float) -> None:
        """Requests past their deadline: a connect that took too long, or no answer in time."""
        for conn in [c for c in self._busy if c.deadline <= now]:
            if conn.phase is BUSY:
                outcome: Exception = ReadTimeoutError(endpoint_url=self._signer.url)
            else:
                error = TimeoutError(f"connect timed out after {self._connect_timeout:g} s")
                outcome = EndpointConnectionError(endpoint_url=self._signer.url, error=error)
            self._finish(conn, outcome)

    # -- the selector ----------------------------------------------------------------------

    def _on_event(self, conn: Connection, mask: int) -> None:
        phase = conn.phase
        if phase is BUSY:
            if conn.sent < len(conn.out):
                self._flush(conn)
            if mask & _READ and conn.phase is BUSY:
                self._read(conn)
        elif phase is IDLE and not still_open(conn.sock):  # closed by the server, or junk
            self._idle.remove(conn)
            self._close(conn)
        elif phase is CONNECTING:
            self._connected(conn)
        elif phase is HANDSHAKE:
            self._handshake(conn)

    def _watch(self, conn: Connection, events: int) -> None:
        if conn.events == events:
            return
        if conn.events:
            self._selector.modify(conn.sock, events, conn)  # type: ignore[arg-type]
        else:
            self._selector.register(conn.sock, events, conn)  # type: ignore[arg-type]
        conn.events = events

    def _unwatch(self, conn: Connection) -> None:
        if conn.events:
            self._selector.unregister(conn.sock)  # type: ignore[arg-type]
            conn.events = 0

    def _close_socket(self, conn: Connection) -> None:
        self._unwatch(conn)
        if conn.sock is not None:
            conn.sock.close()
            conn.sock = None

    def _close(self, conn: Connection) -> None:
        self._close_socket(conn)
        conn.phase = CLOSED


def open_transport(client: Any, credentials: Any) -> Transport:
    """The fast transport, unless a proxy is configured for the endpoint."""
    if get_environ_proxies(client.meta.endpoint_url):
        return _BotocoreSender(client, credentials)
    return HttpTransport(client, credentials)
